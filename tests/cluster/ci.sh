#!/usr/bin/env bash
# CI: the tests marked slurm on a single-node Slurm cluster started here, stopped again however they end.
# Installs Debian's packages where missing (root), then runs the tests with .venv (make setup first), where a
# cluster that does not answer fails them instead of skipping them.
set -euo pipefail
cd "$(dirname "$0")/../.."
cluster=tests/cluster/slurm.sh
missing=$($cluster missing)
if [[ -n $missing ]]; then
    apt-get update -qq
    # shellcheck disable=SC2086  # one word per package
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
trap '$cluster down' EXIT
$cluster up
eval "$($cluster env)"
start=$SECONDS
HTSGD_SLURM_REQUIRED=1 .venv/bin/python -m pytest -q -m slurm -rs
echo "slurm tests took $((SECONDS - start)) s"

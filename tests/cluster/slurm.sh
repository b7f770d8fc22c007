#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for trying and testing `htsgd run --launcher slurm` for real:
#   tests/cluster/slurm.sh up | down | status | env | missing
# `up` installs nothing: it names the Debian packages that are missing. It runs as root (slurmd starts jobs as
# their user) and keeps everything under one folder, $HTSGD_SLURM_DIR (default /tmp/htsgd-slurm): munge's key and
# socket, a MariaDB of its own, the Slurm configuration (so SLURM_CONF must point there: `eval "$(... env)"`),
# spools, logs and the daemons' pid files, by which `down` stops exactly what `up` started.
set -euo pipefail

STATE=${HTSGD_SLURM_DIR:-/tmp/htsgd-slurm}
CLUSTER=htsgd
PARTITION=main
ACCOUNT=htsgd
PORT=${HTSGD_SLURM_PORT:-16817}  # slurmctld; slurmd, slurmdbd and MariaDB take the next three
PACKAGES="munge mariadb-server slurmctld slurmd slurmdbd slurm-client"
DAEMONS="slurmd slurmctld slurmdbd mariadb munged"  # in the order `down` stops them
export SLURM_CONF=$STATE/slurm.conf

say() { echo "slurm.sh: $*" >&2; }
die() { say "$*"; exit 1; }

# Up to $1 seconds for the command that follows to succeed; 1 when it never does.
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.5
    done
}

missing_packages() {
    local package missing=()
    for package in $PACKAGES; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    echo "${missing[*]}"
}

pid_of() { cat "$STATE/run/$1.pid" 2>/dev/null; }

alive() {
    local pid
    pid=$(pid_of "$1") && [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null
}

# Stop, saying what failed, with the last lines of the log of $1 (a daemon, or a step of `up`) that say why.
failed() {
    tail -n 20 "$STATE/log/$1.log" 2>/dev/null | sed 's/^/    /' >&2 || true
    die "$2; its log: $STATE/log/$1.log"
}

# Start daemon $1 with the command that follows (it writes its own pid file), and wait for its pid file.
start() {
    local name=$1
    shift
    "$@" || failed "$name" "$name did not start"
    wait_for 30 alive "$name" || failed "$name" "$name did not start"
}

# The node as slurmd reads the machine: its name, its CPUs (sockets, cores, threads), and its memory in MB less a
# margin for the daemons and the system, so that jobs' memory never exceeds what is there.
host_name() { hostname -s; }
host_cpus() { slurmd -C | head -n 1 | grep -o 'CPUs=.* ThreadsPerCore=[0-9]*'; }
host_memory_mb() {
    slurmd -C | head -n 1 | sed 's/.*RealMemory=//' | awk '{ print $1 - ($1 > 8192 ? 2048 : int($1 / 4)) }'
}

write_munge() {
    install -d -o munge -g munge -m 0755 "$STATE/munge"
    (umask 077 && head -c 1024 /dev/urandom > "$STATE/munge/munge.key")
    chown munge:munge "$STATE/munge/munge.key"
}

start_munge() {
    write_munge
    start munged runuser -u munge -- munged --socket="$STATE/munge/munge.socket" \
        --key-file="$STATE/munge/munge.key" --pid-file="$STATE/munge/munged.pid" \
        --log-file="$STATE/munge/munged.log" --seed-file="$STATE/munge/munged.seed"
}

start_mariadb() {
    install -d -o mysql -g mysql -m 0700 "$STATE/mysql" "$STATE/mysql-run"
    mariadb-install-db --no-defaults --user=mysql --datadir="$STATE/mysql" --auth-root-authentication-method=socket \
        --skip-test-db > "$STATE/log/mariadb-install.log" 2>&1 || failed mariadb-install "mariadb-install-db failed"
    setsid -f mariadbd --no-defaults --user=mysql --datadir="$STATE/mysql" --socket="$STATE/mysql-run/mysqld.sock" \
        --pid-file="$STATE/mysql-run/mariadb.pid" --port=$((PORT + 3)) --bind-address=127.0.0.1 \
        --log-error="$STATE/log/mariadb.log" --innodb-buffer-pool-size=64M < /dev/null > /dev/null 2>&1
    wait_for 60 mariadb --no-defaults --socket="$STATE/mysql-run/mysqld.sock" -e "select 1" ||
        failed mariadb "MariaDB did not start"
    mariadb --no-defaults --socket="$STATE/mysql-run/mysqld.sock" -e \
        "create user 'slurm'@'127.0.0.1' identified by 'htsgd'; create database slurm_acct_db;
         grant all on slurm_acct_db.* to 'slurm'@'127.0.0.1';"
}

write_configs() {
    local host
    host=$(host_name)
    cat > "$STATE/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$STATE/munge/munge.socket
DbdHost=localhost
DbdPort=$((PORT + 2))
SlurmUser=root
PidFile=$STATE/run/slurmdbd.pid
LogFile=$STATE/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$((PORT + 3))
StorageUser=slurm
StoragePass=htsgd
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$STATE/slurmdbd.conf"
    cat > "$SLURM_CONF" <<EOF
ClusterName=$CLUSTER
SlurmctldHost=$host
SlurmUser=root
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
AuthType=auth/munge
# A requeued job may start again cred_expire + 1 s later (120 s by default), and the scheduler looks every 5 s
# (60 by default): the time-limit and requeue tests would otherwise wait minutes.
AuthInfo=socket=$STATE/munge/munge.socket,cred_expire=15
SchedulerParameters=sched_interval=5
CredType=cred/munge
StateSaveLocation=$STATE/slurmctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$((PORT + 2))
AccountingStoragePass=$STATE/munge/munge.socket
AccountingStorageEnforce=associations
EnforcePartLimits=ALL
JobRequeue=1
ReturnToService=2
MpiDefault=none
KillWait=10
DefMemPerCPU=1024
NodeName=$host $(host_cpus) RealMemory=$(host_memory_mb) State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=1-00:00:00 State=UP
EOF
}

# slurmdbd answers, and knows the cluster, its account and root in it, before slurmctld registers.
register() {
    wait_for 60 sacctmgr -n list cluster || failed slurmdbd "slurmdbd does not answer"
    sacctmgr -i add cluster "$CLUSTER" >/dev/null
    sacctmgr -i add account "$ACCOUNT" Cluster="$CLUSTER" Description="htsgd tests" Organization=htsgd >/dev/null
    sacctmgr -i add user root Account="$ACCOUNT" Cluster="$CLUSTER" >/dev/null
}

node_idle() { [[ $(sinfo -h -n "$(host_name)" -o %t) == idle ]]; }

up() {
    local missing
    missing=$(missing_packages)
    [[ -z $missing ]] ||
        die "missing Debian packages: $missing; install them with: apt-get install --no-install-recommends $missing"
    (($(id -u) == 0)) || die "run it as root: slurmd starts jobs as their user, and munge and MariaDB run as their own"
    for name in $DAEMONS; do
        ! alive "$name" || die "$name from an earlier \`up\` still runs (pid $(pid_of "$name")); run \`$0 down\` first"
    done
    trap 'say "up failed: stopping what it started"; down' EXIT
    rm -rf "$STATE"
    install -d -m 0755 "$STATE" "$STATE/run" "$STATE/log" "$STATE/slurmctld" "$STATE/slurmd"
    write_configs
    ln -s "$STATE/munge/munged.pid" "$STATE/run/munged.pid"
    ln -s "$STATE/munge/munged.log" "$STATE/log/munged.log"
    ln -s "$STATE/mysql-run/mariadb.pid" "$STATE/run/mariadb.pid"
    start_munge
    start_mariadb
    start slurmdbd slurmdbd  # reads slurmdbd.conf beside $SLURM_CONF
    register
    start slurmctld slurmctld -f "$SLURM_CONF"
    start slurmd slurmd -f "$SLURM_CONF"
    wait_for 60 node_idle || failed slurmd "node $(host_name) is not idle: $(sinfo -h -o '%t %E')"
    wait_for 60 sacct -n -X || die "sacct does not answer"
    say "up: cluster $CLUSTER, partition $PARTITION, account $ACCOUNT," \
        "node $(host_name) ($(host_cpus), $(host_memory_mb) MB)"
    say "use it with: export SLURM_CONF=$SLURM_CONF"
    trap - EXIT
}

no_jobs() { [[ -z $(squeue -h -o %i) ]]; }

# Jobs' processes belong to slurmd's job steps: cancel every job and wait until the node has none.
cancel_jobs() {
    alive slurmctld || return 0
    squeue -h -o %A 2>/dev/null | sort -u | xargs -r scancel 2>/dev/null || true
    wait_for 60 no_jobs || say "jobs still listed: $(squeue -h -o '%i %T' | tr '\n' ' ')"
}

stop() {
    local name=$1 pid
    pid=$(pid_of "$name") || return 0
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid"
    if ! wait_for 30 bash -c "! kill -0 $pid"; then
        say "$name (pid $pid) ignored SIGTERM for 30 s: killed"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    say "stopped $name (pid $pid)"
}

down() {
    cancel_jobs
    for name in $DAEMONS; do
        stop "$name"
    done
    say "down: none of its daemons runs"
}

status() {
    local name
    for name in $DAEMONS; do
        if alive "$name"; then echo "$name: running (pid $(pid_of "$name"))"; else echo "$name: not running"; fi
    done
    if alive slurmctld; then sinfo; fi
}

case ${1:-} in
    up) up ;;
    down) down ;;
    status) status ;;
    env) echo "export SLURM_CONF=$SLURM_CONF" ;;
    missing) missing_packages ;;
    *) die "usage: $0 up|down|status|env|missing" ;;
esac

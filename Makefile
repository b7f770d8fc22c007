# Every target that needs the environment builds it first; `make setup` is idempotent.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# LOCK=1 (the default) installs requirements.lock's exact versions, those of the environment that made the
# committed records; LOCK=0 the newest that pyproject.toml's ranges allow. A stamp per mode: switching reinstalls.
LOCK ?= 1
LOCKFILE := requirements.lock
ifeq ($(LOCK),0)
STAMP := $(VENV)/.installed-ranges
STAMP_INPUTS := pyproject.toml
INSTALL := $(BIN)/python -m pip install --quiet -e '.[dev]'
else
STAMP := $(VENV)/.installed-lock
STAMP_INPUTS := pyproject.toml $(LOCKFILE)
INSTALL := $(BIN)/python -m pip install --quiet -r $(LOCKFILE) && $(BIN)/python -m pip install --quiet --no-deps -e .
endif
PIP_TOOLS := $(VENV)/pip-tools
GROUPS ?= ecg5000_fcn,mnist_fcn,cifar10_fcn,cifar10_vgg,cifar100_fcn
GROUP ?= demo
WORKERS ?= 1
BENCH_WORKERS ?= 2

.PHONY: setup test test-all test-gpu test-slurm slurm-up slurm-down demo reproduce width-trend report status site bench bench-pipeline bench-compress clean

setup: $(STAMP)

$(STAMP): $(STAMP_INPUTS)
	$(PYTHON) -m venv $(VENV)
	$(INSTALL)
	$(BIN)/python -m ipykernel install --sys-prefix --name htsgd --display-name "Python (htsgd)"
	rm -f $(VENV)/.installed $(VENV)/.installed-*
	touch $@

# Pin the environment in $(VENV) (made by make setup, or make setup LOCK=0 to move to newer versions):
# pip-compile resolves pyproject.toml with its dev extra, constrained to the versions pip freeze lists there.
# pip-tools lives in a venv of its own, so the environment it locks stays as it is.
.PHONY: lock
lock:
	@test -x $(BIN)/python || { echo "make lock pins the environment in $(VENV): run make setup first" >&2; exit 1; }
	test -x $(PIP_TOOLS)/bin/pip-compile || { $(PYTHON) -m venv $(PIP_TOOLS) && $(PIP_TOOLS)/bin/python -m pip install --quiet 'pip-tools==7.6.2'; }
	$(BIN)/python -m pip freeze --all --exclude-editable --exclude htsgd > $(VENV)/pip-freeze.txt
	CUSTOM_COMPILE_COMMAND="make lock" $(PIP_TOOLS)/bin/pip-compile --quiet --extra dev --strip-extras --allow-unsafe \
	  --no-emit-index-url --no-emit-find-links --no-emit-trusted-host --annotation-style line \
	  --constraint $(VENV)/pip-freeze.txt --output-file $(LOCKFILE) pyproject.toml

# Two tiers: `make test` leaves out the tests marked slow (they start Jupyter kernels and execute notebooks);
# `make test-all` runs every test, as CI does. Tests marked gpu or slurm skip themselves, saying why, without one.
# The fast tier runs one pytest worker a core (pytest-xdist), each torch single-threaded so they do not contend;
# the slow tier stays in one process: its tests start kernels and look for the processes they leave.
test: setup
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -q -n auto -m "not slow"

test-all: setup
	$(BIN)/python -m pytest -q

test-gpu: setup
	$(BIN)/python -m pytest -q -m gpu -rs

# A single-node Slurm cluster on this machine, as root (Debian's slurmctld, slurmd, slurmdbd, munge, MariaDB), for
# the slurm tests and for trying `htsgd run --launcher slurm` (export SLURM_CONF as `tests/cluster/slurm.sh env` says).
slurm-up:
	tests/cluster/slurm.sh up

slurm-down:
	tests/cluster/slurm.sh down

test-slurm: setup
	$(BIN)/python -m pytest -q -m slurm -rs

demo: setup
	$(BIN)/htsgd run params/demo.yaml --workers $(WORKERS)

reproduce: setup
	$(BIN)/htsgd run $(foreach g,$(subst $(comma), ,$(GROUPS)),params/$(g).yaml) --workers $(WORKERS)

# Beyond the paper: the equal-accuracy gap against width on digits and Fashion-MNIST, under three compressors.
# Fashion-MNIST comes from torchvision's download, or offline from Debian's dataset-fashion-mnist package.
width-trend: setup
	$(BIN)/htsgd run params/digits_width.yaml params/fashion_calibration.yaml params/fashion_width.yaml --workers $(WORKERS)

report: setup
	$(BIN)/htsgd report params/$(GROUP).yaml

status: setup
	$(BIN)/htsgd status params/$(GROUP).yaml

# Every group's record as static HTML in results/site/ (open its index.html): only changed groups are rebuilt.
site: setup
	$(BIN)/htsgd site

bench: setup
	$(BIN)/python benchmarks/bench.py

bench-pipeline: setup
	$(BIN)/python benchmarks/pipeline.py --workers $(BENCH_WORKERS)

bench-compress: setup
	$(BIN)/python benchmarks/compress.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache

comma := ,

# Every target that needs the environment builds it first; `make setup` is idempotent.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
GROUPS ?= ecg5000_fcn,mnist_fcn,cifar10_fcn,cifar10_vgg,cifar100_fcn
GROUP ?= demo
WORKERS ?= 1
BENCH_WORKERS ?= 2

.PHONY: setup test test-gpu demo reproduce report status bench bench-pipeline clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name htsgd --display-name "Python (htsgd)"
	touch $@

test: setup
	$(BIN)/python -m pytest -q

test-gpu: setup
	$(BIN)/python -m pytest -q -m gpu -rs

demo: setup
	$(BIN)/htsgd run params/demo.yaml --workers $(WORKERS)

reproduce: setup
	$(BIN)/htsgd run $(foreach g,$(subst $(comma), ,$(GROUPS)),params/$(g).yaml) --workers $(WORKERS)

report: setup
	$(BIN)/htsgd report params/$(GROUP).yaml

status: setup
	$(BIN)/htsgd status params/$(GROUP).yaml

bench: setup
	$(BIN)/python benchmarks/bench.py

bench-pipeline: setup
	$(BIN)/python benchmarks/pipeline.py --workers $(BENCH_WORKERS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache

comma := ,

# LesionFlow. `make demo` runs the pipeline offline; `make test` runs every check. Both set up what they need.
SHELL := /bin/bash
# Lambda runs Python 3.13: use it here too. pyenv's shim for python3.13 fails unless 3.13 is selected, so ask pyenv
# for the real path first, then try a python3.13 that actually runs, and fall back to python3 (3.11+ works).
ifndef PYTHON
PYTHON := $(shell (PYENV_VERSION=$$(pyenv versions --bare 2>/dev/null | grep '^3\.13' | tail -1) pyenv which python3.13 \
	|| python3.13 -c 'import sys; print(sys.executable)' || command -v python3) 2>/dev/null | head -1)
endif
VENV := .venv
SAM_VENV := .tools/sam
SAM := SAM_CLI_TELEMETRY=0 PATH="$(dir $(PYTHON)):$$PATH" $(SAM_VENV)/bin/sam

.PHONY: demo setup test lint unit integration e2e bench build events samples local clean

# The README's first command: the whole pipeline offline on the sample images, results from the prediction log.
demo: $(VENV)/.installed
	$(VENV)/bin/lesionflow demo

# The local stack until Ctrl-C (`lesionflow local up --help` for its options).
local: $(VENV)/.installed
	$(VENV)/bin/lesionflow local up

setup: $(VENV)/.installed $(SAM_VENV)/.installed

$(VENV)/.installed: requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt -e .
	touch $@

# SAM CLI pins its own boto3 and friends: it lives in a virtual environment of its own.
$(SAM_VENV)/.installed:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli==1.170.0
	touch $@

test: lint $(VENV)/.installed
	$(VENV)/bin/python -m pytest

lint: setup
	$(SAM) validate --lint --region us-east-1

unit: $(VENV)/.installed
	$(VENV)/bin/python -m pytest tests/unit

integration: $(VENV)/.installed
	$(VENV)/bin/python -m pytest tests/integration

e2e: $(VENV)/.installed
	$(VENV)/bin/python -m pytest tests/e2e

# Measurements (not tests): cold-start cost of the handlers' setup, peak memory of preprocessing large images.
bench: $(VENV)/.installed
	$(VENV)/bin/python benchmarks/cold_start.py
	$(VENV)/bin/python benchmarks/preprocess_memory.py

build: setup
	$(SAM) build

samples: $(VENV)/.installed
	$(VENV)/bin/python scripts/make_samples.py

events: $(VENV)/.installed
	$(VENV)/bin/python scripts/make_events.py

clean:
	rm -rf $(VENV) .tools .aws-sam .lesionflow

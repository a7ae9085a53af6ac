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
SCAN_VENV := .tools/scan
CONFORMANCE_VENV := .tools/conformance

.PHONY: demo setup test lint scan conformance rehearse unit integration e2e fault-run fuzz bench bench-quick build events samples local clean

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

test: lint scan conformance rehearse $(VENV)/.installed
	$(VENV)/bin/python -m pytest

# sam validate --lint on the defaults, then on every combination of the endpoint parameters (each also scanned with
# checkov when it creates an endpoint: scripts/lint_endpoint_combinations.py; about 25 s).
lint: setup $(SCAN_VENV)/.installed
	$(SAM) validate --lint --region us-east-1
	SAM_CLI_TELEMETRY=0 PATH="$(dir $(PYTHON)):$$PATH" $(SCAN_VENV)/bin/python scripts/lint_endpoint_combinations.py \
		--sam $(SAM_VENV)/bin/sam

# Deploy rehearsal without an AWS account (scripts/rehearse.py): sam build, sam package into a moto bucket, the SAM
# transform, parameter constraints, Rules and capabilities, create_stack of three stacks on moto's CloudFormation
# (CREATE_COMPLETE, every output real), the CloudFormation quotas, and what moto did not really create, as
# "not rehearsed:" lines; about 40 s with a warm build cache.
rehearse: setup
	SAM_CLI_TELEMETRY=0 PATH="$(dir $(PYTHON)):$$PATH" $(VENV)/bin/python scripts/rehearse.py --sam $(SAM_VENV)/bin/sam

# Security scanners on template.yaml, the CloudFormation SAM makes of it and the state machine (scripts/scan.py).
scan: $(SCAN_VENV)/.installed node_modules/.installed
	$(SCAN_VENV)/bin/python scripts/scan.py

# checkov pins many libraries of its own: the scanners live in a virtual environment of their own.
$(SCAN_VENV)/.installed: requirements-scan.txt
	$(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/pip install --quiet --upgrade pip
	$(SCAN_VENV)/bin/pip install --quiet -r requirements-scan.txt
	touch $@

# cfn-guard (with the AWS Control Tower rules) and asl-validator, as pinned in package-lock.json; not their peer
# dependency aws-cdk-lib (160 MB): the scan uses only the cfn-guard binary and the rule files.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --omit=peer
	touch $@

# The model contracts against the real serving toolkits' decoders and encoders (tests/conformance), in their own
# environment: the Hugging Face toolkit's dependencies pin numpy<2 and audio libraries, so it goes in --no-deps.
conformance: $(CONFORMANCE_VENV)/.installed
	PYTHONPATH=src $(CONFORMANCE_VENV)/bin/python -m pytest --noconftest -p no:cacheprovider tests/conformance

$(CONFORMANCE_VENV)/.installed: requirements-conformance.txt
	$(PYTHON) -m venv $(CONFORMANCE_VENV)
	$(CONFORMANCE_VENV)/bin/pip install --quiet -r requirements-conformance.txt
	$(CONFORMANCE_VENV)/bin/pip install --quiet --no-deps sagemaker-huggingface-inference-toolkit==2.6.0 \
		multi-model-server==1.1.11
	touch $@

unit: $(VENV)/.installed
	$(VENV)/bin/python -m pytest tests/unit

integration: $(VENV)/.installed
	$(VENV)/bin/python -m pytest tests/integration

e2e: $(VENV)/.installed
	$(VENV)/bin/python -m pytest tests/e2e

# A bigger fault-injection run than the one in the tests: 2,000 uploads while the endpoint, SQS and the dispatcher
# misbehave; prints what was injected and exits 1 unless 0 uploads were lost and 0 duplicated.
fault-run: $(VENV)/.installed
	$(VENV)/bin/lesionflow fault-run --uploads 2000 --timeout 3600

# Structure-aware fuzzing of Validate and Preprocess for ten minutes with a fresh seed (the unit tests run the same
# mutator for a minute on a fixed one): prints the mutants run and their outcomes; exits 1, with reproducers, on a crash.
fuzz: $(VENV)/.installed
	$(VENV)/bin/python scripts/fuzz_images.py --seconds 600

# Measurements (not tests), written to docs/benchmarks.md with a summary printed: preprocessing per model contract
# against the source systems' ways and the decode floor, cold starts, 100 to 1,000 uploads through the local stack,
# and the cost per million images they imply (benchmarks/; about 7 minutes).
bench: $(VENV)/.installed
	$(VENV)/bin/python -m benchmarks

# The same code on small sizes with 2 rounds (under a minute), so the benchmarks cannot rot; its document goes to
# .lesionflow/bench/benchmarks-quick.md, not docs/.
bench-quick: $(VENV)/.installed
	$(VENV)/bin/python -m benchmarks --quick

build: setup
	$(SAM) build

samples: $(VENV)/.installed
	$(VENV)/bin/python scripts/make_samples.py

events: $(VENV)/.installed
	$(VENV)/bin/python scripts/make_events.py

clean:
	rm -rf $(VENV) .tools .aws-sam .lesionflow node_modules

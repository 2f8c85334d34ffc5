# GoodsDrop: `make up` starts the local stack with demo data, `make down` stops it.
# `make help` lists every target.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON := .venv/bin/python
STACK := $(PYTHON) -m goodsdrop_local.stack
STACK_DIR := $(or $(GOODSDROP_STACK_DIR),.stack)
PYTEST_ARGS ?= -q
export PYTHONPATH := $(CURDIR)/layers/common:$(CURDIR)/local:$(CURDIR)

# CLUSTER=1: Redis is a three-master Redis Cluster (make up/down/status/test CLUSTER=1); the same as
# exporting GOODSDROP_REDIS_CLUSTER=1, which every client of the stack reads.
ifeq ($(CLUSTER),1)
export GOODSDROP_REDIS_CLUSTER := 1
endif

.PHONY: help install up down reset status test test-unit test-down lint lock build deploy-localstack invoke bench bench-shards \
	bench-core bench-cold-starts bench-clean logs openapi chaos dlq top

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

install: ## Install system packages, .venv and Kafka jars (idempotent, quiet)
	@scripts/install.sh

up: install ## Start the stack in the background with demo data (CLUSTER=1: Redis Cluster; UP_ARGS=--servers-only)
	@$(STACK) up $(UP_ARGS)

down: ## Stop the local stack (leaves no process behind)
	@if [ -x $(PYTHON) ]; then $(STACK) down; fi

test-down: ## Stop the test stacks that `make test` and `make test CLUSTER=1` started
	@if [ -x $(PYTHON) ]; then \
	  GOODSDROP_STACK_DIR=$(CURDIR)/.stack-test GOODSDROP_PORT_OFFSET=$(or $(GOODSDROP_PORT_OFFSET),50) $(STACK) down; \
	  if [ -d .stack-test-cluster ]; then \
	    GOODSDROP_STACK_DIR=$(CURDIR)/.stack-test-cluster \
	      GOODSDROP_PORT_OFFSET=$$(( $(or $(GOODSDROP_PORT_OFFSET),50) + 25 )) $(STACK) down; \
	  fi; \
	fi

reset: install ## Stop the stack and delete its data (keeps the Kafka jars)
	@$(STACK) reset

status: install ## Show each server's pid, port and health; fails unless all are healthy
	@$(STACK) status

# Tests run against their own stack (.stack-test, ports shifted by 50), so they never litter the
# demo data of the stack `make up` started; `make test-down` stops it. With CLUSTER=1 they get another
# one (.stack-test-cluster, ports shifted 25 further), so both kinds can run one after the other.
TEST_OFFSET := $(or $(GOODSDROP_PORT_OFFSET),50)
ifneq ($(filter 1 true yes on,$(GOODSDROP_REDIS_CLUSTER)),)
TEST_STACK_DIR := $(CURDIR)/.stack-test-cluster
TEST_OFFSET := $(shell echo $$(( $(TEST_OFFSET) + 25 )))
else
TEST_STACK_DIR := $(CURDIR)/.stack-test
endif
TEST_STACK := GOODSDROP_STACK_DIR=$(TEST_STACK_DIR) GOODSDROP_PORT_OFFSET=$(TEST_OFFSET)

test: install ## Run every test on a separate test stack: make test PYTEST_ARGS="-q -k stock" (CLUSTER=1)
	@rc=0; $(TEST_STACK) $(PYTHON) -m pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; \
	exit $$rc

# The unit tests need no server: nothing is started, nothing is reached.
test-unit: install ## Run the unit tests only (no server): make test-unit PYTEST_ARGS="-q -k openapi"
	@$(PYTHON) -m pytest $(PYTEST_ARGS) tests/unit

SAM_VENV := .venv-sam/bin
SAM_ENV := SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=$(or $(AWS_REGION),$(AWS_DEFAULT_REGION),ap-northeast-2)
SHELL_SCRIPTS := scripts/*.sh .ci/run infra/localstack/*.sh tests/fixtures/aws-events/*.sh

lint: install ## ruff, import-linter (the layers of pyproject.toml), mypy (layers/common, local/), cfn-lint and `sam validate --lint` on infra/template.yaml, shellcheck
	@$(PYTHON) -m ruff check .
	@out=$$(.venv/bin/lint-imports --no-cache 2>&1) || { echo "$$out" | sed -n '/Broken contracts/,$$p'; exit 1; }
	@$(PYTHON) -m mypy layers/common/goodsdrop local/goodsdrop_local
	@$(SAM_VENV)/cfn-lint infra/template.yaml
	@$(SAM_ENV) $(SAM_VENV)/sam validate --lint --template-file infra/template.yaml
	@shellcheck $(SHELL_SCRIPTS)

PIP_COMPILE := CUSTOM_COMPILE_COMMAND="make lock" $(CURDIR)/.venv/bin/pip-compile --quiet --strip-extras \
	--no-emit-index-url --no-emit-find-links

lock: install ## Pin requirements.in into requirements.txt, and the layer's requirements.in (same versions) beside it
	@$(PIP_COMPILE) -o requirements.txt requirements.in
	@cd layers/common && $(PIP_COMPILE) -o requirements.txt requirements.in

build: install ## sam build (no container) into .aws-sam/build (or BUILD_DIR=/tmp/goodsdrop-build)
	@scripts/sam_build.sh $(BUILD_DIR)

deploy-localstack: install ## Build and deploy the stack into LocalStack (docker compose up first; ARGS=--dry-run)
	@infra/localstack/deploy.sh $(ARGS)

invoke: install ## Invoke one function locally with its sample event: make invoke FN=GetStockFunction (EVENT=events/...)
	@test -n "$(FN)" || { echo "make invoke: name a function of infra/template.yaml, e.g. FN=GetStockFunction" >&2; exit 2; }
	@$(PYTHON) -m goodsdrop_local invoke $(FN) $(or $(EVENT),events/$(FN).json)

# The benchmarks run on the stack `make up` started (starting it if needed) and remove what they made.
bench: install ## Run the flash-drop benchmark, every part: make bench ARGS="--quick" (or "--only curve")
	@$(PYTHON) -m bench.flash_drop $(ARGS)

bench-core: install ## The stock strategies at the reservation core, 500 workers, no HTTP: make bench-core ARGS="--strategy lua --workers 100"
	@$(PYTHON) -m bench.core_strategies $(ARGS)

bench-cold-starts: install ## Each function's cold start (import + first event) and its heaviest imports
	@$(PYTHON) -m bench.cold_starts $(ARGS)

bench-clean: ## Remove whatever benchmarks left behind on the stack (a run that was killed, older versions)
	@$(PYTHON) -m bench.drop_fixtures --remove

bench-shards: install ## One hot key vs sharded stock on the Redis Cluster: make up CLUSTER=1 && make bench-shards CLUSTER=1
	@$(PYTHON) -m bench.sharded_drop $(ARGS)

top: ## Live figures of the running stack: requests/s, answers, saga lag, dead letters, CPU (ARGS=--once)
	@$(PYTHON) -m goodsdrop_local top $(ARGS)

logs: ## Follow the stack's logs
	@tail -n 20 -F $(STACK_DIR)/logs/*.log

openapi: ## Regenerate functions/openapi/openapi.json from the template, the handlers and goodsdrop/responses.py (ARGS=--check)
	@$(PYTHON) -m contract.openapi $(ARGS)

chaos: ## Run the chaos drills on the running stack: make chaos ARGS="--long"
	@$(PYTHON) -m bench.chaos $(ARGS)

dlq: ## Dead letters: make dlq (list), make dlq ARGS="show 1:42", ARGS="replay --reason UNKNOWN_ORDER"
	@$(PYTHON) -m goodsdrop_local.dlq $(or $(ARGS),list)

# Two-stage question -> answer recommender. `make` lists the targets.
PYTHON    ?= python3.11
VENV      ?= .venv
PY        := $(VENV)/bin/python
DATA_DIR  ?= ../shared/data/eli5
TRAIN     ?= $(DATA_DIR)/train.jsonl
EVAL      ?= $(DATA_DIR)/dev.jsonl
ARTIFACTS ?= artifacts
EPOCHS    ?= 0
TRAIN_ARGS ?=
SERVE_ARGS ?=
BENCH_ARGS ?=
export HF_HUB_OFFLINE = 1
export KERAS_BACKEND = tensorflow
export TF_CPP_MIN_LOG_LEVEL = 2

.DEFAULT_GOAL := help
.PHONY: help install lint train serve run test test-fast compose-config up down clean bench

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'
	@echo "  variables: TRAIN=$(TRAIN) EVAL=$(EVAL) ARTIFACTS=$(ARTIFACTS) EPOCHS=$(EPOCHS)"

$(VENV)/.installed: requirements/*.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt
	# --no-deps: their declared dependencies would pull full tensorflow and torch (see requirements/nodeps.txt)
	$(PY) -m pip install --quiet --no-deps -r requirements/nodeps.txt
	touch $@

install: $(VENV)/.installed ## create .venv with everything (training, services, tests)

lint: install ## static checks (ruff: unused and undefined names, syntax errors)
	$(PY) -m ruff check .

train: install ## train on TRAIN/EVAL and publish a bundle in ARTIFACTS (skipped if data and config are unchanged)
	$(PY) -m training --train $(TRAIN) --eval $(EVAL) --out $(ARTIFACTS) --epochs $(EPOCHS) $(TRAIN_ARGS)

serve: install ## start the three services on the bundle in ARTIFACTS (gateway :8000, retrieval :8001, ranking :8002)
	$(PY) -m launcher --artifacts $(ARTIFACTS) $(SERVE_ARGS)

run: train serve ## install, train if needed, then serve: the one command

test: install ## the whole test suite (unit, app, end-to-end, real data when ../shared exists)
	$(PY) -m pytest -q

test-fast: install ## unit and app tests only (no trained bundle, no processes)
	$(PY) -m pytest -q -m "not slow"

bench: install ## latency/throughput/memory of the stack on ARTIFACTS (or a running one) vs in-process; BENCH_ARGS=--help
	$(PY) -m benchmarks --artifacts $(ARTIFACTS) $(BENCH_ARGS)

compose-config: ## validate docker-compose.yml (needs Debian's docker-compose)
	docker-compose config -q && docker-compose --profile train config -q && echo "docker-compose.yml is valid"

up: ## docker: train into the shared volume, then start the stack
	docker compose --profile train run --rm train && docker compose up -d

down: ## docker: stop the stack
	docker compose down

clean: ## remove the virtualenv and caches (keeps artifacts)
	rm -rf $(VENV) .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

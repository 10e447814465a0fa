# Leadflow — the two commands are `make run` and `make test`; everything else is optional.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never

UV        ?= $(shell command -v uv 2>/dev/null || echo python3 -m uv)
PY        := $(UV) run --frozen python
SERVICES  := console intake scoring routing sla-monitor analytics notify
IMAGE_REGISTRY ?= leadflow
IMAGE_TAG ?= dev
COMPOSE   := docker compose -f deploy/compose.yaml --env-file .env.example $(if $(wildcard .env),--env-file .env)
PYTEST_ARGS ?=

.PHONY: help install uv kafka-jars mailpit browser run test lint format schemas bench infra-up infra-down \
        up down images deploy-check demo clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

uv:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv

install: uv  ## install uv (with pip) and the Python workspace
	@$(UV) sync --frozen

kafka-jars: install  ## fetch the Kafka broker jars from Maven Central (cached under ~/.cache/leadflow)
	@$(PY) -c "from leadflow.devstack.kafka import ensure_jars, KafkaUnavailable; import sys; \
	exec('try:\n ensure_jars()\nexcept KafkaUnavailable as e:\n print(e, file=sys.stderr); sys.exit(2)')"

mailpit: install  ## build Mailpit (the local mail catcher) from its Go module into ~/.cache/leadflow/bin
	@$(PY) -m leadflow.devstack.mail

browser:  ## Debian's chromium for the dashboard browser test (skipped with a reason when unavailable)
	@command -v chromium >/dev/null 2>&1 || ( [ "$$(id -u)" = 0 ] && (apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ) || echo "chromium not installed: the browser test will be skipped"

run: install kafka-jars mailpit  ## start Kafka, Postgres, Mailpit and every service locally; prints the URLs
	@$(PY) -m leadflow.devstack run

demo: install kafka-jars mailpit  ## `make run` plus a simulated workload so the dashboard fills up
	@LEADFLOW_DEMO=1 $(PY) -m leadflow.devstack run

test: install kafka-jars browser  ## run the whole test suite against real Kafka and Postgres
	@$(UV) run --frozen pytest $(PYTEST_ARGS)

lint: install  ## ruff, mypy, the import contracts (layers, independence) and the generated-files check
	@$(UV) run --frozen ruff check .
	@$(UV) run --frozen ruff format --check .
	@$(UV) run --frozen mypy libs/*/src services/*/src
	@$(UV) run --frozen lint-imports --no-cache --no-logo
	@$(PY) -m leadflow.events.schemagen --check
	@$(PY) -m leadflow.devstack.access_doc --check

format: install
	@$(UV) run --frozen ruff format .
	@$(UV) run --frozen ruff check --fix .

schemas: install  ## regenerate JSON Schemas, docs/asyncapi.yaml, docs/events.md and docs/access.md
	@$(PY) -m leadflow.events.schemagen
	@$(PY) -m leadflow.devstack.access_doc

bench: install kafka-jars  ## benchmarks (figures as ratios to raw aiokafka / asyncpg baselines)
	@$(PY) -m bench

infra-up: install kafka-jars  ## start Kafka + Postgres in the background (.leadflow/dev.env)
	@$(PY) -m leadflow.devstack infra-up

infra-down:  ## stop what infra-up started
	@$(PY) -m leadflow.devstack infra-down

images:  ## build the service images (needs a Docker engine)
	@for s in $(SERVICES); do \
	  docker build -f deploy/docker/Dockerfile --build-arg SERVICE=$$s -t $(IMAGE_REGISTRY)/$$s:$(IMAGE_TAG) . || exit 1; \
	done

up:  ## everything in Docker: Kafka, Postgres, topics, migrations, services (needs Docker)
	$(COMPOSE) up -d --build --wait

down:  ## stop the Docker stack
	$(COMPOSE) down

deploy-check: install  ## only the deploy validation (compose schema, k8s overlays, env coverage)
	@$(UV) run --frozen pytest tests/deploy -q

clean:  ## remove local state (.leadflow: databases, broker data, logs, credentials)
	rm -rf .leadflow

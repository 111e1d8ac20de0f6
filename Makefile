# The two commands: `make run` (the whole stack) and `make test` (every suite). Both install
# what is missing first: Debian packages, the Python venv in .venv/, frontend/node_modules.
# `make dev` is `make run` with Vite's dev server (hot reload) instead of the production build.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ENSURE := scripts/ensure-system-packages.sh

.PHONY: install install-run run dev test lock test-backend test-frontend e2e screenshots lint lint-deploy test-compose bench bench-quick bench-smoke clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV) || { echo "error: python3 -m venv failed; install python3-venv"; exit 1; }

PIP := $(PY) -m pip install -q --disable-pip-version-check

# The locks (backend/requirements*.txt, exact pins with hashes) come from the .in files: `make lock`.
$(VENV)/.runtime: backend/requirements.txt backend/pyproject.toml | $(VENV)/bin/python
	$(PIP) --require-hashes -r backend/requirements.txt
	$(PIP) --no-deps -e backend
	touch $@

$(VENV)/.dev: backend/requirements-dev.txt $(VENV)/.runtime
	$(PIP) --require-hashes -r backend/requirements-dev.txt
	touch $@

frontend/node_modules/.installed: frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# checkov has its own venv: its pins clash with the test tools of requirements-dev.txt.
.venv-checkov/.installed: deploy/k8s/requirements-checkov.txt
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/pip install -q --disable-pip-version-check -r $<
	touch $@

bench/node_modules/.installed: bench/package.json bench/package-lock.json
	cd bench && npm ci --no-audit --no-fund --loglevel=error
	touch $@

backend/.env:
	cp backend/.env.example backend/.env

install-run: $(VENV)/.runtime frontend/node_modules/.installed
	@$(ENSURE) redis-server:redis-server curl:curl

install: install-run $(VENV)/.dev
	@$(ENSURE) chromium:chromium docker-compose:docker-compose

# The dashboard's production build, rebuilt only when a source changed (frontend/dist is git-ignored).
FRONTEND_SOURCES := $(shell find frontend/src frontend/public -type f 2>/dev/null) frontend/index.html \
  frontend/vite.config.js frontend/package-lock.json
frontend/dist/index.html: $(FRONTEND_SOURCES) frontend/node_modules/.installed
	cd frontend && npm run build -- --logLevel warn

run: install-run backend/.env frontend/dist/index.html
	@scripts/run-stack.sh preview

dev: install-run backend/.env
	@scripts/run-stack.sh dev

test: install lint test-backend test-frontend e2e bench-smoke test-compose

COMPOSE_LINT_SECRETS := .run/lint-secrets
lint: install lint-deploy
	$(VENV)/bin/ruff check backend
	$(VENV)/bin/ruff check --config backend/ruff.toml bench
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.dependabot .github/dependabot.yml
	cd frontend && npm run lint

# Re-pin the backend's locks after editing backend/requirements*.in (needs the package index).
lock: $(VENV)/.dev
	cd backend && ../$(VENV)/bin/pip-compile -q --generate-hashes --allow-unsafe --no-emit-index-url --no-emit-find-links \
	  -o requirements.txt requirements.in
	cd backend && ../$(VENV)/bin/pip-compile -q --generate-hashes --allow-unsafe --no-emit-index-url --no-emit-find-links \
	  -o requirements-dev.txt requirements-dev.in

# Dockerfiles, compose files (each override with the main file) and Kubernetes manifests.
# kustomize is not installed here: the base's resources and the overlays' namespaces are checked
# as files (kubernetes-validate, checkov); the overlays' patches are not rendered.
lint-deploy: install .venv-checkov/.installed
	$(VENV)/bin/hadolint backend/Dockerfile frontend/Dockerfile deploy/redis/Dockerfile
	@scripts/compose-secrets.sh $(COMPOSE_LINT_SECRETS) >/dev/null
	for extra in "" docker-compose.dev.yml docker-compose.scale.yml docker-compose.tls.yml; do \
	  PULSE_SECRETS_DIR=$(COMPOSE_LINT_SECRETS) TLS_CERT=/dev/null TLS_KEY=/dev/null \
	    docker-compose -f docker-compose.yml $${extra:+-f $$extra} config -q || exit 1; \
	done
	$(VENV)/bin/kubernetes-validate --strict --quiet deploy/k8s/base/[!k]*.yaml deploy/k8s/overlays/*/namespace.yaml
	# Skipped: CKV_K8S_21 (the base has no namespace; the overlays set it), CKV_K8S_43 (images by
	# tag; the release workflow deploys by digest).
	.venv-checkov/bin/checkov -d deploy/k8s --framework kubernetes --quiet --compact --skip-download \
	  --skip-check CKV_K8S_21,CKV_K8S_43

# The Docker Compose stack, built and tested from outside (scripts/compose-test.sh). Needs a Docker
# engine (one is installed and started here when none answers, as root); skip: SKIP_COMPOSE=1.
test-compose: install
ifeq ($(SKIP_COMPOSE),1)
	@echo "test-compose: skipped (SKIP_COMPOSE=1)"
else
	@scripts/compose-test.sh
endif

test-backend: install
	cd backend && ../$(PY) -m pytest

test-frontend: install
	cd frontend && npm test

e2e: install
	cd frontend && npm run e2e

screenshots: install  # refreshes docs/screenshot*.png from a live stack
	cd frontend && UPDATE_SCREENSHOTS=1 npm run e2e

# The benchmark (bench/README.md): full matrix (~2 h), quick (~5 min), smoke (~1 min; checks
# that results are complete, never timings).
bench: install bench/node_modules/.installed
	$(PY) bench/run.py --full

bench-quick: install bench/node_modules/.installed
	$(PY) bench/run.py --quick

bench-smoke: install bench/node_modules/.installed
	$(PY) bench/run.py --smoke

clean:
	rm -rf .run frontend/dist
	@echo "kept: the stack's Docker images and base images (docker rmi to remove them)"

# Two commands for everyone: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

HOST ?= 127.0.0.1
MQTT_PORT ?= 1883
HTTP_PORT ?= 8080
DATA_DIR ?= ./data

.PHONY: run test test-postgresql lint typecheck unit clean system-deps smoke-install

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	exec $(BIN)/iotjobs serve --host $(HOST) --mqtt-port $(MQTT_PORT) --http-port $(HTTP_PORT) --data-dir $(DATA_DIR)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy cannot follow pyproject's package-dir mapping; give it the installed layout as links.
typecheck: $(STAMP)
	mkdir -p build/typecheck/iot_jobs_bridge
	for folder in broker device_sdk jobs_service schemas simulator; do \
		ln -sfn ../../../$$folder build/typecheck/iot_jobs_bridge/$$folder; done
	$(BIN)/mypy

system-deps:
	./scripts/system-deps.sh

# A plain install (no extras) and a device install, each in a clean venv, actually run.
smoke-install:
	PYTHON=$(PYTHON) ./scripts/smoke-install.sh

test: lint typecheck system-deps smoke-install
	$(BIN)/python -m pytest
	$(MAKE) --no-print-directory test-postgresql

# The unit and integration tests again, each store a database on a throwaway PostgreSQL
# (the broker's and the HTTP layer's own tests use no store; the scale-out tests run
# on PostgreSQL in the first pass already).
test-postgresql: $(STAMP) system-deps
	IOTJOBS_TEST_STORE=postgresql $(BIN)/python -m pytest tests/unit tests/integration \
		--ignore=tests/integration/scale_out

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

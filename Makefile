# Two set-up commands: `make demo` and `make test`. Everything else is installed from this repo's files.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: demo test lint bench soak install clean

install: $(STAMP)

# Dependencies are locked in constraints.txt (unpinned boto3 next to moto[server] makes pip backtrack for minutes).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/cfbot demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy app base bot incidents demo commands integrations sandbox tests
	@if command -v promtool >/dev/null 2>&1; then promtool check rules deploy/prometheus/rules.yml; \
	else echo "lint: promtool not installed, deploy/prometheus/rules.yml not checked (scripts/services.sh installs it)"; fi
	@if command -v amtool >/dev/null 2>&1; then amtool check-config deploy/prometheus/alertmanager.yml >/dev/null \
	&& echo "amtool: deploy/prometheus/alertmanager.yml SUCCESS"; \
	else echo "lint: amtool not installed, deploy/prometheus/alertmanager.yml not checked (scripts/services.sh installs it)"; fi

# scripts/services.sh starts PostgreSQL and Redis if needed, preloads pg_stat_statements and installs Prometheus and
# Alertmanager when missing (one line says what it did); first, so that lint's promtool/amtool checks run too.
test: $(STAMP)
	scripts/services.sh
	$(MAKE) --no-print-directory lint
	$(BIN)/pytest -q -rs

bench: $(STAMP)
	$(BIN)/python -m bench

# The chaos soak (bench/soak.py, issue 15): 3 replicas, ~10 minutes of changes, approvals and reads while replicas
# are killed, the store restarts and Slack and Kubernetes fail; the invariant table goes to bench/RESULTS.md and
# any violation fails the target. Needs this machine's PostgreSQL server binaries and kubectl; installs nothing.
soak: $(STAMP)
	$(BIN)/python -m bench soak

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

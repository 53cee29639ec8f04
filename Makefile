# The two commands of the README. Each one installs what it needs first.
.PHONY: demo test lint bootstrap venv clean

VENV := .venv
PY := $(VENV)/bin/python
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false

demo: bootstrap $(VENV)/.synced
	$(VENV)/bin/ladder demo

test: bootstrap $(VENV)/.synced
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest

lint: $(VENV)/.synced
	$(VENV)/bin/ruff check .

bootstrap:
	@bash scripts/bootstrap.sh

venv: $(VENV)/.synced

$(VENV)/.synced: pyproject.toml uv.lock scripts/venv.sh
	@bash scripts/venv.sh
	@touch $@

clean:
	rm -rf $(VENV) .ladder .pytest_cache

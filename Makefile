# Parley: `make run` serves the chat, `make test` runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test venv dev-venv system-deps clean cluster screenshots bench

# The runtime environment: requirements.txt only.
$(BIN)/.runtime: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

# The same environment plus the test tools.
$(BIN)/.dev: $(BIN)/.runtime requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(BIN)/.runtime
dev-venv: $(BIN)/.dev

run: venv
	@$(BIN)/flask --app wsgi ensure-admin
	@echo
	@echo "Parley is starting on http://$(HOST):$(PORT) (Ctrl-C stops it)."
	@echo "Sign in there, or create an account at http://$(HOST):$(PORT)/register"
	@echo
	BIND=$(HOST):$(PORT) $(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

# redis-server, nginx, Chromium, PostgreSQL: installed from Debian when missing
# (as root or with passwordless sudo), the local PostgreSQL started when down;
# only looks when all is there. What it cannot provide, the tests skip.
system-deps:
	@tests/support/setup-system.sh

test: dev-venv system-deps
	$(BIN)/pytest $(PYTEST_ARGS)

# Refresh the README's screenshot (docs/screenshots/chat.png) from the browser test.
screenshots: dev-venv
	PUBLISH_SCREENSHOTS=1 $(BIN)/pytest tests/browser/test_chat.py -k screenshot_of_the_chat

# The default benchmark set: connections, fan-out, chat, join and the reconnect
# storm, each beside the relay (see docs/performance.md).
bench: dev-venv
	$(BIN)/python -m bench.run --scenario default --repeat 3

clean:
	rm -rf $(VENV) test-output .pytest_cache

# Redis, two gunicorn instances and nginx (sticky sessions) on loopback.
cluster: venv
	$(BIN)/python deploy/cluster.py

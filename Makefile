# `make run` sets everything up and starts the app; `make test` sets everything up and runs every test.
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup browser nginx run test bench weight load prefetch serve serve-stop

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# Debian's Chromium for the real-browser tests (Playwright cannot download browsers here).
browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; }

# Debian's nginx, for the test of two app replicas behind deploy/nginx-replicas.conf (run as this user, on loopback).
nginx:
	@test -x /usr/sbin/nginx || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q nginx; }

run: setup
	$(VENV)/bin/streamlit run app.py

# The model service for XAI_BACKEND=ray-serve (README, "For schools"): a Ray head on this machine running the
# deployments in serving/serve.yaml; the pages then hold no model. `make serve-stop` stops it.
serve: setup
	PYTHONPATH=$(CURDIR) $(VENV)/bin/ray start --head --disable-usage-stats --include-dashboard=false
	PYTHONPATH=$(CURDIR) $(VENV)/bin/serve run --non-blocking serving/serve.yaml

serve-stop:
	$(VENV)/bin/ray stop

test: setup browser nginx
	$(PY) -m pytest

bench: setup
	$(PY) benchmarks/image_speed.py
	$(PY) benchmarks/text_speed.py
	$(PY) benchmarks/clip_speed.py
	$(PY) benchmarks/faithfulness_speed.py
	$(PY) benchmarks/sanity_speed.py
	$(PY) benchmarks/perturbation_speed.py
	$(PY) benchmarks/audit_speed.py
	$(PY) benchmarks/inside_speed.py
	$(PY) benchmarks/cli_weight.py

# What the pages send to the browser (needs the browser; about a minute): websocket bytes per Explain and per change.
weight: setup browser
	$(PY) benchmarks/page_weight.py

# Many users at once, both layouts side by side (needs the browser and nginx; long): time to the
# first map and the last figure, bytes per student, server memory, own results; then Ray Serve's batching gain.
load: setup browser nginx
	$(PY) benchmarks/load.py

# The day before class, on a machine with a network: every named model into the local cache.
prefetch: setup
	$(PY) -m models.prefetch

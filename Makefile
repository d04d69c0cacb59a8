# The two commands a fresh machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
DEMO_OUT ?= out/demo

.PHONY: demo test install clean bench

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip setuptools wheel

# Stamp files: reinstall only when the project's requirements change.
$(VENV)/.installed: $(PY) pyproject.toml constraints.txt
	$(PIP) install -c constraints.txt -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install -c constraints.txt -e '.[test]'
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/vlwm demo --out $(DEMO_OUT)

test: $(VENV)/.installed-test
	$(PY) -m pytest -q -n 2 --dist loadfile

bench: $(VENV)/.installed-test
	$(PY) benchmarks/bench_raycast.py
	$(PY) benchmarks/bench_sim.py
	$(PY) benchmarks/bench_gt.py
	$(PY) benchmarks/bench_data.py
	$(PY) benchmarks/bench_models.py

clean:
	rm -rf $(VENV) out

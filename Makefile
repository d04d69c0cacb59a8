# The two commands a fresh machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
DEMO_OUT ?= out/demo

.PHONY: demo test test-numeric install clean bench

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

# The numeric tests (model parity, evaluation metrics, ground-truth geometry, ray casting) under
# each of PyTorch's CPU kernel sets; CI=true makes missing reference files (../shared) fail.
NUMERIC_TESTS := tests/models/test_vae_parity.py tests/models/test_world_model_parity.py \
	tests/models/test_losses.py tests/models/test_adapt.py tests/models/test_quantizer_restarts.py \
	tests/models/test_execution.py tests/eval/test_occupancy_metric.py tests/eval/test_vpq.py \
	tests/eval/test_trajectory.py tests/eval/test_collision.py tests/eval/test_baselines.py \
	tests/gt/test_grid.py tests/gt/test_voxelize.py tests/gt/test_visibility.py tests/gt/test_temporal.py \
	tests/gt/test_scene_source.py tests/gt/test_lidar_source.py tests/gt/test_frame_gt.py tests/gt/test_instances.py \
	tests/world/test_raycast.py
NUMERIC_CAPABILITIES := default avx2 avx512

test-numeric: $(VENV)/.installed-test
	@for cap in $(NUMERIC_CAPABILITIES); do \
		echo "== ATEN_CPU_CAPABILITY=$$cap"; \
		CI=true ATEN_CPU_CAPABILITY=$$cap $(PY) -m pytest -q -p no:xdist --require-reference \
			-k "not torch_compile" $(NUMERIC_TESTS) || exit 1; \
	done

bench: $(VENV)/.installed-test
	$(PY) benchmarks/bench_raycast.py
	$(PY) benchmarks/bench_sim.py
	$(PY) benchmarks/bench_gt.py
	$(PY) benchmarks/bench_data.py
	$(PY) benchmarks/bench_models.py

clean:
	rm -rf $(VENV) out

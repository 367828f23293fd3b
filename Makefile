# The two set-up commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench-compress bench-compress-families bench-compress-width bench-incremental bench-civc bench-civc-legacy bench-civc-cost bench-loader docs clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/distillkit demo --out runs/demo

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench-compress: $(STAMP)
	$(BIN)/python benchmarks/compress_fashion_mnist.py

bench-compress-families: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/compress_families.py

bench-compress-width: $(STAMP)
	$(BIN)/python benchmarks/compress_width_latency.py

bench-incremental: $(STAMP)
	$(BIN)/python benchmarks/incremental_synthetic.py

bench-civc: $(STAMP)
	$(BIN)/python benchmarks/civc_bench.py --every-table
	$(BIN)/python benchmarks/civc_steps.py --orders 0 1 2 3 4 5 6 7 8 9 --entries "joint (upper bound)" \
		"civc, frames at 0.6, new clips small" lucir "lucir + CBF"

bench-civc-legacy: $(STAMP)
	$(BIN)/python benchmarks/civc_synthetic.py comparison
	$(BIN)/python benchmarks/civc_synthetic.py ablation
	$(BIN)/python benchmarks/civc_synthetic.py budget
	$(BIN)/python benchmarks/civc_synthetic.py appearance

bench-civc-cost: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/civc_step_cost.py

bench-loader: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/video_loader.py

docs: $(STAMP)
	$(BIN)/distillkit config compress > docs/config-compress.md
	$(BIN)/distillkit config compress-video > docs/config-compress-video.md
	$(BIN)/distillkit config train > docs/config-train.md
	$(BIN)/distillkit config train-video > docs/config-train-video.md
	$(BIN)/distillkit config incremental > docs/config-incremental.md
	$(BIN)/distillkit methods --options > docs/methods.md

clean:
	rm -rf $(VENV) runs build *.egg-info

# TDT4265 Assignment 2. `make report` builds the report (notebook, assignment2.html, assignment2.pdf),
# `make lab` opens it in JupyterLab, `make test` runs the tests; each creates the virtual environment
# .venv on first use. MNIST: set MNIST_DIR to a folder holding the four original IDX files, or let
# the loader download them into data/mnist.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
NB      := assignment2.ipynb
EXPORT  := $(BIN)/jupyter nbconvert --config export/nbconvert_config.py
HEADINGS := $(foreach t,1a 1b 2a 2b 2c 2d 3a 3b 3c 4a 4b 4c 4d 4e,--require-heading "Task $(t)")
# The PDF keeps the tasks in the first pages: the appendices start by page 9.
PAGE_LIMITS := --heading-by-page "Appendix A=9"
# Execute in place with progress in the terminal, keeping the outputs free of run-to-run noise
# (no cell timings, no widget state): report/execute.py.
EXECUTE := $(BIN)/python -m report.execute --timeout 1800
LAB_PORT ?= 8888

.PHONY: setup report lab html pdf test kernel-check bench clean

setup: $(STAMP)
$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

## report: run the whole notebook from a clean cache (full assignment settings), then the HTML
## (which needs no TeX) and the PDF, side by side (each export takes one core; their output is
## printed whole, one after the other)
report: $(STAMP)
	rm -rf cache
	$(EXECUTE) $(NB)
	$(MAKE) --jobs=2 --output-sync=target html pdf

## lab: open the notebook in JupyterLab with the project's environment (the explorer needs a kernel)
# The kernel runs the virtualenv's Python (the server's own) and inherits MNIST_DIR; unset, the loader
# reads (or downloads into) data/mnist. No browser is opened: the server prints the URL, token included.
LAB_FLAGS  = --no-browser --port=$(LAB_PORT) --ServerApp.port_retries=0 \
             --LabApp.default_url=/lab/tree/$(NB) $(if $(filter 0,$(shell id -u)),--allow-root)
# The kernels inherit the pinned BLAS and NumPy kernels (helpers.pin_kernels), even if a cell
# imports NumPy before helpers.
lab: export PINS = import helpers, os; print(" ".join(f"{k}={os.environ[k]}" for k in ("OPENBLAS_CORETYPE", "NPY_DISABLE_CPU_FEATURES") if k in os.environ))
lab: $(STAMP)
	@echo "JupyterLab on $(NB): open the URL http://localhost:$(LAB_PORT)/lab/tree/$(NB)?token=... printed below"
	@echo "(another port: make lab LAB_PORT=8890). MNIST_DIR=$${MNIST_DIR:-data/mnist (downloaded when missing)}."
	@echo "Ctrl-C twice stops the server and its kernels."
	PATH="$(CURDIR)/$(BIN):$$PATH" env $$($(BIN)/python -c "$$PINS") $(BIN)/jupyter lab $(LAB_FLAGS)

## html: export the notebook as it is (no re-run) to assignment2.html, one self-contained file with
## code hidden, formulas as MathML and the explorer's sliders working without a kernel or network
html: $(STAMP)
	$(EXPORT) --to html $(NB)
	$(BIN)/python export/check_html.py assignment2.html --require-explorer $(HEADINGS)

## pdf: export the notebook as it is (no re-run) to assignment2.pdf and check it
pdf: $(STAMP)
	$(EXPORT) --to pdf $(NB)
	$(BIN)/python export/check_pdf.py assignment2.pdf --notebook $(NB) $(HEADINGS) $(PAGE_LIMITS)

## test: the test suite (real-data tests run when MNIST_DIR is set)
test: $(STAMP)
	$(BIN)/python -m pytest -q

## kernel-check: the full report rerun with a second OpenBLAS kernel family (SkylakeX on an AVX-512
## processor, else Sandybridge): every verdict and rendered conclusion must be the committed one; what
## changes is written to build/kernel-check.txt (CI runs it too)
kernel-check: $(STAMP)
	A2_KERNEL_CHECK=1 $(BIN)/python -m pytest -q -s tests/test_report.py -k another_kernel_family

## bench: the training-speed benchmark and the report's run time and memory
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_train.py
	$(BIN)/python benchmarks/bench_report.py

clean:
	rm -rf cache build assignment2.pdf assignment2.html .rerun-*.ipynb

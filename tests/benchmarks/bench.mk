# The optimizer benchmark of issue 3, included by the Makefile (which defines VENV, PY
# and the venv and system-packages targets).
#   make bench                          every format, mode and tool
#   make bench BENCH_ARGS='--formats png --tools ours,oxipng'
#   make bench-memory                   peak memory on the largest files
# It installs the bench extra and the peer programs it compares against, then runs on
# ../shared/corpus; the table, the verdicts and a chart go to bench-results/.

BENCH_ARGS ?=
BENCH_INSTALLED := $(VENV)/.bench-installed

.PHONY: bench bench-memory bench-peers

bench: venv system-packages bench-peers
	nice -n 10 $(PY) -m tests.benchmarks.optimizers $(BENCH_ARGS)

# Peak memory of ours and the peers on the corpus's largest files.
bench-memory: venv system-packages bench-peers
	$(PY) -m tests.benchmarks.memory

bench-peers: $(BENCH_INSTALLED)
	PY=$(PY) bash tests/benchmarks/install_peers.sh

$(BENCH_INSTALLED): setup.cfg | $(INSTALLED)
	$(PY) -m pip install --quiet --editable '.[test,bench]'
	touch $@

# The optimizer benchmark of issue 3, included by the Makefile (which defines VENV, PY
# and the venv and system-packages targets).
#   make bench                          every format, mode and tool
#   make bench BENCH_ARGS='--formats png --tools ours,oxipng'
# It installs the bench extra and the peer programs it compares against, then runs on
# ../shared/corpus; the table, the verdicts and a chart go to bench-results/.

BENCH_ARGS ?=
BENCH_INSTALLED := $(VENV)/.bench-installed

.PHONY: bench bench-peers

bench: venv system-packages bench-peers
	nice -n 10 $(PY) -m tests.benchmarks.optimizers $(BENCH_ARGS)

bench-peers: $(BENCH_INSTALLED)
	PY=$(PY) bash tests/benchmarks/install_peers.sh

$(BENCH_INSTALLED): setup.cfg | $(INSTALLED)
	$(PY) -m pip install --quiet --editable '.[test,bench]'
	touch $@

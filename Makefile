# Entry points; each sets up what is missing on a fresh Debian machine.
.PHONY: run check check-asan build clean lint bench bench-callgrind \
  sweep error-matrix cancel-matrix yield-matrix matrices
.PHONY: check-clang check-valgrind gc-stress shuffle churn static

run:
	@scripts/run.sh

check:
	@scripts/test.sh

check-asan:
	@FDN_SANITIZE=1 scripts/test.sh

build:
	@scripts/setup.sh && scripts/build.sh

clean:
	rm -rf build build-asan build-release build-clang build-clang-asan

lint:
	@scripts/setup.sh && luacheck -q lua spec examples bench && \
	  clang-format --dry-run --Werror core/src/*.c core/include/fdn/*.h \
	    bindings/*.c bindings/*.h bindings/include/fdn/*.h spec/core/*.c spec/embed/*.c \
	    spec/core/*.h spec/fuzz/*.c spec/oom/*.c examples/*.c bench/floor/*.c bench/churn/*.c && echo "lint: clean"

# Benchmarks beside the peers (docs/performance.md): installs the peers,
# builds a release into build-release/, prints one table. Options:
# make bench RUNS=3 ONLY=W1,W3 PEERS=fdn,luv SCALE=0.5 CALLGRIND=no
bench:
	@RUNS="$(RUNS)" ONLY="$(ONLY)" PEERS="$(PEERS)" SCALE="$(SCALE)" N="$(N)" \
	  CALLGRIND="$(CALLGRIND)" JSON="$(JSON)" scripts/bench.sh

# Only the callgrind section: instructions per task for W1, W2, W6.
bench-callgrind:
	@ONLY="$(ONLY)" PEERS="$(PEERS)" CALLGRIND=only scripts/bench.sh

# Reliability under load (docs/reliability-load.md): each prints its figures
# and fails when one falls short. SOAK_N=10000000 make soak for the long form.
.PHONY: soak backpressure shutdown-test
soak:
	@SOAK_N="$(SOAK_N)" scripts/load.sh soak

backpressure:
	@BACKPRESSURE_ITEMS="$(ITEMS)" scripts/load.sh backpressure

shutdown-test:
	@REPEAT="$(REPEAT)" scripts/load.sh shutdown

# Allocation-failure sweep (docs/reliability-load.md): REPEAT=5 for the long form.
.PHONY: oom-sweep
oom-sweep:
	@REPEAT="$(REPEAT)" scripts/oom.sh

# libFuzzer targets (docs/reliability-load.md): FUZZ_TIME seconds per target
# (60 by default; the long form: FUZZ_TIME=3600 FUZZ_JOBS=2), then
# `make fuzz-merge` to fold what they found into the committed corpus.
.PHONY: fuzz fuzz-merge
fuzz:
	@FUZZ_TIME="$(FUZZ_TIME)" FUZZ_JOBS="$(FUZZ_JOBS)" FUZZ_TARGETS="$(FUZZ_TARGETS)" \
	  scripts/fuzz.sh

fuzz-merge:
	@FUZZ_TARGETS="$(FUZZ_TARGETS)" scripts/fuzz.sh merge

# Reliability matrices (docs/reliability-matrices.md): each prints its
# figure and fails when it falls short. FDN_SANITIZE=1 runs them on ASan.
sweep:
	@scripts/matrix.sh sweep

error-matrix:
	@scripts/matrix.sh error_matrix

cancel-matrix:
	@scripts/matrix.sh cancel_matrix

yield-matrix:
	@scripts/matrix.sh yield_matrix

matrices:
	@scripts/matrix.sh all

# Reliability hygiene (docs/reliability-hygiene.md): each prints its figure
# and exits non-zero when it falls short. Long forms: FULL=1 make
# check-valgrind, COUNT=100 make shuffle, FDN_GC_STRESS=task make gc-stress.
check-clang:
	@scripts/check-clang.sh

check-valgrind:
	@scripts/check-valgrind.sh

gc-stress:
	@scripts/gc-stress.sh

shuffle:
	@scripts/shuffle.sh

churn:
	@scripts/churn.sh

static:
	@scripts/static.sh

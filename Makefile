# execmem: a thin wrapper around CMake.
#
#   make deps                   install missing Debian packages (apt-get; root or sudo)
#   make build                  configure build/ (once) and build with -j$(nproc)
#   make test                   build, then run every test with ctest
#   make test SANITIZE=address  the same in build-asan/ (ASan + UBSan)
#   make test SANITIZE=thread   the same in build-tsan/ (TSan)
#   make test-repeat [REPEAT=5] make test REPEAT times in a row, stop at the first failure
#   make demo [DEMO_ARGS=...]   build, run build/bin/execmem-demo; its timeline, plot and
#                               advice go to build/demo/ (DEMO_OUT)
#   make bench [QUICK=1]        build, then bench/run.sh
#   make soak                   build, then Redis and PostgreSQL under long loads (tests/soak)
#   make fuzz [FUZZ_SECONDS=60] build the libFuzzer targets (clang-14, build-fuzz/), run
#                               each for FUZZ_SECONDS over tests/fuzz/corpus/
#   make install [PREFIX=/usr/local]  build, then install the libraries, headers,
#                               execmemConfig.cmake and execmem.pc under PREFIX
#   make abi-dump               build, then rewrite tests/abi/<SONAME>.abi, the ABI dump of
#                               libexecmem.so's C API that make test compares with (docs/abi.md)
#   make format / format-check  clang-format the sources / check they are formatted
#   make clean                  remove the build directories
#
# Variables: SANITIZE, BUILD_TYPE, CMAKE_ARGS (extra -D...), JOBS, CTEST_JOBS,
# CTEST_ARGS (e.g. CTEST_ARGS='-R pool'), PREFIX, DESTDIR, REPEAT, SKIP_DEPS=1 (not on Debian),
# FUZZ_SECONDS, FUZZ_TARGETS (e.g. FUZZ_TARGETS=api).
SHELL := /bin/bash
.DEFAULT_GOAL := build
.DELETE_ON_ERROR:
MAKEFLAGS += --no-print-directory

CMAKE ?= cmake
CTEST ?= ctest
CLANG_FORMAT ?= clang-format
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_JOBS ?= 2
CTEST_ARGS ?=
CMAKE_ARGS ?=
SANITIZE ?=
QUICK ?=
DEMO_ARGS ?=
DEMO_OUT ?= $(BUILD_DIR)/demo
PREFIX ?= /usr/local
REPEAT ?= 5

DEPS := cmake g++ make pkg-config libjemalloc-dev libabsl-dev libgtest-dev libgmock-dev \
        libbenchmark-dev libmimalloc-dev libgoogle-perftools-dev gnuplot-nox valgrind \
        python3 sqlite3 xz-utils git perl redis-server redis-tools postgresql postgresql-contrib \
        python3-distributed python3-dask python3-pandas python3-numpy python3-psutil \
        abigail-tools binutils python3-dev clang-14

# One build directory per sanitizer, so that build/ stays the normal build.
ifeq ($(SANITIZE),)
  BUILD_DIR := build
  BUILD_TYPE ?= RelWithDebInfo
  TEST_ENV :=
else ifeq ($(SANITIZE),address)
  BUILD_DIR := build-asan
  BUILD_TYPE ?= Debug
  ASAN_OPTIONS ?= detect_leaks=1:halt_on_error=1:check_initialization_order=1:strict_init_order=1
  UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1
  TEST_ENV := ASAN_OPTIONS='$(ASAN_OPTIONS)' UBSAN_OPTIONS='$(UBSAN_OPTIONS)'
else ifeq ($(SANITIZE),thread)
  BUILD_DIR := build-tsan
  BUILD_TYPE ?= Debug
  TSAN_OPTIONS ?= halt_on_error=1:second_deadlock_stack=1
  # TSan's shadow layout breaks with high mmap randomisation on some kernels;
  # running without ASLR avoids "unexpected memory mapping" failures.
  TEST_ENV := TSAN_OPTIONS='$(TSAN_OPTIONS)' \
              $(shell setarch $$(uname -m) -R true 2>/dev/null && echo setarch $$(uname -m) -R)
else
  $(error SANITIZE='$(SANITIZE)' is not accepted: use SANITIZE=address, SANITIZE=thread or leave it empty)
endif

ifneq ($(SANITIZE),)
  ifneq ($(filter bench,$(MAKECMDGOALS)),)
    $(error make bench measures the normal build: run it without SANITIZE)
  endif
endif

CONFIGURE_ARGS := -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DEXECMEM_SANITIZE=$(SANITIZE) $(CMAKE_ARGS)
CONFIGURE_STAMP := $(BUILD_DIR)/.execmem-configured

.PHONY: all deps configure build test test-repeat demo bench soak fuzz install abi-dump format format-check clean help
all: build

help:
	@sed -n '2,/^[^#]/s/^# \{0,1\}//p' $(firstword $(MAKEFILE_LIST))

deps:
	@bash cmake/deps.sh $(DEPS)

# Configures only when the build directory is new or the arguments changed;
# afterwards CMake re-runs itself when a CMakeLists.txt or a globbed folder changes.
configure: deps
	@want='$(CONFIGURE_ARGS)'; \
	if [ -f '$(BUILD_DIR)/CMakeCache.txt' ] && [ "$$(cat '$(CONFIGURE_STAMP)' 2>/dev/null)" = "$$want" ]; then \
	  exit 0; \
	fi; \
	rm -f '$(CONFIGURE_STAMP)'; \
	echo "$(CMAKE) -S . -B $(BUILD_DIR) $$want"; \
	$(CMAKE) -S . -B '$(BUILD_DIR)' $(CONFIGURE_ARGS) && printf '%s' "$$want" > '$(CONFIGURE_STAMP)'

build: configure
	$(CMAKE) --build '$(BUILD_DIR)' -j $(JOBS)

test: build
	$(TEST_ENV) $(CTEST) --test-dir '$(BUILD_DIR)' --output-on-failure -j $(CTEST_JOBS) $(CTEST_ARGS)

# The suite must stay green run after run (issue 12): a flaky test shows here.
test-repeat: build
	@summary=""; \
	for i in $$(seq 1 $(REPEAT)); do \
	  start=$$(date +%s); \
	  if $(MAKE) test; then status=passed; else status=FAILED; fi; \
	  summary="$$summary  run $$i: $$status in $$(( $$(date +%s) - start )) s"$$'\n'; \
	  if [ $$status = FAILED ]; then \
	    printf 'test-repeat summary (stopped at the first failure):\n%s' "$$summary"; exit 1; \
	  fi; \
	done; \
	printf 'test-repeat summary: all $(REPEAT) runs passed\n%s' "$$summary"

# The demo writes its timeline, stats, plot and advice into $(DEMO_OUT).
# execmem-advise exits 1 when an executor is not ok (the starved one is
# meant to be under-allocated); only 2, bad input, fails the target.
demo: build
	@test -x '$(BUILD_DIR)/bin/execmem-demo' || { echo "demo: $(BUILD_DIR)/bin/execmem-demo was not built (no demo/*.cc?)" >&2; exit 1; }
	@mkdir -p '$(DEMO_OUT)'
	$(TEST_ENV) '$(BUILD_DIR)/bin/execmem-demo' --timeline='$(DEMO_OUT)/timeline.jsonl' --json='$(DEMO_OUT)/stats.json' $(DEMO_ARGS)
	'$(BUILD_DIR)/bin/execmem-plot' '$(DEMO_OUT)/timeline.jsonl' -o '$(DEMO_OUT)/timeline.png'
	@echo "$(BUILD_DIR)/bin/execmem-advise $(DEMO_OUT)/timeline.jsonl"; \
	'$(BUILD_DIR)/bin/execmem-advise' '$(DEMO_OUT)/timeline.jsonl' > '$(DEMO_OUT)/advice.txt'; rc=$$?; \
	cat '$(DEMO_OUT)/advice.txt'; [ $$rc -le 1 ]
	@echo "demo: wrote $(DEMO_OUT)/timeline.jsonl, stats.json, timeline.png and advice.txt"

bench: build
	@test -f bench/run.sh || { echo "bench: bench/run.sh does not exist" >&2; exit 1; }
	QUICK='$(QUICK)' BUILD_DIR='$(BUILD_DIR)' bash bench/run.sh

soak: build
	@test -z '$(SANITIZE)' || { echo "soak: the servers run with the preload, which sanitizers replace: run it without SANITIZE" >&2; exit 1; }
	bash tests/soak/run.sh '$(BUILD_DIR)/lib/libexecmem_preload.so' long
# libFuzzer: the targets of tests/fuzz built with clang, ASan + UBSan and
# coverage (cmake/ExecmemFuzz.cmake), each run for FUZZ_SECONDS over its
# checked-in corpus plus build-fuzz/corpus/<target> (where new inputs go).
# (The project's -Werror is for gcc, the compiler of record; clang's extra
# warnings are shown, not fatal, here.)
# A finding is written to build-fuzz/artifacts/<target>/ and fails the run:
# fix it, then add the input to tests/fuzz/corpus/<target>/ (make test replays it).
FUZZ_DIR := build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= config options api
FUZZ_CC ?= clang-14
FUZZ_CXX ?= clang++-14
FUZZ_CONFIGURE_ARGS := -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=$(FUZZ_CC) \
  -DCMAKE_CXX_COMPILER=$(FUZZ_CXX) -DEXECMEM_SANITIZE=address -DEXECMEM_FUZZ=ON \
  -DEXECMEM_WERROR=OFF \
  -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link -DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link

fuzz:
	@command -v $(FUZZ_CXX) >/dev/null || { echo "fuzz: $(FUZZ_CXX) not found (apt-get install clang-14 libclang-rt-14-dev)" >&2; exit 1; }
	@want='$(FUZZ_CONFIGURE_ARGS)'; \
	if [ ! -f '$(FUZZ_DIR)/CMakeCache.txt' ] || [ "$$(cat '$(FUZZ_DIR)/.execmem-configured' 2>/dev/null)" != "$$want" ]; then \
	  rm -f '$(FUZZ_DIR)/.execmem-configured'; \
	  $(CMAKE) -S . -B '$(FUZZ_DIR)' $(FUZZ_CONFIGURE_ARGS) && printf '%s' "$$want" > '$(FUZZ_DIR)/.execmem-configured'; \
	fi
	$(CMAKE) --build '$(FUZZ_DIR)' -j $(JOBS) --target $(addprefix fuzz_,$(FUZZ_TARGETS))
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p '$(FUZZ_DIR)'/corpus/$$t '$(FUZZ_DIR)'/artifacts/$$t; \
	  dict=; [ -f tests/fuzz/$$t.dict ] && dict=-dict=tests/fuzz/$$t.dict; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  '$(FUZZ_DIR)'/bin/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $$dict \
	    -artifact_prefix='$(FUZZ_DIR)'/artifacts/$$t/ '$(FUZZ_DIR)'/corpus/$$t tests/fuzz/corpus/$$t \
	    2>&1 | tee '$(FUZZ_DIR)'/fuzz-$$t.log | grep -E '^#[0-9]+[[:space:]]+(DONE|INITED)|^stat::|ERROR|SUMMARY|^fuzz:|Test unit written'; \
	  [ $${PIPESTATUS[0]} -eq 0 ] || { echo "fuzz: $$t failed (see $(FUZZ_DIR)/fuzz-$$t.log)" >&2; exit 1; }; \
	done
# DESTDIR (staged installs, packaging) is honoured by cmake --install itself.
install: build
	@test -n '$(PREFIX)' || { echo "install: PREFIX is empty" >&2; exit 1; }
	DESTDIR='$(DESTDIR)' $(CMAKE) --install '$(BUILD_DIR)' --prefix '$(PREFIX)'

# The committed ABI dump (tests/abi/abi_check.sh): after a change that
# docs/abi.md allows (a function added, a field appended to a versioned stats
# struct), or with a new SONAME. Refuses when functions were removed under
# the same SONAME. Needs a build with debug information (the default).
abi-dump: build
	bash tests/abi/abi_check.sh dump '$(BUILD_DIR)/lib/libexecmem.so' tests/abi '$(CURDIR)/include' '$(CURDIR)'

FORMAT_DIRS := include platform pool budget cache executor api shim demo bench tests
FORMAT_FILES = $(shell find $(wildcard $(FORMAT_DIRS)) -type f \( -name '*.h' -o -name '*.hpp' -o -name '*.cc' -o -name '*.c' \) 2>/dev/null)

format:
	@command -v $(CLANG_FORMAT) >/dev/null || { echo "format: $(CLANG_FORMAT) not found (apt-get install clang-format)" >&2; exit 1; }
	@files='$(FORMAT_FILES)'; [ -z "$$files" ] || { echo "$(CLANG_FORMAT) -i <$$(wc -w <<<"$$files") files>"; $(CLANG_FORMAT) -i $$files; }

format-check:
	@command -v $(CLANG_FORMAT) >/dev/null || { echo "format-check: $(CLANG_FORMAT) not found (apt-get install clang-format)" >&2; exit 1; }
	@files='$(FORMAT_FILES)'; [ -z "$$files" ] || $(CLANG_FORMAT) --dry-run -Werror $$files

clean:
	rm -rf build build-asan build-tsan build-fuzz

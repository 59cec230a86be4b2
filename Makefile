# execmem: a thin wrapper around CMake.
#
#   make deps                   install missing Debian packages (apt-get; root or sudo)
#   make build                  configure build/ (once) and build with -j$(nproc)
#   make test                   build, then run every test with ctest
#   make test SANITIZE=address  the same in build-asan/ (ASan + UBSan)
#   make test SANITIZE=thread   the same in build-tsan/ (TSan)
#   make demo [DEMO_ARGS=...]   build, run build/bin/execmem-demo; its timeline, plot and
#                               advice go to build/demo/ (DEMO_OUT)
#   make bench [QUICK=1]        build, then bench/run.sh
#   make format / format-check  clang-format the sources / check they are formatted
#   make clean                  remove the build directories
#
# Variables: SANITIZE, BUILD_TYPE, CMAKE_ARGS (extra -D...), JOBS, CTEST_JOBS,
# CTEST_ARGS (e.g. CTEST_ARGS='-R pool'), SKIP_DEPS=1 (not on Debian).
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

DEPS := cmake g++ make pkg-config libjemalloc-dev libabsl-dev libgtest-dev libgmock-dev \
        libbenchmark-dev libmimalloc-dev libgoogle-perftools-dev gnuplot-nox valgrind \
        python3 sqlite3 xz-utils git perl

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

.PHONY: all deps configure build test demo bench format format-check clean help
all: build

help:
	@sed -n '2,16s/^# \{0,1\}//p' $(firstword $(MAKEFILE_LIST))

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

FORMAT_DIRS := include platform pool budget allocator shim demo bench tests
FORMAT_FILES = $(shell find $(wildcard $(FORMAT_DIRS)) -type f \( -name '*.h' -o -name '*.hpp' -o -name '*.cc' -o -name '*.c' \) 2>/dev/null)

format:
	@command -v $(CLANG_FORMAT) >/dev/null || { echo "format: $(CLANG_FORMAT) not found (apt-get install clang-format)" >&2; exit 1; }
	@files='$(FORMAT_FILES)'; [ -z "$$files" ] || { echo "$(CLANG_FORMAT) -i <$$(wc -w <<<"$$files") files>"; $(CLANG_FORMAT) -i $$files; }

format-check:
	@command -v $(CLANG_FORMAT) >/dev/null || { echo "format-check: $(CLANG_FORMAT) not found (apt-get install clang-format)" >&2; exit 1; }
	@files='$(FORMAT_FILES)'; [ -z "$$files" ] || $(CLANG_FORMAT) --dry-run -Werror $$files

clean:
	rm -rf build build-asan build-tsan

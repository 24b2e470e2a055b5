# kura — build, run and test.  The quick start is two commands:
#
#   make run     install build dependencies, build, start a server on
#                127.0.0.1:9000 with its data in ./var
#   make test    every test: source check, unit tests (plain and under
#                ASan+UBSan), integration tests, fuzz smoke; ends with
#                "N passed, N failed"
#
# Other targets: build, san, fuzz, check, setup, clean, bench.
# Extra server flags: make run ARGS="--config kura.ini".

# Debian's tools first: a user's pyenv/virtualenv python3, aws or meson
# earlier in PATH must not replace the packages scripts/setup.sh installs.
export PATH := /usr/sbin:/usr/bin:/sbin:/bin:$(PATH)

MESON ?= meson
NINJA ?= ninja
ARGS ?=
DATA_DIR ?= ./var
LISTEN ?= 127.0.0.1:9000

SAN_OPTS = -Db_sanitize=address,undefined -Db_lundef=false

.PHONY: all setup build run test san fuzz check clean bench

all: build

setup:
	@sh scripts/setup.sh

build: setup
	@test -f build/build.ninja || $(MESON) setup build
	$(NINJA) -C build

run: build
	exec ./build/kura server --data-dir $(DATA_DIR) --listen $(LISTEN) $(ARGS)

test: setup
	@bash scripts/run-tests.sh

san: setup
	@test -f build-san/build.ninja || $(MESON) setup build-san $(SAN_OPTS)
	$(NINJA) -C build-san

fuzz: setup
	@test -f build-fuzz/build.ninja || CC=clang $(MESON) setup build-fuzz \
		-Dfuzz=true -Dtests=false $(SAN_OPTS)
	$(NINJA) -C build-fuzz

# The house rules, then the layout of the C files this change touches
# (clang-format; which files and why: the top of scripts/check-format.sh).
check:
	@sh scripts/check-source.sh
	@sh scripts/check-format.sh

# kura against nginx, openssl speed and dd on the same bytes (about 10
# minutes; see docs/PERFORMANCE.md).  BENCH_ARGS="--quick" for a short run.
BENCH_ARGS ?=
bench:
	@sh scripts/setup.sh scripts/packages.txt scripts/packages-bench.txt
	@test -f build/build.ninja || $(MESON) setup build
	$(NINJA) -C build
	/usr/bin/python3 bench/run_bench.py --kura build/kura $(BENCH_ARGS)

# Never removes ./var: it holds the data of `make run`.
clean:
	rm -rf build build-san build-fuzz build-logs fuzz/corpus-work

# Everyday entry points; CMake does the building.
#   make          build ./build/sluice
#   make run      build and start the standalone pipeline on 127.0.0.1:8000
#   make test     build with sanitizers and run every test
#   make bench    measure throughput against a raw SQLite insert loop
#   make lint     clang-format check and clang-tidy

BUILD ?= build
TEST_BUILD ?= build-test
JOBS ?= $(shell nproc)
RUN_ARGS ?=

.PHONY: all deps test-deps run test bench lint format clean

all: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

deps:
	@scripts/install-deps

test-deps:
	@scripts/install-deps --test

run: all
	./$(BUILD)/sluice run $(RUN_ARGS)

test: test-deps
	cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSLUICE_SANITIZE=ON >/dev/null
	cmake --build $(TEST_BUILD) -j$(JOBS)
	# The Kafka tests run on librdkafka's mock cluster, whose group
	# rebalances can take tens of seconds on a busy machine: a failed test
	# gets up to two more runs, and ctest's output shows every failure.
	cd $(TEST_BUILD) && ctest --output-on-failure -j$(JOBS) --repeat until-pass:3

bench: all
	./$(BUILD)/bench/sluice_bench_standalone

lint: test-deps
	cmake -S . -B $(TEST_BUILD) -DSLUICE_SANITIZE=ON >/dev/null
	git ls-files '*.c' '*.h' | xargs clang-format --dry-run --Werror
	git ls-files 'src/*.c' | xargs clang-tidy -p $(TEST_BUILD) --quiet

format:
	git ls-files '*.c' '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(TEST_BUILD)

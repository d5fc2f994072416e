# Everyday entry points; CMake does the building.
#   make          build ./build/sluice
#   make run      build and start the standalone pipeline on 127.0.0.1:8000
#   make test     build with sanitizers and run every test
#   make valgrind build without sanitizers and run the unit tests under
#                 valgrind memcheck
#   make bench    measure throughput against a raw SQLite insert loop
#   make load-test
#                 wrk and Locust against the API of sluice run on loopback
#   make lint     clang-format check, clang-tidy and cppcheck
#   make services start a local Kafka (mock), PostgreSQL and registry for
#                 the distributed mode; make services-stop stops them
#   make producer | consumer | ml | api | dlq
#                 run one role in the foreground against those services
#   make connectors
#                 register the Kafka Connect connectors of deploy/connect
#                 with the Connect server at CONNECT_URL (docker compose)
#   make fuzz     build the libFuzzer harnesses and run each FUZZ_SECONDS
#   make chaos    the long crash campaign (tests/chaos/campaign.py --long)

BUILD ?= build
TEST_BUILD ?= build-test
VALGRIND_BUILD ?= build-valgrind
JOBS ?= $(shell nproc)
RUN_ARGS ?=

.PHONY: all deps test-deps run test valgrind bench load-test bench-distributed lint format clean \
	services services-stop producer consumer ml api dlq connectors fuzz chaos

all: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_BUILD_TESTS=OFF >/dev/null
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

# valgrind cannot run ASan binaries, so this build has no sanitizers.
# tests/CMakeLists.txt sets the valgrind options and suppressions; a memory
# error or a definite leak fails the test, and each test's valgrind output
# is in $(VALGRIND_BUILD)/Testing/Temporary/MemoryChecker.<number>.log.
valgrind: test-deps
	cmake -S . -B $(VALGRIND_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSLUICE_SANITIZE=OFF >/dev/null
	cmake --build $(VALGRIND_BUILD) -j$(JOBS)
	cd $(VALGRIND_BUILD) && ctest -T memcheck -L unit --output-on-failure -j$(JOBS)

# kill -9, SIGTERM, a full disk and outages during replays, then a
# reconciliation table; `make test` runs the short form (ctest chaos_short).
# CHAOS_ARGS="--seed N" repeats a run.
chaos: test-deps
	cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSLUICE_SANITIZE=ON >/dev/null
	cmake --build $(TEST_BUILD) -j$(JOBS) --target sluice sluice_mock_cluster
	SLUICE_BINARY=$(CURDIR)/$(TEST_BUILD)/sluice \
	SLUICE_MOCK_CLUSTER=$(CURDIR)/$(TEST_BUILD)/tests/support/sluice_mock_cluster \
	/usr/bin/python3 tests/chaos/campaign.py --long $(CHAOS_ARGS)

bench: all
	./$(BUILD)/sluice bench --mode standalone $(BENCH_ARGS)

load-test: all test-deps
	tests/load/run.sh $(BUILD)

bench-distributed: all test-deps
	./$(BUILD)/bench/sluice_bench_distributed

# The distributed mode's roles as separate processes. Each reads the
# settings `make services` wrote; SLUICE_* variables set by the caller
# override them.
ROLE_ENV = . ./.services/env &&

services: all test-deps
	BUILD=$(abspath $(BUILD)) scripts/services start

services-stop:
	scripts/services stop

producer: all
	$(ROLE_ENV) ./$(BUILD)/sluice produce $(RUN_ARGS)

consumer: all
	$(ROLE_ENV) ./$(BUILD)/sluice process $(RUN_ARGS)

ml: all
	$(ROLE_ENV) ./$(BUILD)/sluice detect $(RUN_ARGS)

api: all
	$(ROLE_ENV) ./$(BUILD)/sluice api $(RUN_ARGS)

dlq: all
	$(ROLE_ENV) ./$(BUILD)/sluice dlq $(RUN_ARGS)

connectors:
	deploy/connect/register.sh

# libFuzzer harnesses of tests/fuzz/ (needs clang and libclang-rt-14-dev):
# each runs FUZZ_SECONDS from its seed corpus. New inputs go to
# $(FUZZ_BUILD)/fuzz-corpus/, crashing ones to $(FUZZ_BUILD)/fuzz-artifacts/.
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60

fuzz: test-deps
	@command -v clang >/dev/null || { echo "make fuzz needs clang:" \
		"apt-get install clang libclang-rt-14-dev"; exit 1; }
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug \
		-DSLUICE_SANITIZE=ON -DSLUICE_FUZZ=ON >/dev/null
	cmake --build $(FUZZ_BUILD) -j$(JOBS) --target sluice_fuzz
	@for bin in $(FUZZ_BUILD)/tests/fuzz/fuzz_*; do \
		t=$${bin##*/fuzz_}; \
		case $$t in *_replay) continue;; esac; \
		mkdir -p $(FUZZ_BUILD)/fuzz-corpus/$$t $(FUZZ_BUILD)/fuzz-artifacts && \
		echo "fuzz_$$t: $(FUZZ_SECONDS) s" && \
		$$bin -max_total_time=$(FUZZ_SECONDS) \
			-print_final_stats=1 \
			-artifact_prefix=$(FUZZ_BUILD)/fuzz-artifacts/$$t- \
			$(FUZZ_BUILD)/fuzz-corpus/$$t tests/fuzz/corpus/$$t \
			|| exit 1; \
	done

lint: test-deps
	cmake -S . -B $(TEST_BUILD) -DSLUICE_SANITIZE=ON >/dev/null
	git ls-files '*.c' '*.h' | xargs clang-format --dry-run --Werror
	git ls-files 'src/*.c' | xargs clang-tidy -p $(TEST_BUILD) --quiet
	cppcheck --enable=warning,performance,portability --std=c11 \
		--error-exitcode=1 --inline-suppr --quiet \
		--suppress=missingIncludeSystem -I src src

format:
	git ls-files '*.c' '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(TEST_BUILD) $(VALGRIND_BUILD)

# Thin wrapper around CMake. `make demo` and `make test` are the README's two commands.
JOBS ?= 2
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
# Seconds per fuzz target for `make fuzz` (a campaign: FUZZ_SECONDS=1800).
FUZZ_SECONDS ?= 60

.PHONY: deps build build-asan build-fuzz demo test test-release test-asan fuzz bench dist format format-check clean

deps:
	deploy/install-deps.sh

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

build-asan:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTETHER_SANITIZE=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j$(JOBS)

# libFuzzer binaries (clang, ASan+UBSan); tests/fuzz/run.sh runs each for FUZZ_SECONDS.
build-fuzz:
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DTETHER_SANITIZE=ON -DTETHER_FUZZ=ON -DTETHER_TESTS=OFF >/dev/null
	cmake --build $(FUZZ_BUILD) -j$(JOBS)

fuzz: deps build-fuzz
	tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# Command (a): install, build, run Tether on its embedded default in front of a demo app.
demo: deps build
	deploy/demo.sh $(BUILD)/tether

# Command (b): install, build (release and ASan+UBSan) and run every test on both.
test: deps
	$(MAKE) format-check
	$(MAKE) test-release
	$(MAKE) test-asan

test-release: build
	cd $(BUILD) && ctest -j2 --output-on-failure --timeout 600

test-asan: build-asan
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest -j2 --output-on-failure --timeout 900

# A release tarball in dist/: binary, iptables script, systemd unit, manifests, dashboard, docs.
dist: deps build
	deploy/make-dist.sh $(BUILD) dist

bench: deps build
	perf/bench.sh $(BUILD)/tether
	perf/bench_rules.sh $(BUILD)/tether
	perf/bench_h2.sh $(BUILD)/tether
	perf/bench_auth.sh $(BUILD)/tether
	perf/bench_control.sh $(BUILD)/tether

format:
	clang-format -i $$(git ls-files '*.h' '*.cc')

# .clang-format (Google base, 100 columns) is part of the test command.
format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.h' '*.cc')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)

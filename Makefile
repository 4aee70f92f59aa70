# Ferry — set-up, build, demo, tests and benchmarks. `make demo` and `make test` are all a
# fresh Debian 12 machine needs (as root): both install what is missing first.
BUILD ?= build
JOBS ?= 2
BUILD_TYPE ?= RelWithDebInfo
BENCHES := engine_throughput memory_per_run recovery fleet_scale drain_zone render_template journal_verify api_throughput

.PHONY: all deps configure build demo demo-real test test-e2e bench bench-real clean

all: build

deps:
	@./scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) > /dev/null

build: configure
	@cmake --build $(BUILD) -j$(JOBS)

demo: build
	$(BUILD)/apps/ferry/ferry demo

# A live migration there and back between two real libvirt hosts on this machine (root).
demo-real: build
	./scripts/demo-real.sh $(BUILD)/apps/ferry/ferry

test: build
	cd $(BUILD) && ctest --output-on-failure --timeout 900

# The end-to-end cases on real libvirt hosts alone (they are part of `make test`).
test-e2e: build
	cd $(BUILD) && ctest --output-on-failure --timeout 900 -L e2e

# Live migrations of the real guest between real libvirt hosts (root).
bench-real: build
	$(BUILD)/bench/real_migration

bench: build
	@for b in $(BENCHES); do echo "== $$b"; $(BUILD)/bench/$$b || exit 1; done

clean:
	rm -rf $(BUILD)

# The two set-up commands of the README, plus conveniences.
#   make demo   install missing Debian packages, build, run the demo
#   make test   install missing Debian packages, build, run every test
#   make bench  build, print the benchmark figures (QUICK=1: a short SignData run)
#   make soak   build, run the chaos soak for 10 minutes (SOAK_DURATION=seconds,
#               SOAK_SEED=n replays a run's plan); prints its figures
.PHONY: deps deps-demo build demo test bench soak lint format clean

JOBS := $(shell nproc)
MAKEFLAGS += --no-print-directory

# Debian packages (scripts/debian-packages.txt): what the demo needs, or everything.
deps-demo:
	@scripts/install-deps.sh demo

deps:
	@scripts/install-deps.sh test

build: deps-demo
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF >/dev/null
	cmake --build build -j$(JOBS)

demo: build
	/usr/bin/python3 demo/demo.py --build-dir build

test: deps
	scripts/test-all.sh

bench: build
	/usr/bin/python3 bench/bench_plugin.py --build-dir build
	/usr/bin/python3 bench/bench_signdata.py --build-dir build $(if $(QUICK),--quick)
	/usr/bin/python3 bench/fleet_cost.py --build-dir build

soak: build
	/usr/bin/python3 tests/soak/chaos_soak.py --build-dir build \
	  --duration $(or $(SOAK_DURATION),600) $(if $(SOAK_SEED),--seed $(SOAK_SEED))

lint:
	scripts/lint.sh

format:
	clang-format -i $$(git ls-files 'src/*.[ch]' 'tests/*.[ch]' 'bench/*.[ch]')

clean:
	rm -rf build build-asan build-fuzz

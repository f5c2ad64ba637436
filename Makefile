# lasync — the two commands: `make run` and `make test`.
# Each installs missing Debian packages (scripts/deps.sh) and builds first.
BUILD ?= build
SCRIPT ?= examples/hello.lua
JOBS ?= $(shell nproc)

.PHONY: all deps build run test test-asan bench install clean

all: build

deps:
	@sh scripts/deps.sh

$(BUILD)/Makefile: CMakeLists.txt
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/Makefile
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/lasync $(SCRIPT)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The same suite built with AddressSanitizer and UBSan.
test-asan: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DLASYNC_SANITIZE=ON
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest --output-on-failure -j $(JOBS)

bench: build
	bench/run.sh

install: build
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) build-asan

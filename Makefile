# lasync — the two commands: `make run` and `make test`.
# Each installs missing Debian packages (scripts/deps.sh) and builds first.
# The build is quiet unless something fails: cmake's output goes to
# $(BUILD)/configure.log and $(BUILD)/build.log, shown on failure (compiler
# warnings are shown always).
#   make run SCRIPT=examples/echo.lua ARGS=8888
#   make install [PREFIX=/usr/local] [DESTDIR=/tmp/pkg]; make uninstall
BUILD ?= build
SCRIPT ?= examples/hello.lua
ARGS ?=
JOBS ?= $(shell nproc)
PREFIX ?= /usr/local
prefix ?= $(PREFIX)
LDCONFIG ?= ldconfig

.PHONY: all deps build run test test-asan bench install uninstall clean

all: build

deps:
	@sh scripts/deps.sh

$(BUILD)/Makefile: CMakeLists.txt
	@mkdir -p $(BUILD)
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  >$(BUILD)/configure.log 2>&1 || \
	  { cat $(BUILD)/configure.log; echo "make: cmake failed"; exit 1; }

build: deps $(BUILD)/Makefile
	@cmake --build $(BUILD) -j $(JOBS) >$(BUILD)/build.log 2>&1 || \
	  { cat $(BUILD)/build.log; echo "make: the build failed"; exit 1; }
	@grep -A3 -i 'warning' $(BUILD)/build.log || true

run: build
	@$(BUILD)/lasync $(SCRIPT) $(ARGS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The same suite built with AddressSanitizer and UBSan.
test-asan: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DLASYNC_SANITIZE=ON
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest --output-on-failure -j $(JOBS)

bench: build
	bench/run.sh

# Into $(prefix) (PREFIX or prefix), under $(DESTDIR) if given; ldconfig
# as root without DESTDIR. uninstall removes what the last install put.
install: build
	@DESTDIR="$(DESTDIR)" LDCONFIG="$(LDCONFIG)" \
	  sh scripts/install.sh $(BUILD) "$(prefix)"

uninstall:
	@LDCONFIG="$(LDCONFIG)" sh scripts/uninstall.sh $(BUILD)

clean:
	rm -rf $(BUILD) build-asan

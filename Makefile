# luawmi: build the rock with LuaRocks cross-compiling for Windows, test under Wine.
TOP := $(CURDIR)
LUAROCKS := LUAWMI_TOP=$(TOP) LUAROCKS_CONFIG=$(TOP)/scripts/luarocks-config.lua \
            LUAROCKS_CROSS_COMPILING=1 luarocks
SOURCES := $(wildcard src/*.c src/*.h lua/wmi/*.lua) bin/wmiq luawmi-scm-1.rockspec
STAMP := build/rocks/.built

.PHONY: all setup check demo bench stress lint clean fresh fuzz doc doc-check dist pack rockspec

all: $(STAMP)

build/lua/bin/lua.exe:
	bash scripts/setup.sh

setup:
	bash scripts/setup.sh

$(STAMP): $(SOURCES) build/lua/bin/lua.exe
	$(LUAROCKS) make --deps-mode=none luawmi-scm-1.rockspec
	touch $@

check: setup lint all testapt valuetest testwmi allocfail doc
	bash scripts/check
	scripts/lua scripts/doc-check.lua
	bash spec/fuzz/run.sh "$(FUZZ_CHECK_SEEDS)" $(FUZZ_CHECK_ITER)

# The seeded fuzzer (spec/fuzz): make fuzz SEEDS=1-500 ITER=2000 [JOBS=2 TIMEOUT=120].
# make check runs a short fixed set of seeds.
SEEDS ?= 1-20
ITER ?= 2000
FUZZ_CHECK_SEEDS := 1-8
FUZZ_CHECK_ITER := 300

fuzz: setup all testwmi
	bash spec/fuzz/run.sh "$(SEEDS)" $(ITER)

demo: setup all testwmi
	scripts/lua examples/async_query.lua

# The README's two commands in a pristine Debian 12 root (needs root; see the script).
fresh:
	scripts/fresh-check

# Benchmarks (bench/run.sh; bench-only C built here into build/bench).
BENCH_CC     := x86_64-w64-mingw32-gcc
BENCH_CFLAGS := -std=c99 -O2 -Wall -Wextra -Werror -Ibuild/lua/include

bench: setup all testwmi build/test/testapt.dll build/bench/bench_raw.dll build/bench/sleeper.exe
	bash bench/run.sh

build/bench/bench_raw.dll: bench/bench_raw.c build/lua/bin/lua.exe
	@mkdir -p $(dir $@)
	$(BENCH_CC) $(BENCH_CFLAGS) -shared -o $@ $< build/lua/lib/liblua54.a -lole32 -loleaut32 -luuid -lwbemuuid -lpsapi

# No C runtime: the medium benchmark starts a few hundred of these.
build/bench/sleeper.exe: bench/sleeper.c
	@mkdir -p $(dir $@)
	$(BENCH_CC) -O2 -Wall -Wextra -Werror -nostdlib -mwindows -e sleeper_start -o $@ $< -lkernel32 -s

# LEAK=64: the calibration run (a 64-byte leak per operation), which must fail.
stress: setup all testapt valuetest testwmi
	LEAK=$(LEAK) bash bench/stress.sh

include spec/support/testapt.mk
include spec/support/valuetest.mk
include spec/support/testwmi.mk
include spec/support/allocfail.mk

# The API reference (LDoc) over the doc comments of lua/wmi and src, and its
# completeness against the module as loaded (scripts/doc-check.lua).
DOC_SOURCES := $(wildcard lua/wmi/*.lua src/*.c)

doc: build/doc/index.html

build/doc/index.html: $(DOC_SOURCES) config.ld scripts/doc-extract.lua
	@mkdir -p build/doc-src
	lua5.4 scripts/doc-extract.lua build/doc-src/wmi.lua $(DOC_SOURCES)
	ldoc . >/dev/null

doc-check: setup all doc
	scripts/lua scripts/doc-check.lua

# The release: the archive of the committed tree (git archive HEAD), the versioned
# rockspec's source, and LuaRocks' source rock of it, in build/dist.
VERSION := $(shell sed -n 's/.*_VERSION = "luawmi \([^"]*\)".*/\1/p' lua/wmi/init.lua)
DIST := build/dist/luawmi-$(VERSION)
ROCKSPEC := rockspec/luawmi-$(VERSION)-1.rockspec

dist:
	@mkdir -p build/dist
	@git diff --quiet HEAD || echo "dist: uncommitted changes are not in the archive (it is HEAD)" >&2
	git archive --format=tar.gz --prefix=luawmi-$(VERSION)/ -o $(DIST).tar.gz HEAD

# LuaRocks reads a file:// source in a temporary folder: the copy packed here
# names this checkout's archive by its absolute path.
pack: dist
	sed 's|"file://build/dist/|"file://$(TOP)/build/dist/|' $(ROCKSPEC) > $(DIST)-1.rockspec
	cd build/dist && $(LUAROCKS) pack luawmi-$(VERSION)-1.rockspec

# The versioned rockspec is the scm one with the release's version and source:
# make rockspec writes it again (after a change to the scm rockspec).
rockspec:
	lua5.4 scripts/release-rockspec.lua $(VERSION) < luawmi-scm-1.rockspec > $(ROCKSPEC)

lint:
	luacheck lua spec examples bench bin/wmiq scripts/*.lua .busted luawmi-scm-1.rockspec $(wildcard rockspec/*.rockspec)

clean:
	rm -rf build/rocks build/test src/*.o wmi

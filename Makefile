# luawmi: build the rock with LuaRocks cross-compiling for Windows, test under Wine.
TOP := $(CURDIR)
LUAROCKS := LUAWMI_TOP=$(TOP) LUAROCKS_CONFIG=$(TOP)/scripts/luarocks-config.lua \
            LUAROCKS_CROSS_COMPILING=1 luarocks
SOURCES := $(wildcard src/*.c src/*.h lua/wmi/*.lua) luawmi-scm-1.rockspec
STAMP := build/rocks/.built

.PHONY: all setup check demo bench stress lint clean

all: $(STAMP)

build/lua/bin/lua.exe:
	bash scripts/setup.sh

setup:
	bash scripts/setup.sh

$(STAMP): $(SOURCES) build/lua/bin/lua.exe
	$(LUAROCKS) make --deps-mode=none luawmi-scm-1.rockspec
	touch $@

check: setup all testapt valuetest
	bash scripts/check

demo: setup all
	scripts/lua examples/async_query.lua

bench: setup all
	@echo "bench: the benchmarks arrive with the benchmark issue"

stress: setup all
	scripts/lua bench/stress.lua

include spec/support/testapt.mk
include spec/support/valuetest.mk

lint:
	luacheck lua spec examples bench scripts/*.lua .busted luawmi-scm-1.rockspec

clean:
	rm -rf build/rocks build/test src/*.o wmi

# The test-only Lua module "valuetest" (spec/support/valuetest.c): the module's
# VARIANT conversions driven directly, with every CIM type and with VARIANTs
# crafted as WMI could send them. Included by the Makefile. It compiles its own
# copy of every src/*.c (its own wmi_stats, and metatables renamed by the
# force-included spec/support/valuetest.h), so it needs no export from wmi.core.
VALUETEST_CC     := x86_64-w64-mingw32-gcc
VALUETEST_CFLAGS := -std=c99 -O2 -Wall -Wextra -Werror -DCOBJMACROS -DUNICODE -D_UNICODE \
                    -D_WIN32_WINNT=0x0601 -Isrc -Ibuild/lua/include -include spec/support/valuetest.h
VALUETEST_LIBS   := build/lua/lib/liblua54.a -lole32 -loleaut32 -luuid -lwbemuuid -ladvapi32
VALUETEST_SRC    := spec/support/valuetest.c $(wildcard src/*.c)
VALUETEST_DLL    := build/test/valuetest.dll

.PHONY: valuetest

valuetest: $(VALUETEST_DLL)

# Only luaopen_valuetest is marked __declspec(dllexport): nothing else is exported.
$(VALUETEST_DLL): $(VALUETEST_SRC) $(wildcard src/*.h) spec/support/valuetest.h build/lua/bin/lua.exe
	@mkdir -p $(dir $@)
	$(VALUETEST_CC) $(VALUETEST_CFLAGS) -shared -o $@ $(VALUETEST_SRC) $(VALUETEST_LIBS)

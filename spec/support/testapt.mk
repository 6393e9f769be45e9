# The test-only unsecured apartment (spec/support/testapt.c): one DLL that is an
# in-process COM server and the Lua module "testapt". Included by the Makefile.
# `make testapt` builds it and registers it in the test prefix (quick when done).
TESTAPT_CC     := x86_64-w64-mingw32-gcc
TESTAPT_CFLAGS := -std=c99 -O2 -Wall -Wextra -Werror -Ibuild/lua/include
TESTAPT_LIBS   := build/lua/lib/liblua54.a -lole32 -loleaut32 -luuid -lwbemuuid
TESTAPT_SRC    := spec/support/testapt.c
TESTAPT_DLL    := build/test/testapt.dll

.PHONY: testapt

testapt: $(TESTAPT_DLL)
	bash scripts/register-testserver.sh testapt

# Exports are marked __declspec(dllexport) in the source (no .def needed on x64).
$(TESTAPT_DLL): $(TESTAPT_SRC) build/lua/bin/lua.exe
	@mkdir -p $(dir $@)
	$(TESTAPT_CC) $(TESTAPT_CFLAGS) -shared -o $@ $(TESTAPT_SRC) $(TESTAPT_LIBS)

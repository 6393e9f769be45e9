# The test WMI server (spec/support/testwmi*.c): one DLL that is an in-process COM
# server (an IWbemLocator) and the Lua module "testwmi". Included by the Makefile.
# `make testwmi` builds it and registers it in the test prefix (quick when done).
TESTWMI_CC     := x86_64-w64-mingw32-gcc
TESTWMI_CFLAGS := -std=c99 -O2 -Wall -Wextra -Werror -Ibuild/lua/include
TESTWMI_LIBS   := build/lua/lib/liblua54.a -lole32 -loleaut32 -luuid -lwbemuuid
TESTWMI_SRC    := $(wildcard spec/support/testwmi*.c)
TESTWMI_DLL    := build/test/testwmi.dll

.PHONY: testwmi

testwmi: $(TESTWMI_DLL)
	bash scripts/register-testserver.sh testwmi

# Exports are marked __declspec(dllexport) in the source (no .def needed on x64).
$(TESTWMI_DLL): $(TESTWMI_SRC) spec/support/testwmi.h build/lua/bin/lua.exe
	@mkdir -p $(dir $@)
	$(TESTWMI_CC) $(TESTWMI_CFLAGS) -shared -o $@ $(TESTWMI_SRC) $(TESTWMI_LIBS)

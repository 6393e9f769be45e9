# The test-only Lua module "allocfail" (spec/support/allocfail.c): a Lua state
# whose allocator fails at the K-th allocation, for spec/21-allocfail_spec.lua.
# Included by the Makefile.
ALLOCFAIL_CC     := x86_64-w64-mingw32-gcc
ALLOCFAIL_CFLAGS := -std=c99 -O2 -Wall -Wextra -Werror -Ibuild/lua/include
ALLOCFAIL_DLL    := build/test/allocfail.dll

.PHONY: allocfail

allocfail: $(ALLOCFAIL_DLL)

$(ALLOCFAIL_DLL): spec/support/allocfail.c build/lua/bin/lua.exe
	@mkdir -p $(dir $@)
	$(ALLOCFAIL_CC) $(ALLOCFAIL_CFLAGS) -shared -o $@ $< build/lua/lib/liblua54.a

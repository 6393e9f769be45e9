/*
 * Test-only Lua module "allocfail": runs Lua code in a new Lua state whose
 * allocator fails at the K-th allocation (issue 23's allocation-failure sweep).
 *
 *   allocfail.run(setup, scenario, k) --> verdict, allocations, message
 *
 * SETUP (Lua source) runs first with a working allocator (it loads the modules);
 * then the allocator is armed and SCENARIO runs under pcall: its K-th allocation
 * fails, and so does the allocation right after it, which is Lua's own retry after
 * an emergency collection: Lua then raises its memory error at that allocation.
 * Every later allocation succeeds (the error path, and the cleanup). Then the
 * state is closed. VERDICT: "error" (the scenario raised), "returned" (it
 * returned; its results, as text, are in MESSAGE), or "setup" (SETUP failed);
 * ALLOCATIONS: how many the scenario made while armed (with K beyond it, none
 * failed: the sweep's last K).
 */
#include <stdlib.h>
#include <string.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

struct arm
{
    long count;         /* allocations since armed; -1: not armed */
    long fail_at;       /* K */
    int failed;
};

static void *allocfail_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct arm *a = ud;
    (void)osize;
    if (nsize == 0)
    {
        free(ptr);
        return NULL;
    }
    if (a->count >= 0)
    {
        a->count++;
        if (a->count == a->fail_at || a->count == a->fail_at + 1)
        {
            a->failed = 1;
            return NULL;
        }
    }
    return realloc(ptr, nsize);
}

/* The scenario's results as one line of text. */
static void allocfail_results(lua_State *from, int first, luaL_Buffer *b)
{
    int i, top = lua_gettop(from);
    for (i = first; i <= top; i++)
    {
        const char *s = lua_tostring(from, i);
        luaL_addstring(b, i > first ? ", " : "");
        luaL_addstring(b, s ? s : luaL_typename(from, i));
    }
}

static int allocfail_run(lua_State *L)
{
    size_t setup_len, scenario_len;
    const char *setup = luaL_checklstring(L, 1, &setup_len);
    const char *scenario = luaL_checklstring(L, 2, &scenario_len);
    struct arm a = { -1, (long)luaL_checkinteger(L, 3), 0 };
    const char *verdict;
    lua_State *S = lua_newstate(allocfail_alloc, &a);
    luaL_Buffer b;
    int status;

    if (!S) return luaL_error(L, "cannot create a Lua state");
    luaL_openlibs(S);
    luaL_buffinit(L, &b);
    if (luaL_loadbuffer(S, setup, setup_len, "=setup") || lua_pcall(S, 0, 0, 0)
        || luaL_loadbuffer(S, scenario, scenario_len, "=scenario"))
    {
        verdict = "setup";
        luaL_addstring(&b, lua_tostring(S, -1));
    }
    else
    {
        a.count = 0;        /* armed */
        status = lua_pcall(S, 0, LUA_MULTRET, 0);
        a.fail_at = -10;    /* disarmed, still counted */
        verdict = status == LUA_OK ? "returned" : "error";
        if (status == LUA_OK) allocfail_results(S, 1, &b);
        else luaL_addstring(&b, lua_tostring(S, -1) ? lua_tostring(S, -1) : "(no message)");
    }
    luaL_pushresult(&b);
    lua_pushstring(L, verdict);
    lua_pushinteger(L, a.count);
    lua_rotate(L, -3, -1);      /* verdict, allocations, message */
    lua_close(S);
    return 3;
}

__declspec(dllexport) int luaopen_allocfail(lua_State *L)
{
    static const luaL_Reg funcs[] = { { "run", allocfail_run }, { NULL, NULL } };
    luaL_newlib(L, funcs);
    return 1;
}

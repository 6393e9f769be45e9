/* A small honest stand-in for lua-system's `system.core`, which busted needs.
 * Debian's lua-system source cannot be fetched here, so this provides exactly the
 * three functions busted calls (gettime, monotime, sleep) with Win32 APIs.
 * It is a test-tool dependency only; luawmi does not use it. */
#include <windows.h>
#include <lua.h>
#include <lauxlib.h>

static int system_gettime(lua_State *L)   /* seconds since the Unix epoch */
{
    FILETIME ft;
    ULARGE_INTEGER t;
    GetSystemTimeAsFileTime(&ft);
    t.LowPart = ft.dwLowDateTime;
    t.HighPart = ft.dwHighDateTime;
    lua_pushnumber(L, (double)(t.QuadPart - 116444736000000000ULL) / 1e7);
    return 1;
}

static int system_monotime(lua_State *L)
{
    LARGE_INTEGER freq, now;
    QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&now);
    lua_pushnumber(L, (double)now.QuadPart / (double)freq.QuadPart);
    return 1;
}

static int system_sleep(lua_State *L)     /* seconds, fractional */
{
    double s = luaL_checknumber(L, 1);
    Sleep(s > 0 ? (DWORD)(s * 1000.0) : 0);
    return 0;
}

__declspec(dllexport) int luaopen_system_core(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        { "gettime", system_gettime },
        { "monotime", system_monotime },
        { "sleep", system_sleep },
        { NULL, NULL }
    };
    luaL_newlib(L, funcs);
    return 1;
}

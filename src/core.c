/* wmi.core: the module entry (luaopen_wmi_core), at the top of the C core:
 * COM initialisation, and the registration of every type and function. The
 * helpers every file uses are support.c's. */
#define PSAPI_VERSION 2     /* GetProcessMemoryInfo is K32GetProcessMemoryInfo in kernel32 */
#include "luawmi.h"
#include <psapi.h>

/* core.ticks() --> milliseconds since the system started (a deadline clock for the Lua layer) */
static int core_ticks(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)GetTickCount64());
    return 1;
}

/* core.call(f, ...) --> f(...), where a yield is an error: the Lua layer calls its
 * users' handlers so, as the C core does. A handler that yielded in a coroutine
 * never resumed would leave the layer's state half-way (a fan-out never done). */
static int core_call(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* COM on the Lua thread: MTA, or the STA the host already made (TRUE). Per Lua
 * state: two states on two threads may live in different apartments. The module
 * never uninitialises COM: pointers it handed out may outlive any moment it could pick. */
static BOOL core_init_com(lua_State *L)
{
    HRESULT hr = CoInitializeEx(NULL, COINIT_MULTITHREADED);
    if (hr == RPC_E_CHANGED_MODE) return TRUE;
    if (FAILED(hr))
    {
        hresult_push_message(L, hr);
        lua_error(L);
    }
    return FALSE;
}

/*** The Lua thread's COM apartment.
 * @function threading
 * @treturn string `"mta"`, or `"sta"` when the host made the Lua thread a single-threaded apartment
 */
/* wmi.threading() --> "mta", or "sta" when the host made the Lua thread an STA */
static int core_threading(lua_State *L)
{
    struct queue *q = queue_get(L);
    lua_pushstring(L, q && queue_is_sta(q) ? "sta" : "mta");
    return 1;
}

/*** What the module holds, and the process' private bytes.
 * Every count of what is held returns to zero once everything is closed or collected.
 * @function stats
 * @treturn table `objects services enumerators stubs calls queued connects timers identities`,
 * `pool` (the module's work items on the thread pool, queued or running: a remote
 * call's start, cancel and release, a proxy's last release, a connection),
 * `overflows` (calls ended by their queue limit so far) and `private_bytes`
 */
static int core_stats(lua_State *L)
{
    static const struct { const char *name; LONG *count; } counters[] = {
        { "objects", &wmi_stats.objects }, { "services", &wmi_stats.services },
        { "enumerators", &wmi_stats.enumerators }, { "stubs", &wmi_stats.stubs },
        { "calls", &wmi_stats.calls }, { "queued", &wmi_stats.queued },
        { "overflows", &wmi_stats.overflows }, { "connects", &wmi_stats.connects },
        { "timers", &wmi_stats.timers }, { "identities", &wmi_stats.identities },
        { "pool", &wmi_stats.pool },
    };
    PROCESS_MEMORY_COUNTERS mem;
    size_t i;

    lua_createtable(L, 0, ARRAYSIZE(counters) + 1);
    for (i = 0; i < ARRAYSIZE(counters); i++)
    {
        lua_pushinteger(L, InterlockedCompareExchange(counters[i].count, 0, 0));
        lua_setfield(L, -2, counters[i].name);
    }
    /* The whole process' private bytes: what leak checks compare over time.
     * PagefileUsage is documented equal to PrivateUsage, and Wine fills only the
     * basic counters. */
    memset(&mem, 0, sizeof(mem));
    if (GetProcessMemoryInfo(GetCurrentProcess(), &mem, sizeof(mem)))
    {
        lua_pushinteger(L, (lua_Integer)mem.PagefileUsage);
        lua_setfield(L, -2, "private_bytes");
    }
    return 1;
}

/* core.methods = { Services = ..., Call = ..., Apartment = ... }: the tables
 * their userdata find methods in, so the Lua layer can add methods written in Lua. */
static void core_push_method_tables(lua_State *L)
{
    static const struct { const char *key, *meta, *field; } tables[] = {
        { "Services", WMI_SERVICES, "__index" },
        { "Call", WMI_CALL, "methods" },
        { "Apartment", WMI_APARTMENT, "methods" },
    };
    size_t i;
    lua_createtable(L, 0, ARRAYSIZE(tables));
    for (i = 0; i < ARRAYSIZE(tables); i++)
    {
        luaL_getmetatable(L, tables[i].meta);
        lua_getfield(L, -1, tables[i].field);
        lua_setfield(L, -3, tables[i].key);
        lua_pop(L, 1);
    }
}

int luaopen_wmi_core(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        { "connect", services_connect },
        { "connect_async", pool_connect_async },
        { "timer", pool_timer },
        { "init_security", services_init_security },
        { "valid_host", connect_valid_host },
        { "apartment", apartment_new },
        { "dispatch", queue_dispatch },
        { "run", queue_run },
        { "pending", queue_pending },
        { "hresult", hresult_l_hresult },
        { "stats", core_stats },
        { "threading", core_threading },
        { "check_options", core_l_check_options },
        { "ticks", core_ticks },
        { "call", core_call },
        { "wql_builder", query_l_set_builder },
        { NULL, NULL }
    };
    queue_open(L, core_init_com(L));
    object_register(L);
    services_register(L);
    apartment_register(L);
    stub_register(L);
    lua_pop(L, 4);
    pool_register(L);
    call_register(L);       /* after services: it adds the *_async methods */
    stream_register(L);     /* after call: it adds stream and objects */
    classdef_register(L);
    luaL_newlib(L, funcs);
    lua_rotate(L, -2, 1);
    lua_setfield(L, -2, "Error");
    core_push_method_tables(L);
    lua_setfield(L, -2, "methods");
    console_push(L);
    lua_setfield(L, -2, "console");
    return 1;
}

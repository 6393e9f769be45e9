/* wmi.core: module entry, COM initialisation, shared helpers. */
#define PSAPI_VERSION 2     /* GetProcessMemoryInfo is K32GetProcessMemoryInfo in kernel32 */
#include "luawmi.h"
#include <psapi.h>
#include <ctype.h>

struct wmi_stats wmi_stats;

void core_new_class(lua_State *L, const char *name, const luaL_Reg *methods, const luaL_Reg *meta)
{
    luaL_newmetatable(L, name);
    luaL_setfuncs(L, meta, 0);
    if (methods)
    {
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");
    }
}

int core_push_method(lua_State *L, const char *key)
{
    lua_getmetatable(L, 1);
    lua_getfield(L, -1, "methods");
    lua_getfield(L, -1, key);
    return 1;
}

int core_closed_error(lua_State *L, const char *name)
{
    return luaL_error(L, "attempt to use a closed %s", name);
}

/* Misuse is an argument error; only a failed allocation is a memory error. */
static void core_raise_bstr(lua_State *L, HRESULT hr, const char *func, const char *field, int arg)
{
    if (hr == E_OUTOFMEMORY) luaL_error(L, "not enough memory");
    if (field) luaL_error(L, "bad option '%s' to '%s' (invalid UTF-8)", field, func);
    luaL_argerror(L, arg, "invalid UTF-8");
}

const char *core_check_text(lua_State *L, int arg, size_t *len)
{
    const char *s = luaL_checklstring(L, arg, len);
    /* Windows would cut the text at the NUL; Wine's WQL lexer crashes on it. */
    luaL_argcheck(L, strlen(s) == *len, arg, "string contains a NUL");
    return s;
}

BSTR core_check_bstr(lua_State *L, int arg)
{
    size_t len;
    const char *s = core_check_text(L, arg, &len);
    BSTR b;
    HRESULT hr = str_to_bstr(s, len, &b);
    if (FAILED(hr)) core_raise_bstr(L, hr, NULL, NULL, arg);
    return b;
}

const char *core_opt_string(lua_State *L, int idx, const char *func, const char *field)
{
    int t = core_opt_field(L, idx, field);
    size_t len;
    const char *s;
    if (t == LUA_TNIL) return NULL;
    if (t != LUA_TSTRING)
        luaL_error(L, "bad option '%s' to '%s' (string expected, got %s)", field, func, luaL_typename(L, -1));
    s = lua_tolstring(L, -1, &len);
    if (!str_is_utf8(s, len)) core_raise_bstr(L, E_INVALIDARG, func, field, 0);
    return s;
}

/* Edit distance of A and B, capped: names are short. */
static size_t core_distance(const char *a, const char *b)
{
    size_t row[33], i, j, la = strlen(a), lb = strlen(b);
    if (la > 32 || lb > 32) return (size_t)-1;
    for (j = 0; j <= lb; j++) row[j] = j;
    for (i = 1; i <= la; i++)
    {
        size_t diagonal = row[0];
        row[0] = i;
        for (j = 1; j <= lb; j++)
        {
            size_t up = row[j];
            size_t best = diagonal + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            diagonal = up;
            row[j] = best;
        }
    }
    return row[lb];
}

void core_opt_check(lua_State *L, int idx, const char *func, const char *what, const char *const known[])
{
    if (lua_type(L, idx) != LUA_TTABLE) return;
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx))
    {
        const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        const char *closest = NULL;
        size_t best = 3, d;     /* a suggestion within two edits */
        int i;
        for (i = 0; key && known[i]; i++)
        {
            if (!strcmp(key, known[i])) break;
            if ((d = core_distance(key, known[i])) < best) best = d, closest = known[i];
        }
        lua_pop(L, 1);
        if (key && known[i]) continue;
        if (!key) key = luaL_tolstring(L, -1, NULL);
        if (closest)
            luaL_error(L, "bad %s '%s' to '%s' (unknown %s; did you mean '%s'?)", what, key, func, what, closest);
        luaL_error(L, "bad %s '%s' to '%s' (unknown %s)", what, key, func, what);
    }
}

/* core.ticks() --> milliseconds since the system started (a deadline clock for the Lua layer) */
static int core_ticks(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)GetTickCount64());
    return 1;
}

/* core.check_options(opts, func, names): core_opt_check for the Lua layer. */
int core_l_check_options(lua_State *L)
{
    const char *known[64];
    const char *func = luaL_checkstring(L, 2);
    lua_Integer i, n;
    luaL_checktype(L, 3, LUA_TTABLE);
    n = luaL_len(L, 3);
    luaL_argcheck(L, n < (lua_Integer)ARRAYSIZE(known), 3, "too many names");
    for (i = 0; i < n; i++)
    {
        if (lua_rawgeti(L, 3, i + 1) != LUA_TSTRING) luaL_argerror(L, 3, "strings expected");
        known[i] = lua_tostring(L, -1);     /* anchored in the table */
        lua_pop(L, 1);
    }
    known[n] = NULL;
    core_opt_check(L, 1, func, "option", known);
    return 0;
}

int core_opt_field(lua_State *L, int idx, const char *field)
{
    if (lua_type(L, idx) != LUA_TTABLE)
    {
        lua_pushnil(L);
        return LUA_TNIL;
    }
    /* Raw: no __index runs user code while C holds pointers it checked. */
    idx = lua_absindex(L, idx);
    lua_pushstring(L, field);
    return lua_rawget(L, idx);
}

int core_opt_choice(lua_State *L, int idx, const char *func, const char *field, const char *def,
                    const char *const names[])
{
    const char *s;
    int i;
    core_opt_field(L, idx, field);
    s = lua_isnil(L, -1) ? def : lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    for (i = 0; s && names[i]; i++)
    {
        if (!strcmp(s, names[i]))
        {
            lua_pop(L, 1);
            return i;
        }
    }
    if (s) return luaL_error(L, "bad option '%s' to '%s' (invalid value '%s')", field, func, s);
    return luaL_error(L, "bad option '%s' to '%s' (string expected, got %s)", field, func, luaL_typename(L, -1));
}

void core_opt_clsid(lua_State *L, int idx, const char *func, const char *field, const CLSID *def, CLSID *out)
{
    *out = *def;
    if (core_opt_field(L, idx, field) != LUA_TNIL)
    {
        const char *s;
        BSTR w;
        HRESULT hr;
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "bad option '%s' to '%s' (string expected, got %s)", field, func, luaL_typename(L, -1));
        s = lua_tostring(L, -1);
        hr = str_to_bstr(s, lua_rawlen(L, -1), &w);
        if (hr == E_OUTOFMEMORY) luaL_error(L, "not enough memory");
        if (SUCCEEDED(hr)) hr = CLSIDFromString(w, out);
        SysFreeString(w);
        if (FAILED(hr)) luaL_error(L, "bad option '%s' to '%s' (not a CLSID: %s)", field, func, s);
    }
    lua_pop(L, 1);
}

void core_pin_module(void)
{
    static LONG pinned;
    HMODULE module;
    if (InterlockedCompareExchange(&pinned, 0, 0)) return;
    if (GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_PIN,
                           (const WCHAR *)&core_pin_module, &module))
        InterlockedExchange(&pinned, 1);
}

int core_traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg) luaL_traceback(L, L, msg, 1);
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

/* wmi.threading() --> "mta", or "sta" when the host made the Lua thread an STA */
static int core_threading(lua_State *L)
{
    struct queue *q = queue_get(L);
    lua_pushstring(L, q && queue_is_sta(q) ? "sta" : "mta");
    return 1;
}

static int core_stats(lua_State *L)
{
    static const struct { const char *name; LONG *count; } counters[] = {
        { "objects", &wmi_stats.objects }, { "services", &wmi_stats.services },
        { "enumerators", &wmi_stats.enumerators }, { "stubs", &wmi_stats.stubs },
        { "calls", &wmi_stats.calls }, { "queued", &wmi_stats.queued },
        { "overflows", &wmi_stats.overflows }, { "connects", &wmi_stats.connects },
        { "timers", &wmi_stats.timers }, { "identities", &wmi_stats.identities },
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
        { "overflow", call_overflow },
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
    luaL_newlib(L, funcs);
    core_push_method_tables(L);
    lua_setfield(L, -2, "methods");
    console_push(L);
    lua_setfield(L, -2, "console");
    return 1;
}

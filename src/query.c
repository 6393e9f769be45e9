/* Queries given as Lua tables: every entry point that reads WQL text (svc:query,
 * svc:each, svc:query_async, svc:subscribe; svc:stream and wmi.fanout through
 * them) also takes a query table, turned into text by the Lua layer's builder
 * (lua/wmi/wql.lua), which registers itself here. */
#include "luawmi.h"

static const char query_builder_key = 'q';

/* core.wql_builder(fn): the function that turns a query table into text, or
 * returns nil, why not. */
int query_l_set_builder(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_settop(L, 1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &query_builder_key);
    return 0;
}

void query_check(lua_State *L, int arg)
{
    /* Text, and any other value, is the caller's to check. */
    if (lua_type(L, arg) != LUA_TTABLE) return;
    arg = lua_absindex(L, arg);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &query_builder_key) != LUA_TFUNCTION)
        luaL_argerror(L, arg, "a query table needs the wmi module (require \"wmi\")");
    lua_pushvalue(L, arg);
    lua_call(L, 1, 2);
    if (!lua_isstring(L, -2)) luaL_argerror(L, arg, lua_tostring(L, -1));
    lua_pop(L, 1);
    lua_replace(L, arg);
}

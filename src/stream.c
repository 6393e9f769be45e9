/* Streams: a generic `for` over an asynchronous call's objects, svc:stream(wql)
 * and call:objects(), thin iterators over call:next (call.c keeps the objects).
 * A failed call raises a wmi.Error at the end, after the objects that did
 * arrive: a `for` has no place for nil, message, hresult. The fourth value the
 * iterator functions return is to-be-closed: `break` or an error in the loop
 * body cancels a running call (a stream's own call is closed in any case), and
 * the objects never handed out are released. */
#include "luawmi.h"

#define WMI_STREAM "wmi.Stream"     /* the to-be-closed value's metatable */

/* Raises a wmi.Error from the message and HRESULT on top of the stack. */
static int stream_raise(lua_State *L)
{
    lua_createtable(L, 0, 2);
    lua_insert(L, -3);
    lua_setfield(L, -3, "hresult");
    lua_setfield(L, -2, "message");
    luaL_setmetatable(L, WMI_ERROR);
    return lua_error(L);
}

/*** The error streams raise (`Services:stream`, `Call:objects`); `tostring` gives its message.
 * @type Error
 */
/*** `"WBEM_E_... (0x...): text"`
 * @field Error.message
 */
/*** The HRESULT, an integer.
 * @field Error.hresult
 */
/* wmi.Error's __tostring: its message. */
static int stream_error_tostring(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "message");
    return 1;
}

/* The iterator: the call's next object, nil at its end; its failure raises. */
static int stream_next(lua_State *L)
{
    int n = call_next_push(L, 1, INFINITE);
    if (n == 3) return stream_raise(L);
    if (lua_isboolean(L, -1))
        return luaL_error(L, "cannot wait for the call's objects here (inside the delivery of a callback)");
    return 1;
}

/* The to-be-closed value { call, owned }. */
static int stream_close(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_rawgeti(L, 1, 1);
    lua_rawgeti(L, 1, 2);
    call_end_stream(L, -2, lua_toboolean(L, -1));
    return 0;
}

static int stream_closer_new(lua_State *L)
{
    lua_createtable(L, 2, 0);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, 1);
    lua_pushvalue(L, 2);
    lua_rawseti(L, -2, 2);
    luaL_setmetatable(L, WMI_STREAM);
    return 1;
}

/* Pushes the generic for's four values for the call at the top. Making the
 * closer allocates; should that fail, an OWNED call is closed before the error
 * goes on, so that no call runs that its caller never got. */
static int stream_push_loop(lua_State *L, BOOL owned)
{
    int call = lua_gettop(L);
    lua_pushcfunction(L, stream_closer_new);
    lua_pushvalue(L, call);
    lua_pushboolean(L, owned);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK)
    {
        if (owned) call_end_stream(L, call, TRUE);
        return lua_error(L);
    }
    lua_pushcfunction(L, stream_next);
    lua_pushvalue(L, call);
    lua_pushnil(L);
    lua_rotate(L, -4, -1);
    return 4;
}

/*** Iterates the objects of a call started without an indicate handler.
 * `for obj in call:objects() do ... end`: each object as it arrives (call:next
 * without a limit); at the end of a failed call, raises a wmi.Error with the
 * message and HRESULT of call:result(). `break` or an error in the loop body
 * closes the call if it is still running; a finished call stays open.
 * @function Call:objects
 * @treturn function the iterator, with the call and a to-be-closed value
 */
static int stream_objects(lua_State *L)
{
    call_check_buffered(L, 1);
    lua_settop(L, 1);
    return stream_push_loop(L, FALSE);
}

/*** Iterates the objects of a query, as they arrive.
 * `for obj in svc:stream(wql [, opts]) do ... end`: ExecQueryAsync through a
 * stub, or ExecNotificationQueryAsync with opts.subscribe. The call ends with
 * the loop; a failed call raises a wmi.Error after the objects that did arrive.
 * @function Services:stream
 * @tparam string wql the query
 * @tparam[opt] table opts
 * @tparam[opt] boolean opts.subscribe an event query (ExecNotificationQueryAsync)
 * @tparam[opt] boolean opts.progress as the async methods'
 * @tparam[opt=100000] integer|false opts.queue_limit objects the stream may hold
 * @tparam[opt=64 MiB] integer|false opts.queue_bytes as the async methods'
 * @treturn function the iterator, with the call and a to-be-closed value
 * @raise a wmi.Error when the call cannot start
 */
static int stream_start(lua_State *L)
{
    if (call_start_stream(L) == 3) return stream_raise(L);
    return stream_push_loop(L, TRUE);
}

void stream_register(lua_State *L)
{
    static const luaL_Reg closer_meta[] = {
        { "__close", stream_close },
        { NULL, NULL }
    };
    luaL_newmetatable(L, WMI_STREAM);
    luaL_setfuncs(L, closer_meta, 0);
    lua_pop(L, 1);
    luaL_getmetatable(L, WMI_CALL);
    lua_getfield(L, -1, "methods");
    lua_pushcfunction(L, stream_objects);
    lua_setfield(L, -2, "objects");
    lua_pop(L, 2);
    luaL_getmetatable(L, WMI_SERVICES);
    lua_getfield(L, -1, "__index");
    lua_pushcfunction(L, stream_start);
    lua_setfield(L, -2, "stream");
    lua_pop(L, 2);
    /* wmi.Error: err.message ("WBEM_E_... (0x...): text"), err.hresult. */
    luaL_newmetatable(L, WMI_ERROR);
    lua_pushcfunction(L, stream_error_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
}

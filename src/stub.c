/* wmi.Stub: our C sink wrapped by an apartment's stub, with the Lua handlers it
 * delivers to. The stub owns the sink; WMI only ever sees the wrapped pointer. A
 * stub serves one call: Indicate carries no call identity, and CancelAsyncCall
 * cancels every call that shares a sink. */
#include "luawmi.h"

static const char *const stub_handler_names[STUB_HANDLERS + 1] = { "indicate", "status", "progress", NULL };

static struct stub **stub_box(lua_State *L, int arg)
{
    return luaL_checkudata(L, arg, WMI_STUB);
}

struct stub *stub_test(lua_State *L, int arg)
{
    struct stub **box = luaL_testudata(L, arg, WMI_STUB);
    if (!box) return NULL;
    if (!*box) core_closed_error(L, WMI_STUB);
    return *box;
}

IWbemObjectSink *stub_target(struct stub *stub)
{
    return stub->wrapped ? stub->wrapped : sink_iface(stub->sink);
}

/* Drops the handlers and what the stub holds; the call keeps the struct. */
void stub_release(lua_State *L, struct stub *stub)
{
    int i;
    for (i = 0; i < STUB_HANDLERS; i++)
    {
        luaL_unref(L, LUA_REGISTRYINDEX, stub->handlers[i]);
        stub->handlers[i] = LUA_NOREF;
    }
    if (stub->wrapped) IWbemObjectSink_Release(stub->wrapped);
    stub->wrapped = NULL;
    if (stub->sink)
    {
        stub->sink->stub = NULL;
        sink_release(stub->sink);
        stub->sink = NULL;
    }
}

static void stub_destroy(lua_State *L, struct stub **box)
{
    struct stub *stub = *box;
    *box = NULL;
    if (!stub) return;
    if (stub->call) call_detach_stub(L, stub->call);
    stub_release(L, stub);
    free(stub);
}

/*** A stub sink, from `Apartment:stub`: what WMI calls back instead of the sink.
 * @type Stub
 */
/*** Releases the stub (calls in flight keep it).
 * @function Stub:close
 */
/* A call in flight holds the stub's userdata (its user value), so __gc only meets
 * a stub in use during lua_close. */
static int stub_close(lua_State *L)
{
    stub_destroy(L, stub_box(L, 1));
    return 0;
}

static int stub_tostring(lua_State *L)
{
    struct stub *stub = *stub_box(L, 1);
    lua_pushfstring(L, "%s (%s)", WMI_STUB, !stub ? "closed" : stub->used ? "used" : "ready");
    return 1;
}

/* Reads handlers from the function or table at ARG into registry references. */
static void stub_read_handlers(lua_State *L, int arg, struct stub *stub)
{
    int i;
    if (lua_type(L, arg) == LUA_TFUNCTION)
    {
        lua_pushvalue(L, arg);
        stub->handlers[STUB_INDICATE] = luaL_ref(L, LUA_REGISTRYINDEX);
        return;
    }
    luaL_argexpected(L, lua_type(L, arg) == LUA_TTABLE, arg, "function or table of handlers");
    core_opt_check(L, arg, "stub", "handler", stub_handler_names);
    for (i = 0; i < STUB_HANDLERS; i++)
    {
        int t = lua_getfield(L, arg, stub_handler_names[i]);
        if (t != LUA_TNIL && t != LUA_TFUNCTION)
            luaL_error(L, "bad handler '%s' (function expected, got %s)", stub_handler_names[i],
                       luaL_typename(L, -1));
        stub->handlers[i] = t == LUA_TNIL ? LUA_NOREF : luaL_ref(L, LUA_REGISTRYINDEX);
        if (t == LUA_TNIL) lua_pop(L, 1);
    }
}

int stub_push(lua_State *L, int apt, int arg)
{
    struct apartment *a = apartment_check(L, apt);
    struct queue *q = queue_get(L);
    struct stub **box, *stub;
    HRESULT hr;
    int i;

    apt = lua_absindex(L, apt);
    arg = lua_absindex(L, arg);
    luaL_argexpected(L, lua_type(L, arg) == LUA_TFUNCTION || lua_type(L, arg) == LUA_TTABLE, arg,
                     "function or table of handlers");
    box = lua_newuserdatauv(L, sizeof(*box), 1);
    *box = NULL;
    luaL_setmetatable(L, WMI_STUB);
    lua_pushvalue(L, apt);
    lua_setiuservalue(L, -2, 1);
    if (!(stub = calloc(1, sizeof(*stub)))) return luaL_error(L, "out of memory");
    for (i = 0; i < STUB_HANDLERS; i++) stub->handlers[i] = LUA_NOREF;
    *box = stub;
    stub->apartment = lua_touserdata(L, apt);
    stub_read_handlers(L, arg, stub);
    a = apartment_check(L, apt);    /* again: reading allocates, and a finalizer may close it */

    hr = q ? sink_create(q, &stub->sink) : E_UNEXPECTED;
    if (SUCCEEDED(hr))
    {
        stub->sink->stub = stub;
        hr = apartment_wrap(a, stub->sink, &stub->wrapped);
    }
    if (FAILED(hr))
    {
        stub_destroy(L, box);
        lua_pop(L, 1);
        return hresult_fail(L, hr);
    }
    return 1;
}

/*** Wraps handlers in a stub sink of this apartment, for any number of async calls.
 * @function Apartment:stub
 * @tparam table handlers `indicate(obj, call)`, `status(ok, message, hresult, obj, call)`, `progress(upper, current, message, call)`
 * @treturn Stub
 * @return nil, message, hresult
 */
/* apt:stub(handlers) */
int stub_new(lua_State *L)
{
    return stub_push(L, 1, 2);
}

void stub_register(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "close", stub_close },
        { NULL, NULL }
    };
    static const luaL_Reg meta[] = {
        { "__gc", stub_close },
        { "__close", stub_close },
        { "__tostring", stub_tostring },
        { NULL, NULL }
    };
    core_new_class(L, WMI_STUB, methods, meta);
}

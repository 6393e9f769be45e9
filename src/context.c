/* The call context: named values (IWbemContext) that reach ConnectServer and every
 * call, read from a `context = { name = value, ... }` option.
 *
 * The option is kept as plain C data (struct context, shared by counted
 * references, never changed once made) and turned into an IWbemContext on the
 * thread that makes the call: another host's call starts on a pool thread (an
 * MTA), and a COM object made on an STA Lua thread is that apartment's. The data
 * has no apartment. (CLSID_WbemContext is registered "Both", Windows' fastprox and
 * Wine's wbemprox alike; Wine's SetValue list takes no lock: one builder, one thread.) */
#include "luawmi.h"
#include <stdint.h>
#include <string.h>

#define CONTEXT_META "wmi.Context"

struct context
{
    LONG refs;
    ULONG count;
    struct context_value { BSTR name; VARIANT value; } values[1];
};

/* What the value at IDX becomes: its VARTYPE, or VT_EMPTY when it fits none. */
static VARTYPE context_type(lua_State *L, int idx)
{
    lua_Integer i, n;
    switch (lua_type(L, idx))
    {
    case LUA_TBOOLEAN: return VT_BOOL;
    case LUA_TSTRING: return str_is_utf8(lua_tostring(L, idx), lua_rawlen(L, idx)) ? VT_BSTR : VT_EMPTY;
    case LUA_TNUMBER:
        if (!lua_isinteger(L, idx)) return VT_EMPTY;
        i = lua_tointeger(L, idx);
        return i >= INT32_MIN && i <= INT32_MAX ? VT_I4 : VT_EMPTY;
    case LUA_TTABLE:
        /* A list of strings: keys 1..n and nothing else. */
        n = (lua_Integer)lua_rawlen(L, idx);
        for (i = 1; i <= n; i++)
        {
            int t = lua_rawgeti(L, idx, i);
            BOOL ok = t == LUA_TSTRING && str_is_utf8(lua_tostring(L, -1), lua_rawlen(L, -1));
            lua_pop(L, 1);
            if (!ok) return VT_EMPTY;
        }
        idx = lua_absindex(L, idx);
        lua_pushnil(L);
        while (lua_next(L, idx))
        {
            BOOL ok = lua_isinteger(L, -2) && lua_tointeger(L, -2) >= 1 && lua_tointeger(L, -2) <= n;
            lua_pop(L, 1);
            if (!ok)
            {
                lua_pop(L, 1);
                return VT_EMPTY;
            }
        }
        return VT_ARRAY | VT_BSTR;
    }
    return VT_EMPTY;
}

static void context_check(lua_State *L, int opts, const char *func)
{
    int t = core_opt_field(L, opts, "context"), ctx = lua_gettop(L);
    if (t == LUA_TNIL)
    {
        lua_pop(L, 1);
        return;
    }
    if (t != LUA_TTABLE)
        luaL_error(L, "bad option 'context' to '%s' (table expected, got %s)", func, luaL_typename(L, -1));
    lua_pushnil(L);
    while (lua_next(L, ctx))
    {
        size_t len;
        const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &len) : NULL;
        if (!name || !len || strlen(name) != len || !str_is_utf8(name, len))
            luaL_error(L, "bad option 'context' to '%s' (names must be non-empty UTF-8 strings)", func);
        if (context_type(L, -1) == VT_EMPTY)
            luaL_error(L, "bad option 'context' to '%s' (value of '%s': a 32-bit integer, boolean, string or "
                          "list of strings expected, got %s)", func, name,
                       lua_isnumber(L, -1) && !lua_isinteger(L, -1) ? "float" : luaL_typename(L, -1));
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

void context_addref(struct context *c)
{
    if (c) InterlockedIncrement(&c->refs);
}

void context_release(struct context *c)
{
    ULONG i;
    if (!c || InterlockedDecrement(&c->refs)) return;
    for (i = 0; i < c->count; i++)
    {
        SysFreeString(c->values[i].name);
        VariantClear(&c->values[i].value);
    }
    free(c);
}

/* The value at IDX (checked by context_check) as a VARIANT of type T. */
static HRESULT context_variant(lua_State *L, int idx, VARTYPE t, VARIANT *v)
{
    SAFEARRAY *sa;
    HRESULT hr = S_OK;
    LONG i, n;
    BSTR s;

    switch (t)
    {
    case VT_BOOL:
        V_VT(v) = VT_BOOL;
        V_BOOL(v) = lua_toboolean(L, idx) ? VARIANT_TRUE : VARIANT_FALSE;
        return S_OK;
    case VT_I4:
        V_VT(v) = VT_I4;
        V_I4(v) = (LONG)lua_tointeger(L, idx);
        return S_OK;
    case VT_BSTR:
        if (FAILED(hr = str_to_bstr(lua_tostring(L, idx), lua_rawlen(L, idx), &s))) return hr;
        V_VT(v) = VT_BSTR;
        V_BSTR(v) = s;
        return S_OK;
    }
    n = (LONG)lua_rawlen(L, idx);
    if (!(sa = SafeArrayCreateVector(VT_BSTR, 0, n))) return E_OUTOFMEMORY;
    for (i = 0; i < n && SUCCEEDED(hr); i++)
    {
        lua_rawgeti(L, idx, i + 1);
        if (SUCCEEDED(hr = str_to_bstr(lua_tostring(L, -1), lua_rawlen(L, -1), &s)))
        {
            hr = SafeArrayPutElement(sa, &i, s);
            SysFreeString(s);
        }
        lua_pop(L, 1);
    }
    if (FAILED(hr))
    {
        SafeArrayDestroy(sa);
        return hr;
    }
    V_VT(v) = VT_ARRAY | VT_BSTR;
    V_ARRAY(v) = sa;
    return S_OK;
}

/* Plain data from the checked context table at CTX. Never raises. */
static HRESULT context_read(lua_State *L, int ctx, struct context **out)
{
    struct context *c;
    ULONG n = 0;
    HRESULT hr = S_OK;

    *out = NULL;
    lua_pushnil(L);
    while (lua_next(L, ctx))
    {
        n++;
        lua_pop(L, 1);
    }
    if (!n) return S_OK;
    if (!(c = calloc(1, sizeof(*c) + (n - 1) * sizeof(c->values[0])))) return E_OUTOFMEMORY;
    c->refs = 1;
    lua_pushnil(L);
    while (SUCCEEDED(hr) && lua_next(L, ctx))
    {
        struct context_value *v = &c->values[c->count];
        if (SUCCEEDED(hr = str_to_bstr(lua_tostring(L, -2), lua_rawlen(L, -2), &v->name))
            && SUCCEEDED(hr = context_variant(L, -1, context_type(L, -1), &v->value)))
            c->count++;
        else
            SysFreeString(v->name);
        lua_pop(L, FAILED(hr) ? 2 : 1);
    }
    if (FAILED(hr))
    {
        context_release(c);
        return hr;
    }
    *out = c;
    return S_OK;
}

HRESULT context_make(const struct context *c, IWbemContext **out)
{
    IWbemContext *ctx;
    HRESULT hr;
    ULONG i;

    *out = NULL;
    if (!c) return S_OK;
    hr = CoCreateInstance(&CLSID_WbemContext, NULL, CLSCTX_INPROC_SERVER, &IID_IWbemContext, (void **)&ctx);
    if (FAILED(hr)) return hr;
    for (i = 0; i < c->count && SUCCEEDED(hr); i++)
        hr = IWbemContext_SetValue(ctx, c->values[i].name, 0, (VARIANT *)&c->values[i].value);
    if (FAILED(hr))
    {
        IWbemContext_Release(ctx);
        return hr;
    }
    *out = ctx;
    return S_OK;
}

static int context_gc(lua_State *L)
{
    struct context **box = lua_touserdata(L, 1);
    context_release(*box);
    *box = NULL;
    return 0;
}

/*** The `context` option: named values for the provider (IWbemContext), accepted
 * by wmi.connect (ConnectServer's), wmi.connect_async, wmi.fanout (its connects and
 * a WQL request), every synchronous call (Services:query, each, instances, classes,
 * get, exec, put, delete), every asynchronous one (Services:query_async ...
 * delete_async, subscribe) and Services:stream.
 * @table context
 * @field name an integer (VT_I4, 32 bits), a boolean (VT_BOOL), a string (VT_BSTR)
 *   or a list of strings (VT_ARRAY|VT_BSTR); anything else is an argument error
 *   naming the key. `{ __ProviderArchitecture = 32 }` asks StdRegProv (and other
 *   providers with 32- and 64-bit versions) for the 32-bit view.
 * @usage svc:exec("StdRegProv", "EnumKey", { hDefKey = 0x80000002, sSubKeyName = "SOFTWARE" },
 *   { context = { __ProviderArchitecture = 32 } })
 */
struct context *context_push(lua_State *L, int opts, const char *func)
{
    struct context **box;
    HRESULT hr;
    int ctx;

    opts = lua_absindex(L, opts);
    context_check(L, opts, func);
    if (core_opt_field(L, opts, "context") == LUA_TNIL) return NULL;
    ctx = lua_gettop(L);
    box = lua_newuserdatauv(L, sizeof(*box), 0);
    *box = NULL;
    if (luaL_newmetatable(L, CONTEXT_META))
    {
        lua_pushcfunction(L, context_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    if (FAILED(hr = context_read(L, ctx, box))) luaL_error(L, "not enough memory");
    lua_remove(L, ctx);
    return *box;
}

HRESULT context_enter(const struct context *c, const struct identity *id, IWbemContext **ctx,
                      struct privilege_scope *scope)
{
    HRESULT hr = context_make(c, ctx);
    if (FAILED(hr))
    {
        memset(scope, 0, sizeof(*scope));
        return hr;
    }
    if (FAILED(hr = privileges_enter(id ? id->privileges : NULL, scope)) && *ctx)
    {
        IWbemContext_Release(*ctx);
        *ctx = NULL;
    }
    return hr;
}

void context_leave(IWbemContext *ctx, struct privilege_scope *scope)
{
    privileges_leave(scope);
    if (ctx) IWbemContext_Release(ctx);
}

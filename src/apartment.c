/* wmi.Apartment: where stub sinks come from. With unsecapp (Microsoft's
 * "Lowering the Security for a Sink in a Separate Process"), WMI calls a stub
 * hosted by Unsecapp.exe and the stub calls our sink, so the host process never
 * has to lower its own COM security. In-process, WMI calls our sink directly. */
#include "luawmi.h"

struct apartment
{
    IUnsecuredApartment *ua;        /* NULL: in-process */
    IWbemUnsecuredApartment *wua;   /* NULL: only CreateObjectStub is offered */
    LONG stub_flags;                /* CreateSinkStub's WBEM_FLAG_UNSECAPP_* */
    const char *access;
    struct call_list calls;         /* calls started with this apartment's stubs */
};

static struct apartment **apartment_box(lua_State *L, int arg)
{
    return luaL_checkudata(L, arg, WMI_APARTMENT);
}

struct apartment *apartment_check(lua_State *L, int arg)
{
    struct apartment *a = *apartment_box(L, arg);
    if (!a) core_closed_error(L, WMI_APARTMENT);
    return a;
}

struct call_list *apartment_calls(struct apartment *a)
{
    return &a->calls;
}

HRESULT apartment_wrap(struct apartment *a, struct sink *sink, IWbemObjectSink **out)
{
    IUnknown *unknown = NULL;
    HRESULT hr;

    *out = NULL;
    if (!a->ua) return S_OK;    /* WMI gets the sink itself */
    if (a->wua)
        return IWbemUnsecuredApartment_CreateSinkStub(a->wua, &sink->IWbemObjectSink_iface,
                                                     a->stub_flags, NULL, out);
    /* The page's steps 3 and 4: the stub is an IUnknown; WMI needs its IWbemObjectSink. */
    hr = IUnsecuredApartment_CreateObjectStub(a->ua, (IUnknown *)&sink->IWbemObjectSink_iface, &unknown);
    if (SUCCEEDED(hr))
    {
        hr = IUnknown_QueryInterface(unknown, &IID_IWbemObjectSink, (void **)out);
        IUnknown_Release(unknown);
    }
    return hr;
}

static void apartment_free(lua_State *L, struct apartment **box)
{
    struct apartment *a = *box;
    *box = NULL;
    if (!a) return;
    call_cancel_list(L, &a->calls);
    if (a->wua) IWbemUnsecuredApartment_Release(a->wua);
    if (a->ua) IUnsecuredApartment_Release(a->ua);
    free(a);
}

/*** An unsecured apartment, from `apartment`: it wraps sinks in stubs.
 * @type Apartment
 */
/*** Closes the apartment; stubs made from it keep what they need.
 * @function Apartment:close
 */
static int apartment_close(lua_State *L)
{
    apartment_free(L, apartment_box(L, 1));
    return 0;
}

/*** `"unsecapp"` or `"inproc"`: where the stubs live.
 * @field Apartment.kind
 */
/*** `"check"`, `"none"`, `"default"` or `"unchecked"` (in-process): whether stubs check their callers.
 * @field Apartment.access
 */
static int apartment_index(lua_State *L)
{
    struct apartment *a = *apartment_box(L, 1);
    const char *key = luaL_checkstring(L, 2);
    if (!strcmp(key, "kind") || !strcmp(key, "access"))
    {
        if (!a) return core_closed_error(L, WMI_APARTMENT);
        lua_pushstring(L, key[0] == 'k' ? (a->ua ? "unsecapp" : "inproc") : a->access);
        return 1;
    }
    return core_push_method(L, key);
}

static int apartment_tostring(lua_State *L)
{
    struct apartment *a = *apartment_box(L, 1);
    if (!a) lua_pushfstring(L, "%s (closed)", WMI_APARTMENT);
    else lua_pushfstring(L, "%s (%s, access %s)", WMI_APARTMENT, a->ua ? "unsecapp" : "inproc", a->access);
    return 1;
}

/*** Creates an unsecured apartment: where async calls' sinks get their stubs.
 * @function apartment
 * @tparam[opt] table opts
 * @tparam[opt="auto"] string opts.mode `"auto"` (Unsecapp.exe where registered, else in-process), `"unsecapp"` or `"inproc"`
 * @tparam[opt="default"] boolean|string opts.check_access `true`: stubs that check their callers (`CreateSinkStub` with `WBEM_FLAG_UNSECAPP_CHECK_ACCESS`) or an error, never an unchecked apartment; `false`: no check
 * @tparam[opt] string opts.clsid another unsecured apartment's CLSID (`"{...}"`)
 * @tparam[opt="local"] string opts.context `"local"` or `"inproc"` server
 * @treturn Apartment
 * @return nil, message, hresult
 */
/* wmi.apartment{ mode = "auto"|"unsecapp"|"inproc", check_access = "default"|true|false,
 *                clsid = "{...}", context = "local"|"inproc" } */
int apartment_new(lua_State *L)
{
    static const char *const modes[] = { "auto", "unsecapp", "inproc", NULL };
    static const char *const contexts[] = { "local", "inproc", NULL };
    static const DWORD context_values[] = { CLSCTX_LOCAL_SERVER, CLSCTX_INPROC_SERVER };
    struct apartment **box, *a;
    int mode, context, t;
    LONG flags = WBEM_FLAG_UNSECAPP_DEFAULT_CHECK_ACCESS;
    const char *access = "default";
    BOOL must_check;
    CLSID clsid;
    HRESULT hr;

    static const char *const options[] = { "mode", "context", "check_access", "clsid", NULL };
    if (!lua_isnoneornil(L, 1)) luaL_checktype(L, 1, LUA_TTABLE);
    core_opt_check(L, 1, "apartment", "option", options);
    mode = core_opt_choice(L, 1, "apartment", "mode", "auto", modes);
    context = core_opt_choice(L, 1, "apartment", "context", "local", contexts);
    t = core_opt_field(L, 1, "check_access");
    if (t == LUA_TBOOLEAN)
    {
        flags = lua_toboolean(L, -1) ? WBEM_FLAG_UNSECAPP_CHECK_ACCESS : WBEM_FLAG_UNSECAPP_DONT_CHECK_ACCESS;
        access = lua_toboolean(L, -1) ? "check" : "none";
    }
    else if (t != LUA_TNIL && (t != LUA_TSTRING || strcmp(lua_tostring(L, -1), "default")))
        luaL_error(L, "bad option 'check_access' to 'apartment' (\"default\", true or false expected)");
    lua_pop(L, 1);
    core_opt_clsid(L, 1, "apartment", "clsid", &CLSID_UnsecuredApartment, &clsid);
    /* Fail closed: check_access = true is a promise that only CreateSinkStub keeps. */
    must_check = flags == WBEM_FLAG_UNSECAPP_CHECK_ACCESS;
    if (must_check && mode == 2)
        luaL_error(L, "bad option 'check_access' to 'apartment' (true needs unsecapp: an in-process sink "
                      "checks no caller)");

    box = lua_newuserdatauv(L, sizeof(*box), 0);
    *box = NULL;
    luaL_setmetatable(L, WMI_APARTMENT);
    if (!(a = calloc(1, sizeof(*a)))) return luaL_error(L, "out of memory");
    a->access = "unchecked";
    *box = a;
    if (mode == 2) return 1;

    hr = CoCreateInstance(&clsid, NULL, context_values[context], &IID_IUnsecuredApartment, (void **)&a->ua);
    if (FAILED(hr))
    {
        /* "auto" means: unsecapp where it is registered, else in-process (Wine). */
        if (mode == 0 && hr == REGDB_E_CLASSNOTREG && !must_check) return 1;
        apartment_free(L, box);     /* the userdata is on top, not at 1 (the options) */
        return hresult_fail(L, hr);
    }
    if (FAILED(IUnsecuredApartment_QueryInterface(a->ua, &IID_IWbemUnsecuredApartment, (void **)&a->wua)))
    {
        a->wua = NULL;
        if (must_check)
        {
            apartment_free(L, box);
            return hresult_fail_msg(L, E_NOINTERFACE, "check_access = true needs IWbemUnsecuredApartment "
                                                      "(CreateObjectStub's stubs cannot check access)");
        }
    }
    /* CreateObjectStub has no flags: its stubs apply unsecapp's default policy. */
    a->stub_flags = flags;
    a->access = a->wua ? access : "default";
    return 1;
}

void apartment_register(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "stub", stub_new },
        { "close", apartment_close },
        { NULL, NULL }
    };
    static const luaL_Reg meta[] = {
        { "__index", apartment_index },
        { "__gc", apartment_close },
        { "__close", apartment_close },
        { "__tostring", apartment_tostring },
        { NULL, NULL }
    };
    core_new_class(L, WMI_APARTMENT, NULL, meta);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "methods");
}

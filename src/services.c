/* wmi.Services: a connection to a WMI namespace (IWbemServices) and its
 * synchronous calls. The userdata holds a pointer to a separately allocated
 * struct so that async calls can keep the connection alive on their own. */
#include "luawmi.h"

#define SERVICES_BATCH 64          /* objects per IEnumWbemClassObject::Next */
#define ENUMERATOR_META "wmi.Enumerator"

/* Keeps what ConnectServer's blanket refers to: for a remote connection with
 * credentials, the COAUTHIDENTITY must live as long as the proxy. */
struct services
{
    IWbemServices *svc;
    COAUTHIDENTITY *identity;
    IWbemObjectSink *parked;    /* stub of the last finished async call, see services_park */
    struct call_list calls;     /* async calls in flight, cancelled on close */
    char *resource;             /* "root\cimv2" or "\\host\ns", for tostring */
};

static const char services_default_apartment_key = 'a';

static struct services **services_box(lua_State *L, int arg)
{
    return luaL_checkudata(L, arg, WMI_SERVICES);
}

struct services *services_check(lua_State *L, int arg)
{
    struct services *s = *services_box(L, arg);
    if (!s) core_closed_error(L, WMI_SERVICES);
    return s;
}

static void services_free_identity(COAUTHIDENTITY *id)
{
    if (!id) return;
    if (id->Password) SecureZeroMemory(id->Password, id->PasswordLength * sizeof(WCHAR));
    free(id->User);
    free(id->Domain);
    free(id->Password);
    free(id);
}

IWbemServices *services_iface(struct services *s)
{
    return s->svc;
}

struct call_list *services_calls(struct services *s)
{
    return &s->calls;
}

/* A finished call's stub may still hold the provider's async slot: Wine keeps one
 * per IWbemServices and frees it only on CancelAsyncCall. Keeping the stub lets
 * the next call (or close) cancel it only when needed, instead of every call
 * paying a CancelAsyncCall round trip on Windows. */
void services_park(struct services *s, IWbemObjectSink *stub)
{
    IWbemObjectSink_AddRef(stub);
    if (s->parked) IWbemObjectSink_Release(s->parked);
    s->parked = stub;
}

BOOL services_unpark(struct services *s)
{
    IWbemObjectSink *stub = s->parked;
    if (!stub) return FALSE;
    s->parked = NULL;
    IWbemServices_CancelAsyncCall(s->svc, stub);
    IWbemObjectSink_Release(stub);
    return TRUE;
}

int services_push_apartment(lua_State *L, int arg)
{
    if (lua_getiuservalue(L, arg, 1) != LUA_TNIL) return 1;
    lua_pop(L, 1);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &services_default_apartment_key) != LUA_TNIL) return 1;
    lua_pop(L, 1);
    lua_pushcfunction(L, apartment_new);
    lua_call(L, 0, 3);
    if (lua_isnil(L, -3)) return 3;     /* nil, message, hresult: no apartment, no call */
    lua_pop(L, 2);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &services_default_apartment_key);
    return 1;
}

static int services_close(lua_State *L)
{
    struct services **box = services_box(L, 1);
    struct services *s = *box;
    *box = NULL;
    if (s)
    {
        call_cancel_list(L, &s->calls);
        services_unpark(s);
        IWbemServices_Release(s->svc);
        services_free_identity(s->identity);
        free(s->resource);
        free(s);
        InterlockedDecrement(&wmi_stats.services);
    }
    return 0;
}

static int services_tostring(lua_State *L)
{
    struct services *s = *services_box(L, 1);
    lua_pushfstring(L, "%s (%s)", WMI_SERVICES, s ? s->resource : "closed");
    return 1;
}

/* --- connecting ------------------------------------------------------------ */

static const char *const services_authn_names[] = {
    "default", "none", "connect", "call", "packet", "integrity", "privacy", NULL };
static const DWORD services_authn_levels[] = {
    RPC_C_AUTHN_LEVEL_DEFAULT, RPC_C_AUTHN_LEVEL_NONE, RPC_C_AUTHN_LEVEL_CONNECT,
    RPC_C_AUTHN_LEVEL_CALL, RPC_C_AUTHN_LEVEL_PKT, RPC_C_AUTHN_LEVEL_PKT_INTEGRITY,
    RPC_C_AUTHN_LEVEL_PKT_PRIVACY };
static const char *const services_imp_names[] = {
    "anonymous", "identify", "impersonate", "delegate", NULL };
static const DWORD services_imp_levels[] = {
    RPC_C_IMP_LEVEL_ANONYMOUS, RPC_C_IMP_LEVEL_IDENTIFY, RPC_C_IMP_LEVEL_IMPERSONATE,
    RPC_C_IMP_LEVEL_DELEGATE };

struct connect_args
{
    const char *namespace, *host, *user, *password, *authority, *locale;
    DWORD authn, imp;
    CLSID locator;          /* the IWbemLocator class (default CLSID_WbemLocator) */
};

/* Reads string option FIELD of the table at 1 (or keeps *OUT); raises if not a string. */
static void services_opt_string(lua_State *L, const char *field, const char **out)
{
    int t = lua_getfield(L, 1, field);
    if (t == LUA_TSTRING) *out = lua_tostring(L, -1);
    else if (t != LUA_TNIL)
        luaL_error(L, "bad option '%s' to 'connect' (string expected, got %s)", field, luaL_typename(L, -1));
    lua_pop(L, 1); /* the string stays alive: the options table holds it */
}

/* The authentication and impersonation options of FUNC's options table at 1. */
static void services_opt_levels(lua_State *L, const char *func, const char *authn_def, DWORD *authn,
                                const char *imp_def, DWORD *imp)
{
    *authn = services_authn_levels[core_opt_choice(L, 1, func, "authentication", authn_def,
                                                   services_authn_names)];
    *imp = services_imp_levels[core_opt_choice(L, 1, func, "impersonation", imp_def, services_imp_names)];
}

/* wmi.init_security{ authentication = "default", impersonation = "impersonate" }
 * --> true | nil, message, hresult. CoInitializeSecurity belongs to the host
 * process, once: the module never calls it unless the script asks. */
int services_init_security(lua_State *L)
{
    DWORD authn, imp;
    HRESULT hr;
    if (!lua_isnoneornil(L, 1)) luaL_checktype(L, 1, LUA_TTABLE);
    services_opt_levels(L, "init_security", "default", &authn, "impersonate", &imp);
    hr = CoInitializeSecurity(NULL, -1, NULL, NULL, authn, imp, NULL, EOAC_NONE, NULL);
    if (FAILED(hr)) return hresult_fail(L, hr);
    lua_pushboolean(L, 1);
    return 1;
}

static void services_read_args(lua_State *L, struct connect_args *a)
{
    memset(a, 0, sizeof(*a));
    a->namespace = "root\\cimv2";
    a->authn = RPC_C_AUTHN_LEVEL_PKT_PRIVACY;
    a->imp = RPC_C_IMP_LEVEL_IMPERSONATE;
    a->locator = CLSID_WbemLocator;
    switch (lua_type(L, 1))
    {
    case LUA_TNONE:
    case LUA_TNIL:
        break;
    case LUA_TSTRING:
        a->namespace = lua_tostring(L, 1);
        break;
    case LUA_TTABLE:
        services_opt_string(L, "namespace", &a->namespace);
        services_opt_string(L, "host", &a->host);
        services_opt_string(L, "user", &a->user);
        services_opt_string(L, "password", &a->password);
        services_opt_string(L, "authority", &a->authority);
        services_opt_string(L, "locale", &a->locale);
        services_opt_levels(L, "connect", "privacy", &a->authn, "impersonate", &a->imp);
        core_opt_clsid(L, 1, "connect", "locator", &CLSID_WbemLocator, &a->locator);
        break;
    default:
        luaL_typeerror(L, 1, "nil, string or table");
    }
}

static WCHAR *services_wide(const char *s, ULONG *len)
{
    BSTR b = str_to_bstr(s, strlen(s));
    WCHAR *w;
    if (!b) return NULL;
    *len = SysStringLen(b);
    if ((w = malloc((*len + 1) * sizeof(WCHAR)))) memcpy(w, b, (*len + 1) * sizeof(WCHAR));
    SysFreeString(b);
    return w;
}

/* "DOMAIN\user" splits into domain and user, as WMI's own tools accept it. */
static COAUTHIDENTITY *services_make_identity(const struct connect_args *a)
{
    COAUTHIDENTITY *id = calloc(1, sizeof(*id));
    const char *slash = strchr(a->user, '\\');
    if (!id) return NULL;
    id->Flags = SEC_WINNT_AUTH_IDENTITY_UNICODE;
    if (slash)
    {
        char domain[256];
        size_t n = slash - a->user;
        if (n >= sizeof(domain)) goto fail;
        memcpy(domain, a->user, n);
        domain[n] = 0;
        if (!(id->Domain = (USHORT *)services_wide(domain, &id->DomainLength))) goto fail;
        if (!(id->User = (USHORT *)services_wide(slash + 1, &id->UserLength))) goto fail;
    }
    else if (!(id->User = (USHORT *)services_wide(a->user, &id->UserLength))) goto fail;
    if (a->password && !(id->Password = (USHORT *)services_wide(a->password, &id->PasswordLength)))
        goto fail;
    return id;
fail:
    services_free_identity(id);
    return NULL;
}

static BSTR services_bstr_or_null(const char *s, HRESULT *hr)
{
    BSTR b;
    if (!s || FAILED(*hr)) return NULL;
    if (!(b = str_to_bstr(s, strlen(s)))) *hr = E_OUTOFMEMORY;
    return b;
}

static void services_free_secret(BSTR b)
{
    if (b) SecureZeroMemory(b, SysStringByteLen(b));
    SysFreeString(b);
}

int services_connect(lua_State *L)
{
    struct connect_args a;
    struct services **box, *s = NULL;
    IWbemLocator *locator = NULL;
    BSTR resource = NULL, user = NULL, password = NULL, locale = NULL, authority = NULL;
    char *resource_utf8;
    HRESULT hr = S_OK;

    services_read_args(L, &a);
    /* The userdata exists, closed, before anything is acquired: an error while
     * building it (out of memory) then leaks nothing. */
    box = lua_newuserdatauv(L, sizeof(*box), 1);
    *box = NULL;
    luaL_setmetatable(L, WMI_SERVICES);
    if (core_opt_field(L, 1, "apartment") != LUA_TNIL)
    {
        if (!luaL_testudata(L, -1, WMI_APARTMENT))
            return luaL_error(L, "bad option 'apartment' to 'connect' (%s expected, got %s)", WMI_APARTMENT,
                              luaL_typename(L, -1));
        apartment_check(L, -1);
        lua_setiuservalue(L, -2, 1);
    }
    else lua_pop(L, 1);

    if (a.host)
        lua_pushfstring(L, "\\\\%s\\%s", a.host, a.namespace);
    else
        lua_pushstring(L, a.namespace);
    resource = services_bstr_or_null(lua_tostring(L, -1), &hr);
    resource_utf8 = _strdup(lua_tostring(L, -1));
    lua_pop(L, 1);
    if (!resource_utf8) hr = E_OUTOFMEMORY;
    user = services_bstr_or_null(a.user, &hr);
    password = services_bstr_or_null(a.password, &hr);
    locale = services_bstr_or_null(a.locale, &hr);
    authority = services_bstr_or_null(a.authority, &hr);
    if (FAILED(hr)) goto done;
    if (!(s = calloc(1, sizeof(*s))))
    {
        hr = E_OUTOFMEMORY;
        goto done;
    }

    hr = CoCreateInstance(&a.locator, NULL, CLSCTX_INPROC_SERVER, &IID_IWbemLocator,
                          (void **)&locator);
    if (FAILED(hr)) goto done;
    hr = IWbemLocator_ConnectServer(locator, resource, user, password, locale,
                                    WBEM_FLAG_CONNECT_USE_MAX_WAIT, authority, NULL, &s->svc);
    if (FAILED(hr)) goto done;

    if (a.host && a.user && !(s->identity = services_make_identity(&a)))
    {
        hr = E_OUTOFMEMORY;
        goto done;
    }
    hr = CoSetProxyBlanket((IUnknown *)s->svc, RPC_C_AUTHN_DEFAULT, RPC_C_AUTHZ_DEFAULT,
                           COLE_DEFAULT_PRINCIPAL, a.authn, a.imp, s->identity, EOAC_NONE);
    /* An in-process services object (a local provider, or Wine's) is no proxy:
     * there is no blanket to set and nothing is lost. */
    if (hr == E_NOINTERFACE) hr = S_OK;

done:
    if (locator) IWbemLocator_Release(locator);
    SysFreeString(resource);
    SysFreeString(user);
    services_free_secret(password);
    SysFreeString(locale);
    SysFreeString(authority);
    if (FAILED(hr))
    {
        if (s && s->svc) IWbemServices_Release(s->svc);
        if (s) services_free_identity(s->identity);
        free(s);
        free(resource_utf8);
        return hresult_fail(L, hr);
    }
    s->resource = resource_utf8;
    *box = s;
    InterlockedIncrement(&wmi_stats.services);
    return 1;
}

/* --- arguments --------------------------------------------------------------- */

/* Read before the services is checked: reading allocates, and an allocation may
 * run a finalizer that closes it. */
static LONG services_enum_flags(lua_State *L, int opts)
{
    LONG flags = WBEM_FLAG_RETURN_IMMEDIATELY | WBEM_FLAG_FORWARD_ONLY;
    if (!lua_isnoneornil(L, opts)) luaL_checktype(L, opts, LUA_TTABLE);
    core_opt_field(L, opts, "shallow");
    if (lua_toboolean(L, -1)) flags |= WBEM_FLAG_SHALLOW;
    lua_pop(L, 1);
    return flags;
}

/* --- result lists -------------------------------------------------------------- */

/* Drains ENUM into a wmi.List on the stack; releases ENUM. */
static int services_drain(lua_State *L, IEnumWbemClassObject *e)
{
    IWbemClassObject *batch[SERVICES_BATCH];
    ULONG got, i;
    lua_Integer n = 0;
    HRESULT hr;

    object_new_list(L);
    do
    {
        got = 0;
        hr = IEnumWbemClassObject_Next(e, WBEM_INFINITE, SERVICES_BATCH, batch, &got);
        for (i = 0; i < got; i++)
        {
            object_push(L, batch[i]);
            IWbemClassObject_Release(batch[i]);
            lua_rawseti(L, -2, ++n);
        }
    } while (hr == WBEM_S_NO_ERROR && got);
    IEnumWbemClassObject_Release(e);
    if (FAILED(hr)) return hresult_fail(L, hr);
    return 1;
}

static int services_query(lua_State *L)
{
    LONG flags = services_enum_flags(L, 3);
    struct services *s = services_check(L, 1);
    IEnumWbemClassObject *e = NULL;
    BSTR wql = core_check_bstr(L, 2), lang = SysAllocString(L"WQL");
    HRESULT hr = lang ? IWbemServices_ExecQuery(s->svc, lang, wql, flags, NULL, &e) : E_OUTOFMEMORY;
    SysFreeString(wql);
    SysFreeString(lang);
    if (FAILED(hr)) return hresult_fail(L, hr);
    return services_drain(L, e);
}

static int services_instances(lua_State *L)
{
    LONG flags = services_enum_flags(L, 3);
    struct services *s = services_check(L, 1);
    IEnumWbemClassObject *e = NULL;
    BSTR cls = core_check_bstr(L, 2);
    HRESULT hr = IWbemServices_CreateInstanceEnum(s->svc, cls, flags, NULL, &e);
    SysFreeString(cls);
    if (FAILED(hr)) return hresult_fail(L, hr);
    return services_drain(L, e);
}

static int services_classes(lua_State *L)
{
    struct services *s = services_check(L, 1);
    IEnumWbemClassObject *e = NULL;
    BSTR super = lua_isnoneornil(L, 2) ? NULL : core_check_bstr(L, 2);
    HRESULT hr = IWbemServices_CreateClassEnum(s->svc, super, WBEM_FLAG_DEEP | WBEM_FLAG_RETURN_IMMEDIATELY
                                               | WBEM_FLAG_FORWARD_ONLY, NULL, &e);
    SysFreeString(super);
    if (FAILED(hr)) return hresult_fail(L, hr);
    return services_drain(L, e);
}

/* --- each: an iterator that closes its enumerator on break ---------------------- */

static IEnumWbemClassObject **services_enum_box(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, ENUMERATOR_META);
}

static void services_enum_release(IEnumWbemClassObject **box)
{
    IEnumWbemClassObject *e = *box;
    *box = NULL;
    if (e)
    {
        IEnumWbemClassObject_Release(e);
        InterlockedDecrement(&wmi_stats.enumerators);
    }
}

static int services_enum_close(lua_State *L)
{
    services_enum_release(services_enum_box(L, 1));
    return 0;
}

static int services_enum_next(lua_State *L)
{
    IEnumWbemClassObject **box = services_enum_box(L, lua_upvalueindex(1));
    IWbemClassObject *obj = NULL;
    ULONG got = 0;
    HRESULT hr;

    if (!*box) return 0; /* finished, or closed: the loop ends */
    hr = IEnumWbemClassObject_Next(*box, WBEM_INFINITE, 1, &obj, &got);
    if (FAILED(hr) || !got)
    {
        services_enum_release(box);
        if (FAILED(hr))
        {
            hresult_push_message(L, hr);
            return lua_error(L);
        }
        return 0;
    }
    object_push(L, obj);
    IWbemClassObject_Release(obj);
    return 1;
}

/* svc:each(wql [, opts]) --> iterator, nil, nil, closer (like io.lines). Like
 * io.lines it raises when the query cannot start: a for loop has no place for
 * nil, message, hresult. */
static int services_each(lua_State *L)
{
    LONG flags = services_enum_flags(L, 3);
    struct services *s = services_check(L, 1);
    IEnumWbemClassObject **box;
    BSTR wql, lang;
    HRESULT hr;

    luaL_checkstring(L, 2);
    box = lua_newuserdatauv(L, sizeof(*box), 0);
    *box = NULL;
    if (luaL_newmetatable(L, ENUMERATOR_META))
    {
        lua_pushcfunction(L, services_enum_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, services_enum_close);
        lua_setfield(L, -2, "__close");
    }
    lua_setmetatable(L, -2);

    wql = core_check_bstr(L, 2);
    lang = SysAllocString(L"WQL");
    hr = lang ? IWbemServices_ExecQuery(s->svc, lang, wql, flags, NULL, box) : E_OUTOFMEMORY;
    SysFreeString(wql);
    SysFreeString(lang);
    if (FAILED(hr))
    {
        hresult_push_message(L, hr);
        return lua_error(L);
    }
    InterlockedIncrement(&wmi_stats.enumerators);
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, services_enum_next, 1);
    lua_pushnil(L);
    lua_pushnil(L);
    lua_rotate(L, -4, -1); /* iterator, nil, nil, enumerator */
    return 4;
}

/* --- single objects ----------------------------------------------------------- */

static int services_get(lua_State *L)
{
    struct services *s = services_check(L, 1);
    IWbemClassObject *obj = NULL;
    BSTR path;
    HRESULT hr;

    /* GetObject("") makes an empty class; Wine then crashes on its first Get. */
    luaL_argcheck(L, luaL_checkstring(L, 2)[0], 2, "empty object path");
    path = core_check_bstr(L, 2);
    hr = IWbemServices_GetObject(s->svc, path, 0, NULL, &obj, NULL);
    SysFreeString(path);
    if (FAILED(hr)) return hresult_fail(L, hr);
    object_push(L, obj);
    IWbemClassObject_Release(obj);
    return 1;
}

/* The class part of an object path: "\\srv\root\cimv2:Win32_Process.Handle=1"
 * -> "Win32_Process". */
static BSTR services_path_class(const WCHAR *path)
{
    const WCHAR *start = wcschr(path, ':'), *end;
    start = start ? start + 1 : path;
    for (end = start; *end && *end != '.' && *end != '='; end++);
    return SysAllocStringLen(start, end - start);
}

/* Fills a new in-parameters instance of METHOD from the Lua table at ARG. A
 * caller's mistake (unknown parameter, value that does not fit) leaves a message
 * on the stack and sets *misuse, for an argument error once all is released. */
static HRESULT services_table_inparams(lua_State *L, int arg, IWbemServices *svc, const WCHAR *path,
                                       const WCHAR *method, IWbemClassObject **out, BOOL *misuse)
{
    IWbemClassObject *cls = NULL, *in_class = NULL, *in = NULL;
    BSTR cls_name = services_path_class(path);
    HRESULT hr = cls_name ? S_OK : E_OUTOFMEMORY;

    *out = NULL;
    if (SUCCEEDED(hr)) hr = IWbemServices_GetObject(svc, cls_name, 0, NULL, &cls, NULL);
    if (SUCCEEDED(hr)) hr = IWbemClassObject_GetMethod(cls, method, 0, &in_class, NULL);
    if (SUCCEEDED(hr) && !in_class) hr = WBEM_E_INVALID_METHOD_PARAMETERS;
    if (SUCCEEDED(hr)) hr = IWbemClassObject_SpawnInstance(in_class, 0, &in);
    if (FAILED(hr)) goto done;

    lua_pushnil(L);
    while (lua_next(L, arg))
    {
        CIMTYPE type = 0;
        VARIANT v;
        const char *why;
        BSTR name;

        if (lua_type(L, -2) != LUA_TSTRING)
        {
            lua_pop(L, 2);
            lua_pushstring(L, "parameter names must be strings");
            *misuse = TRUE;
            goto done;
        }
        if (!(name = str_to_bstr(lua_tostring(L, -2), lua_rawlen(L, -2))))
        {
            lua_pop(L, 2);
            hr = E_OUTOFMEMORY;
            goto done;
        }
        if (FAILED(IWbemClassObject_Get(in, name, 0, NULL, &type, NULL)))
        {
            SysFreeString(name);
            lua_pop(L, 1);
            lua_pushfstring(L, "no parameter '%s'", lua_tostring(L, -1));
            lua_remove(L, -2);
            *misuse = TRUE;
            goto done;
        }
        if ((why = variant_from_lua(L, -1, type, &v)))
        {
            SysFreeString(name);
            lua_pop(L, 1);
            lua_pushfstring(L, "bad parameter '%s' (%s)", lua_tostring(L, -1), why);
            lua_remove(L, -2);
            *misuse = TRUE;
            goto done;
        }
        hr = object_put(in, name, &v, type);
        VariantClear(&v);
        SysFreeString(name);
        lua_pop(L, 1);
        if (FAILED(hr))
        {
            lua_pop(L, 1);
            goto done;
        }
    }
    *out = in;
    in = NULL;
done:
    if (*misuse) hr = E_INVALIDARG;
    if (in) IWbemClassObject_Release(in);
    if (in_class) IWbemClassObject_Release(in_class);
    if (cls) IWbemClassObject_Release(cls);
    SysFreeString(cls_name);
    return hr;
}

HRESULT services_inparams(lua_State *L, int arg, struct services *s, const WCHAR *path,
                          const WCHAR *method, IWbemClassObject **in, BOOL *misuse)
{
    int t = lua_type(L, arg);
    *in = NULL;
    *misuse = FALSE;
    if (t == LUA_TNONE || t == LUA_TNIL) return S_OK;
    if (t == LUA_TTABLE) return services_table_inparams(L, arg, s->svc, path, method, in, misuse);
    if (luaL_testudata(L, arg, WMI_OBJECT) && !(*in = object_test(L, arg)))
    {
        /* Not raised here: the caller holds strings to free first. */
        lua_pushfstring(L, "attempt to use a closed %s", WMI_OBJECT);
        *misuse = TRUE;
        return E_INVALIDARG;
    }
    if (!*in)
    {
        lua_pushfstring(L, "table or %s expected, got %s", WMI_OBJECT, luaL_typename(L, arg));
        *misuse = TRUE;
        return E_INVALIDARG;
    }
    IWbemClassObject_AddRef(*in);
    return S_OK;
}

/* svc:exec(path, method [, params]) --> out-parameters object (true when the
 * method has none). PARAMS is a Lua table or an in-parameters wmi.Object. */
static int services_exec(lua_State *L)
{
    struct services *s = services_check(L, 1);
    IWbemClassObject *in = NULL, *out = NULL;
    BSTR path, method;
    BOOL misuse;
    HRESULT hr;

    luaL_checkstring(L, 3);
    path = core_check_bstr(L, 2);
    if (!(method = str_to_bstr(lua_tostring(L, 3), lua_rawlen(L, 3))))
    {
        SysFreeString(path);
        return luaL_argerror(L, 3, "invalid UTF-8 or out of memory");
    }
    hr = services_inparams(L, 4, s, path, method, &in, &misuse);
    if (SUCCEEDED(hr)) hr = IWbemServices_ExecMethod(s->svc, path, method, 0, NULL, in, &out, NULL);
    if (in) IWbemClassObject_Release(in);
    SysFreeString(path);
    SysFreeString(method);
    if (misuse) return luaL_argerror(L, 4, lua_tostring(L, -1));
    if (FAILED(hr)) return hresult_fail(L, hr);
    if (!out)
    {
        lua_pushboolean(L, 1);
        return 1;
    }
    object_push(L, out);
    IWbemClassObject_Release(out);
    return 1;
}

/* svc:put(obj) --> path of the written instance */
static int services_put(lua_State *L)
{
    struct services *s = services_check(L, 1);
    IWbemClassObject *obj = object_check(L, 2);
    IWbemCallResult *result = NULL;
    BSTR path = NULL;
    HRESULT hr = IWbemServices_PutInstance(s->svc, obj, WBEM_FLAG_CREATE_OR_UPDATE, NULL, &result);

    if (SUCCEEDED(hr) && result) hr = IWbemCallResult_GetResultString(result, WBEM_INFINITE, &path);
    if (result) IWbemCallResult_Release(result);
    if (FAILED(hr)) return hresult_fail(L, hr);
    str_push_wide(L, path, -1);
    SysFreeString(path);
    return 1;
}

static int services_delete(lua_State *L)
{
    struct services *s = services_check(L, 1);
    BSTR path = core_check_bstr(L, 2);
    HRESULT hr = IWbemServices_DeleteInstance(s->svc, path, 0, NULL, NULL);
    SysFreeString(path);
    if (FAILED(hr)) return hresult_fail(L, hr);
    lua_pushboolean(L, 1);
    return 1;
}

void services_register(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "query", services_query },
        { "each", services_each },
        { "instances", services_instances },
        { "classes", services_classes },
        { "get", services_get },
        { "exec", services_exec },
        { "put", services_put },
        { "delete", services_delete },
        { "close", services_close },
        { NULL, NULL }
    };
    static const luaL_Reg meta[] = {
        { "__gc", services_close },
        { "__close", services_close },
        { "__tostring", services_tostring },
        { NULL, NULL }
    };
    core_new_class(L, WMI_SERVICES, methods, meta);
}

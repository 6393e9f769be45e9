/* wmi.Services: a connection to a WMI namespace (IWbemServices) and its
 * synchronous calls. The userdata holds a pointer to a separately allocated
 * struct so that async calls can keep the connection alive on their own. */
#include "luawmi.h"
#include <string.h>

#define SERVICES_BATCH 64          /* objects per IEnumWbemClassObject::Next */
#define ENUMERATOR_META "wmi.Enumerator"

/* The identity is shared with every proxy the connection hands out: a call, an
 * enumerator or a call result may outlive the Services' close. */
struct services
{
    IWbemServices *svc;
    struct identity *identity;
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

IWbemServices *services_iface(struct services *s)
{
    return s->svc;
}

struct identity *services_identity(struct services *s)
{
    return s->identity;
}

struct call_list *services_calls(struct services *s)
{
    return &s->calls;
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

/*** A connection to a WMI namespace (`IWbemServices`), from `connect`.
 * Its methods ending in `_async` and `subscribe` take a handlers table or a `Stub` as SINK
 * and options:
 * `progress = true` (progress callbacks, WBEM_FLAG_SEND_STATUS),
 * `queue_limit = n` callbacks that may wait undispatched (default 100000, `false`: none),
 * `queue_bytes = n` bytes they may take (default 64 MiB, `false`: none).
 * A handlers table has `indicate(obj, call)`, `status(ok, message, hresult, obj, call)`,
 * `progress(upper, current, message, call)`; without `indicate` the call keeps its objects
 * for `Call:objects`.
 * @type Services
 */
/*** Closes the connection (also `__close` and `__gc`); closing twice is harmless.
 * Calls in flight keep what they need.
 * @function Services:close
 */
static int services_close(lua_State *L)
{
    struct services **box = services_box(L, 1);
    struct services *s = *box;
    *box = NULL;
    if (s)
    {
        call_cancel_list(L, &s->calls);
        pool_release_proxy(L, (IUnknown *)s->svc, s->identity);
        identity_release(s->identity);
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

/*** Calls CoInitializeSecurity for the host process, only when the script asks.
 * It passes no security descriptor: COM then checks no caller. The module never calls it on its own.
 * @function init_security
 * @tparam[opt] table opts
 * @tparam[opt="default"] string opts.authentication as `connect`'s
 * @tparam[opt="impersonate"] string opts.impersonation as `connect`'s
 * @tparam[opt] boolean opts.insecure allows a level below packet integrity
 * @treturn boolean true
 * @return nil, message, hresult
 */
/* wmi.init_security{ authentication = "default", impersonation = "impersonate" }
 * --> true | nil, message, hresult. CoInitializeSecurity belongs to the host
 * process, once: the module never calls it unless the script asks. */
int services_init_security(lua_State *L)
{
    static const char *const options[] = { "authentication", "impersonation", "insecure", NULL };
    DWORD authn, imp;
    HRESULT hr;
    if (!lua_isnoneornil(L, 1)) luaL_checktype(L, 1, LUA_TTABLE);
    core_opt_check(L, 1, "init_security", "option", options);
    connect_opt_levels(L, 1, "init_security", "default", &authn, "impersonate", &imp);
    hr = CoInitializeSecurity(NULL, -1, NULL, NULL, authn, imp, NULL, EOAC_NONE, NULL);
    if (FAILED(hr)) return hresult_fail(L, hr);
    lua_pushboolean(L, 1);
    return 1;
}

void services_push_closed(lua_State *L)
{
    struct services **box = lua_newuserdatauv(L, sizeof(*box), 1);
    *box = NULL;
    luaL_setmetatable(L, WMI_SERVICES);
}

HRESULT services_open(lua_State *L, int idx, IWbemServices *svc, struct identity *id, const char *label, int apt)
{
    struct services **box = lua_touserdata(L, idx), *s = calloc(1, sizeof(*s));
    char *resource = _strdup(label);
    if (!s || !resource)
    {
        free(s);
        free(resource);
        IWbemServices_Release(svc);
        identity_release(id);
        return E_OUTOFMEMORY;
    }
    s->svc = svc;
    s->identity = id;
    s->resource = resource;
    if (apt)
    {
        lua_pushvalue(L, apt);
        lua_setiuservalue(L, idx, 1);
    }
    *box = s;
    InterlockedIncrement(&wmi_stats.services);
    return S_OK;
}

/*** Connects to a WMI namespace (ConnectServer and the proxy blanket).
 * A string argument is the namespace. Blocks until connected: see `connect_async`.
 * @function connect
 * @tparam[opt] string|table opts the namespace (default `root\cimv2`), or options:
 * @tparam[opt] string opts.namespace namespace, or a UNC path naming another machine (`//srv/root/cimv2`)
 * @tparam[opt] string opts.host another machine (a DNS, NetBIOS, IPv4 or IPv6 name: `valid_host`)
 * @tparam[opt] string opts.user user name (`DOMAIN\user`) for another machine
 * @tparam[opt] string opts.password its password (needs `user`)
 * @tparam[opt] string opts.authority `"ntlmdomain:DOMAIN"` or `"kerberos:DOMAIN\HOST"`
 * @tparam[opt] string opts.locale e.g. `"MS_409"`
 * @tparam[opt="privacy"] string opts.authentication `"default"`, `"integrity"`, `"privacy"` (`"none"`, `"connect"`, `"call"`, `"packet"` only with `insecure`)
 * @tparam[opt="impersonate"] string opts.impersonation `"anonymous"`, `"identify"`, `"impersonate"`, `"delegate"`
 * @tparam[opt] Apartment opts.apartment the apartment this connection's async calls make their stubs in
 * @tparam[opt] string opts.locator the CLSID (`"{...}"`) of another `IWbemLocator`
 * @tparam[opt] boolean opts.insecure allows an authentication level below packet integrity
 * @tparam[opt] table opts.context an IWbemContext for ConnectServer: `{ name = value, ... }` (integers, booleans, strings, lists of strings)
 * @tparam[opt] {string,...} opts.privileges privileges enabled around each call to a local provider: WMI's names (`"Shutdown"`, `"Security"`) or Windows' (`"SeShutdownPrivilege"`)
 * @treturn Services the connection
 * @return nil, message, hresult when WMI refuses it
 */
int services_connect(lua_State *L)
{
    struct connect_args a;
    IWbemServices *svc;
    struct identity *id;
    int box, apt;
    HRESULT hr;

    /* The userdata exists, closed, before anything is acquired. */
    lua_settop(L, 1);
    services_push_closed(L);
    box = lua_gettop(L);
    connect_args_read(L, 1, "connect", &a);
    apt = core_opt_field(L, 1, "apartment") == LUA_TNIL ? 0 : lua_gettop(L);
    hr = connect_server(&a, &svc, &id);
    if (SUCCEEDED(hr)) hr = services_open(L, box, svc, id, a.label, apt);
    connect_args_free(&a);
    if (FAILED(hr)) return hresult_fail(L, hr);
    lua_settop(L, box);
    return 1;
}

/* --- arguments --------------------------------------------------------------- */

/* Option 'amended' of the options at OPTS: WBEM_FLAG_USE_AMENDED_QUALIFIERS, so
 * that objects carry their amended qualifiers (Description, the text of Values)
 * in the connection's locale (wmi.connect's 'locale'). */
static LONG services_amended_flag(lua_State *L, int opts)
{
    LONG flags = 0;
    if (core_opt_field(L, opts, "amended") != LUA_TNIL && lua_toboolean(L, -1)) flags = WBEM_FLAG_USE_AMENDED_QUALIFIERS;
    lua_pop(L, 1);
    return flags;
}

/* Arguments are read and converted before the services is checked: reading
 * allocates, and an allocation may run a finalizer that closes it. Between
 * services_check and the COM call nothing allocates. */
static LONG services_enum_flags(lua_State *L, int opts, const char *func)
{
    static const char *const options[] = { "shallow", "context", "amended", NULL };
    LONG flags = WBEM_FLAG_RETURN_IMMEDIATELY | WBEM_FLAG_FORWARD_ONLY;
    if (!lua_isnoneornil(L, opts)) luaL_checktype(L, opts, LUA_TTABLE);
    core_opt_check(L, opts, func, "option", options);
    core_opt_field(L, opts, "shallow");
    if (lua_toboolean(L, -1)) flags |= WBEM_FLAG_SHALLOW;
    lua_pop(L, 1);
    return flags | services_amended_flag(L, opts);
}

/* Options of a call that takes a context (and EXTRA, if not NULL): checked, and the
 * context pushed (context_push). */
static struct context *services_context(lua_State *L, int opts, const char *func, const char *extra)
{
    const char *const options[] = { "context", extra, NULL };
    if (!lua_isnoneornil(L, opts)) luaL_checktype(L, opts, LUA_TTABLE);
    core_opt_check(L, opts, func, "option", options);
    return context_push(L, opts, func);
}

/* services_check that frees BSTRs A and B before it raises. */
static struct services *services_check_free(lua_State *L, BSTR a, BSTR b)
{
    struct services *s = *services_box(L, 1);
    if (s) return s;
    SysFreeString(a);
    SysFreeString(b);
    core_closed_error(L, WMI_SERVICES);
    return NULL;
}

/* --- result lists -------------------------------------------------------------- */

struct services_drain
{
    IEnumWbemClassObject *e;
    IWbemClassObject *batch[SERVICES_BATCH];
    ULONG got, next;            /* batch[next..got) are still ours */
    HRESULT hr;
};

/* Protected: an allocation error leaves what it has not handed out to the caller. */
static int services_drain_body(lua_State *L)
{
    struct services_drain *d = lua_touserdata(L, 1);
    lua_Integer n = 0;

    object_new_list(L);
    do
    {
        d->got = d->next = 0;
        d->hr = IEnumWbemClassObject_Next(d->e, WBEM_INFINITE, SERVICES_BATCH, d->batch, &d->got);
        while (d->next < d->got)
        {
            object_fill(object_new(L), d->batch[d->next]);
            d->next++;
            lua_rawseti(L, -2, ++n);
        }
    } while (d->hr == WBEM_S_NO_ERROR && d->got);
    return 1;
}

/* Pushes a wmi.List of what E gives (with ID's blanket); releases E and ID. */
static int services_drain(lua_State *L, IEnumWbemClassObject *e, struct identity *id)
{
    struct services_drain d;
    int status;

    d.e = e;
    d.got = d.next = 0;
    /* ID lives until the enumerator is released: its blanket points into it, and
     * a finalizer run by the drain may close the Services meanwhile. */
    if (FAILED(d.hr = identity_blanket(id, (IUnknown *)e)))
    {
        IEnumWbemClassObject_Release(e);
        identity_release(id);
        return hresult_fail(L, d.hr);
    }
    lua_pushcfunction(L, services_drain_body);
    lua_pushlightuserdata(L, &d);
    status = lua_pcall(L, 1, 1, 0);
    for (; d.next < d.got; d.next++) IWbemClassObject_Release(d.batch[d.next]);
    IEnumWbemClassObject_Release(e);
    identity_release(id);
    if (status != LUA_OK) return lua_error(L);
    if (FAILED(d.hr)) return hresult_fail(L, d.hr);
    return 1;
}

enum services_enum_kind { SERVICES_QUERY, SERVICES_INSTANCES, SERVICES_CLASSES };

/* Starts an enumeration: ExecQuery of WQL, CreateInstanceEnum or CreateClassEnum
 * of CLS (which it frees), with context C and the connection's privileges (PS).
 * *ID: a reference to the identity its proxy uses. */
static HRESULT services_enum(lua_State *L, enum services_enum_kind kind, BSTR wql, BSTR cls, LONG flags,
                             const struct context *c, struct privilege_scope *ps, IEnumWbemClassObject **e,
                             struct identity **id)
{
    struct services *s = services_check_free(L, wql, cls);
    static const WCHAR lang[] = L"WQL";
    IWbemContext *ctx = NULL;
    BSTR wlang = NULL;
    HRESULT hr;

    *e = NULL;
    *id = NULL;
    memset(ps, 0, sizeof(*ps));
    if (kind == SERVICES_QUERY && !(wlang = SysAllocString(lang))) hr = E_OUTOFMEMORY;
    else if (SUCCEEDED(hr = context_enter(c, s->identity, &ctx, ps)))
    {
        if (kind == SERVICES_QUERY) hr = IWbemServices_ExecQuery(s->svc, wlang, wql, flags, ctx, e);
        else if (kind == SERVICES_CLASSES) hr = IWbemServices_CreateClassEnum(s->svc, cls, flags, ctx, e);
        else hr = IWbemServices_CreateInstanceEnum(s->svc, cls, flags, ctx, e);
        context_leave(ctx, ps);
    }
    SysFreeString(wlang);
    SysFreeString(wql);
    SysFreeString(cls);
    if (SUCCEEDED(hr))
    {
        *id = s->identity;
        identity_addref(*id);
    }
    return hr;
}

/*** Runs a WQL query (semisynchronous underneath).
 * @function Services:query
 * @tparam string wql
 * @tparam[opt] table opts
 * @tparam[opt] boolean opts.shallow without the instances of subclasses (WBEM_FLAG_SHALLOW)
 * @tparam[opt] boolean opts.amended with their amended qualifiers (WBEM_FLAG_USE_AMENDED_QUALIFIERS: `Description`, the text of `Values`) in the connection's locale
 * @tparam[opt] table opts.context the call's IWbemContext: `{ name = value, ... }` (see `wmi.connect`)
 * @treturn List a list of `Object`; `tostring(list)` summarises it
 * @return nil, message, hresult
 */
static int services_query(lua_State *L)
{
    struct privilege_scope ps;
    IEnumWbemClassObject *e;
    struct identity *id;
    struct context *c;
    LONG flags;
    HRESULT hr;
    size_t len;

    query_check(L, 2);              /* a query table becomes its text */
    flags = services_enum_flags(L, 3, "query");
    core_check_text(L, 2, &len);    /* before anything is pushed: "got no value" */
    c = context_push(L, 3, "query");
    hr = services_enum(L, SERVICES_QUERY, core_check_bstr(L, 2), NULL, flags, c, &ps, &e, &id);
    if (FAILED(hr)) return privileges_fail(L, &ps, hr);
    return services_drain(L, e, id);
}

/*** The instances of a class.
 * @function Services:instances
 * @tparam string class
 * @tparam[opt] table opts
 * @tparam[opt] boolean opts.shallow without the instances of subclasses
 * @tparam[opt] table opts.context the call's IWbemContext: `{ name = value, ... }` (see `wmi.connect`)
 * @treturn List a list of `Object`
 * @return nil, message, hresult
 */
static int services_instances(lua_State *L)
{
    LONG flags = services_enum_flags(L, 3, "instances");
    struct privilege_scope ps;
    IEnumWbemClassObject *e;
    struct identity *id;
    struct context *c;
    HRESULT hr;
    size_t len;

    core_check_text(L, 2, &len);
    c = context_push(L, 3, "instances");
    hr = services_enum(L, SERVICES_INSTANCES, NULL, core_check_bstr(L, 2), flags, c, &ps, &e, &id);
    if (FAILED(hr)) return privileges_fail(L, &ps, hr);
    return services_drain(L, e, id);
}

/*** Class definitions: all, or those below SUPERCLASS.
 * @function Services:classes
 * @tparam[opt] string superclass
 * @tparam[opt] table opts
 * @tparam[opt] boolean opts.shallow only the direct subclasses
 * @tparam[opt] boolean opts.amended with their amended qualifiers (WBEM_FLAG_USE_AMENDED_QUALIFIERS: `Description`, the text of `Values`) in the connection's locale
 * @tparam[opt] table opts.context the call's IWbemContext: `{ name = value, ... }` (see `wmi.connect`)
 * @treturn List a list of `Object`
 * @return nil, message, hresult
 */
static int services_classes(lua_State *L)
{
    struct privilege_scope ps;
    IEnumWbemClassObject *e;
    struct identity *id;
    struct context *c;
    HRESULT hr;
    BSTR super;
    size_t len;

    if (!lua_isnoneornil(L, 2)) core_check_text(L, 2, &len);
    c = services_context(L, 3, "classes", "amended");
    super = lua_isnoneornil(L, 2) ? NULL : core_check_bstr(L, 2);
    hr = services_enum(L, SERVICES_CLASSES, NULL, super, WBEM_FLAG_DEEP | WBEM_FLAG_RETURN_IMMEDIATELY
                               | WBEM_FLAG_FORWARD_ONLY | services_amended_flag(L, 3), c, &ps, &e, &id);
    if (FAILED(hr)) return privileges_fail(L, &ps, hr);
    return services_drain(L, e, id);
}

/* --- each: an iterator that closes its enumerator on break ---------------------- */

/* The enumerator userdata: the proxy and the identity its blanket refers to. */
struct services_iter
{
    IEnumWbemClassObject *e;
    struct identity *id;
};

static struct services_iter *services_iter_box(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, ENUMERATOR_META);
}

static void services_iter_release(struct services_iter *it)
{
    IEnumWbemClassObject *e = it->e;
    it->e = NULL;
    if (e)
    {
        IEnumWbemClassObject_Release(e);
        identity_release(it->id);
        it->id = NULL;
        InterlockedDecrement(&wmi_stats.enumerators);
    }
}

static int services_iter_close(lua_State *L)
{
    services_iter_release(services_iter_box(L, 1));
    return 0;
}

static int services_iter_next(lua_State *L)
{
    struct services_iter *it = services_iter_box(L, lua_upvalueindex(1));
    IWbemClassObject *obj = NULL;
    struct object *o;
    ULONG got = 0;
    HRESULT hr;

    o = object_new(L);
    if (!it->e) return 0; /* finished, or closed (by a finalizer too): the loop ends */
    hr = IEnumWbemClassObject_Next(it->e, WBEM_INFINITE, 1, &obj, &got);
    if (FAILED(hr) || !got)
    {
        services_iter_release(it);
        if (FAILED(hr))
        {
            hresult_push_message(L, hr);
            return lua_error(L);
        }
        return 0;
    }
    object_fill(o, obj);
    return 1;
}

/*** An iterator over a query's objects for a generic `for`.
 * Closes its enumerator on `break`; raises, like `io.lines`, when the query cannot start.
 * @function Services:each
 * @tparam string wql
 * @tparam[opt] table opts
 * @tparam[opt] table opts.context the call's IWbemContext: `{ name = value, ... }` (see `wmi.connect`)
 * @return iterator, nil, nil, closer
 */
/* svc:each(wql [, opts]) --> iterator, nil, nil, closer (like io.lines). Like
 * io.lines it raises when the query cannot start: a for loop has no place for
 * nil, message, hresult. */
static int services_each(lua_State *L)
{
    struct privilege_scope ps;
    struct services_iter *it;
    struct context *c;
    LONG flags;
    HRESULT hr;

    query_check(L, 2);              /* a query table becomes its text */
    flags = services_enum_flags(L, 3, "each");
    luaL_checkstring(L, 2);
    c = context_push(L, 3, "each");
    it = lua_newuserdatauv(L, sizeof(*it), 0);
    it->e = NULL;
    it->id = NULL;
    if (luaL_newmetatable(L, ENUMERATOR_META))
    {
        lua_pushcfunction(L, services_iter_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, services_iter_close);
        lua_setfield(L, -2, "__close");
    }
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, services_iter_next, 1);
    lua_pushnil(L);
    lua_pushnil(L);
    lua_rotate(L, -4, -1); /* iterator, nil, nil, enumerator */

    hr = services_enum(L, SERVICES_QUERY, core_check_bstr(L, 2), NULL, flags, c, &ps, &it->e, &it->id);
    if (SUCCEEDED(hr))
    {
        InterlockedIncrement(&wmi_stats.enumerators);
        hr = identity_blanket(it->id, (IUnknown *)it->e);
    }
    if (FAILED(hr))
    {
        services_iter_release(it);
        privileges_fail(L, &ps, hr);
        lua_pop(L, 1);
        return lua_error(L);    /* the message */
    }
    return 4;
}

/* --- single objects ----------------------------------------------------------- */

/* Raises an argument error unless the string at ARG is an object path with a
 * class part (a NUL, "", ".Name=1", "root:" have none). It holds nothing: call it
 * before converting anything. The delimiters are ASCII, as in services_path_class. */
void services_check_path(lua_State *L, int arg)
{
    size_t len;
    const char *path = core_check_text(L, arg, &len), *start = path, *end = path;

    luaL_argcheck(L, len, arg, "empty object path");
    if ((end[0] == '\\' || end[0] == '/') && (end[1] == '\\' || end[1] == '/'))
        for (end += 2; *end && *end != '\\' && *end != '/'; end++);
    for (; *end && *end != '.' && *end != '='; end++)
    {
        if (*end == ':')
        {
            start = end + 1;
            break;
        }
    }
    /* GetObject of an empty class: Wine crashes in its first Get, and a method
     * call reaches the provider with no class. */
    luaL_argcheck(L, *start && *start != '.' && *start != '=', arg, "object path names no class");
}

/*** One object or class by its path (`"Win32_Service.Name='Spooler'"`).
 * @function Services:get
 * @tparam string path
 * @tparam[opt] table opts
 * @tparam[opt] boolean opts.amended with its amended qualifiers (WBEM_FLAG_USE_AMENDED_QUALIFIERS: `Description`, the text of `Values`) in the connection's locale
 * @tparam[opt] table opts.context the call's IWbemContext: `{ name = value, ... }` (see `wmi.connect`)
 * @treturn Object
 * @return nil, message, hresult
 */
static int services_get(lua_State *L)
{
    struct services *s;
    struct object *o;
    IWbemClassObject *obj = NULL;
    IWbemContext *ctx;
    struct privilege_scope ps;
    struct context *c;
    BSTR path;
    HRESULT hr;
    LONG flags;

    services_check_path(L, 2);
    c = services_context(L, 3, "get", "amended");
    flags = services_amended_flag(L, 3);
    o = object_new(L);
    path = core_check_bstr(L, 2);
    s = services_check_free(L, path, NULL);
    if (SUCCEEDED(hr = context_enter(c, s->identity, &ctx, &ps)))
    {
        hr = IWbemServices_GetObject(s->svc, path, flags, ctx, &obj, NULL);
        context_leave(ctx, &ps);
    }
    SysFreeString(path);
    if (FAILED(hr)) return privileges_fail(L, &ps, hr);
    object_fill(o, obj);
    return 1;
}

/* The class part of an object path: "\\srv\root\cimv2:Win32_Process.Handle=1"
 * -> "Win32_Process". The namespace ends at a ':' before the keys (a key's value
 * may hold a ':' of its own); a server name may hold a '.'. */
static BSTR services_path_class(const WCHAR *path)
{
    const WCHAR *start = path, *end = path;
    if ((end[0] == '\\' || end[0] == '/') && (end[1] == '\\' || end[1] == '/'))
        for (end += 2; *end && *end != '\\' && *end != '/'; end++);
    for (; *end && *end != '.' && *end != '='; end++)
    {
        if (*end == ':')
        {
            start = end + 1;
            break;
        }
    }
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
        if (FAILED(hr = str_to_bstr(lua_tostring(L, -2), lua_rawlen(L, -2), &name)))
        {
            lua_pop(L, 2);
            if (hr == E_INVALIDARG)
            {
                lua_pushstring(L, "parameter names must be valid UTF-8");
                *misuse = TRUE;
            }
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
        if ((why = variant_from_lua(L, -1, type | VARIANT_PARAM, &v)))
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

HRESULT services_inparams(lua_State *L, int arg, IWbemServices *svc, const WCHAR *path,
                          const WCHAR *method, IWbemClassObject **in, BOOL *misuse)
{
    int t = lua_type(L, arg);
    *in = NULL;
    *misuse = FALSE;
    if (t == LUA_TNONE || t == LUA_TNIL) return S_OK;
    if (t == LUA_TTABLE)
    {
        /* {} is no parameters, as nil: WMI would refuse an empty instance. */
        lua_pushnil(L);
        if (!lua_next(L, arg)) return S_OK;
        lua_pop(L, 2);
        return services_table_inparams(L, arg, svc, path, method, in, misuse);
    }
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

/*** Runs a method.
 * @function Services:exec
 * @tparam string path the class (static method) or instance
 * @tparam string method
 * @tparam[opt] table|Object params a table of in-parameters, or an object from `Object:inparams`
 * @tparam[opt] table opts
 * @tparam[opt] table opts.context the call's IWbemContext: `{ name = value, ... }` (see `wmi.connect`)
 * @treturn Object|boolean the out-parameters (`ReturnValue` ...), or true when the method has none
 * @return nil, message, hresult
 */
/* svc:exec(path, method [, params]) --> out-parameters object (true when the
 * method has none). PARAMS is a Lua table or an in-parameters wmi.Object. */
static int services_exec(lua_State *L)
{
    IWbemClassObject *in = NULL, *out = NULL;
    IWbemContext *ctx;
    IWbemServices *svc;
    struct privilege_scope ps;
    struct services *sv;
    struct identity *id;
    struct context *c;
    struct object *o;
    BSTR path, method;
    BOOL misuse;
    HRESULT hr;
    size_t len;
    int top;

    services_check_path(L, 2);
    core_check_text(L, 3, &len);
    lua_settop(L, 5);
    c = services_context(L, 5, "exec", NULL);
    o = object_new(L);
    top = lua_gettop(L);
    path = core_check_bstr(L, 2);
    if (FAILED(hr = str_to_bstr(lua_tostring(L, 3), lua_rawlen(L, 3), &method)))
    {
        SysFreeString(path);
        if (hr == E_OUTOFMEMORY) return luaL_error(L, "not enough memory");
        return luaL_argerror(L, 3, "invalid UTF-8");
    }
    /* Reading the parameters allocates: a finalizer may close the services
     * meanwhile, so the call keeps its own references (the proxy's identity too). */
    sv = services_check_free(L, path, method);
    svc = sv->svc;
    id = sv->identity;
    IWbemServices_AddRef(svc);
    identity_addref(id);
    memset(&ps, 0, sizeof(ps));
    hr = services_inparams(L, 4, svc, path, method, &in, &misuse);
    if (SUCCEEDED(hr) && SUCCEEDED(hr = context_enter(c, id, &ctx, &ps)))
    {
        hr = IWbemServices_ExecMethod(svc, path, method, 0, ctx, in, &out, NULL);
        context_leave(ctx, &ps);
    }
    IWbemServices_Release(svc);
    identity_release(id);
    if (in) IWbemClassObject_Release(in);
    SysFreeString(path);
    SysFreeString(method);
    if (misuse) return luaL_argerror(L, 4, lua_tostring(L, -1));
    if (FAILED(hr)) return privileges_fail(L, &ps, hr);
    if (!out)
    {
        lua_pushboolean(L, 1);
        return 1;
    }
    object_fill(o, out);
    lua_settop(L, top);
    return 1;
}

/*** Writes an instance (PutInstance) or a class (PutClass).
 * @function Services:put
 * @tparam Object obj an instance (`cls:spawn()`, `svc:get(path)`) or a class (`svc:define{...}`)
 * @tparam[opt] table opts
 * @tparam[opt="either"] string opts.mode `"either"` (create or update), `"create"`
 *   (WBEM_FLAG_CREATE_ONLY: an existing one fails WBEM_E_ALREADY_EXISTS) or `"update"`
 *   (WBEM_FLAG_UPDATE_ONLY: a missing one fails WBEM_E_NOT_FOUND)
 * @tparam[opt] table opts.context the call's IWbemContext: `{ name = value, ... }` (see `wmi.connect`)
 * @treturn string the written instance's path, or the class's name
 * @return nil, message, hresult
 */
static int services_put(lua_State *L)
{
    IWbemCallResult *result = NULL;
    struct privilege_scope ps;
    IWbemClassObject *obj;
    IWbemContext *ctx;
    struct services *s;
    struct context *c;
    BSTR path = NULL;
    BOOL is_class;
    LONG flags;
    HRESULT hr;

    services_check(L, 1);
    object_check(L, 2);
    c = services_context(L, 3, "put", "mode");
    flags = classdef_put_flags(L, 3, "put");
    s = services_check(L, 1);   /* again: making the context allocates */
    obj = object_check(L, 2);
    is_class = classdef_is_class(obj);
    hr = context_enter(c, s->identity, &ctx, &ps);

    if (SUCCEEDED(hr))
    {
        /* PutClass's call result carries no path (GetResultString serves PutInstance
         * only): a class's name is what put returns. */
        hr = is_class ? IWbemServices_PutClass(s->svc, obj, flags, ctx, NULL)
                      : IWbemServices_PutInstance(s->svc, obj, flags, ctx, &result);
        context_leave(ctx, &ps);
    }
    if (is_class)
    {
        if (FAILED(hr)) return privileges_fail(L, &ps, hr);
        return classdef_push_name(L, obj);
    }

    /* The call result is a proxy of its own: it needs the connection's blanket. */
    if (SUCCEEDED(hr) && result) hr = identity_blanket(s->identity, (IUnknown *)result);
    if (SUCCEEDED(hr) && result) hr = IWbemCallResult_GetResultString(result, WBEM_INFINITE, &path);
    if (result) IWbemCallResult_Release(result);
    if (FAILED(hr)) return privileges_fail(L, &ps, hr);
    str_push_wide(L, path, -1);
    SysFreeString(path);
    return 1;
}

/*** Deletes an instance (DeleteInstance) or, for a path without keys, a class
 * (DeleteClass: its subclasses and their instances go with it).
 * @function Services:delete
 * @tparam string path `"Lw_Thing.Id=1"` (an instance) or `"Lw_Thing"` (a class)
 * @tparam[opt] table opts
 * @tparam[opt] table opts.context the call's IWbemContext: `{ name = value, ... }` (see `wmi.connect`)
 * @treturn boolean true
 * @return nil, message, hresult
 */
static int services_delete(lua_State *L)
{
    struct privilege_scope ps;
    struct services *s;
    IWbemContext *ctx;
    struct context *c;
    BSTR path;
    HRESULT hr;

    services_check_path(L, 2);
    c = services_context(L, 3, "delete", NULL);
    path = core_check_bstr(L, 2);
    s = services_check_free(L, path, NULL);
    if (SUCCEEDED(hr = context_enter(c, s->identity, &ctx, &ps)))
    {
        hr = classdef_is_class_path(path) ? IWbemServices_DeleteClass(s->svc, path, 0, ctx, NULL)
                                          : IWbemServices_DeleteInstance(s->svc, path, 0, ctx, NULL);
        context_leave(ctx, &ps);
    }
    SysFreeString(path);
    if (FAILED(hr)) return privileges_fail(L, &ps, hr);
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

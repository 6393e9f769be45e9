/*
 * Test-only WMI server: an in-process IWbemLocator (registered in the test prefix
 * by scripts/register-testserver.sh) named by wmi.connect{ locator = testwmi.clsid }.
 * Its services wrap Wine's real WMI for the data and follow Microsoft's [MS-WMI]
 * for the asynchronous contract Wine lacks (testwmi_async.c), and DCOM's costs and
 * failures for a remote host. The host name of the resource selects a machine:
 *   lat<N>  N ms is one round trip: ConnectServer pays 3; every method the client
 *           calls pays 1 (each *Async start, CancelAsyncCall, each sync call, each
 *           Next batch), and so does the last Release of a services object, an
 *           enumerator or a call result; an async result arrives N ms after its
 *           start returned
 *   down    RPC_S_SERVER_UNAVAILABLE (0x800706BA) after a short delay
 *   denied  E_ACCESSDENIED (0x80070005)
 *   hang    ConnectServer blocks until testwmi.release() (then 0x800706BA)
 *   wedge   connects like lat10, then every method and every last Release blocks
 *           until testwmi.release() (then fails 0x800706BA; Release just returns)
 *   vanish  after configure{ vanish_after = n } Indicates of a call, the sink is
 *           released without SetStatus and every later call on that services
 *           object fails 0x800706BA
 *   reject  callbacks into a sink that is not a stub of the test apartment server
 *           fail: the server cancels and releases the sink, which saw nothing
 *   mixed   an async query's answer ends with one more row of another class, as a
 *           query of a superclass gives on Windows: a TestWmi_Node (Name "node",
 *           Port 135, and a Host property of its own, "from-the-class")
 *   other   this machine, no latency
 * Only the first label counts: "down.7" is another machine that is down.
 * The same DLL is the Lua module "testwmi" that configures the server and reads
 * its counts: require and COM load one file, so they share these globals.
 *
 * What the server offers a spec (the Lua module):
 *   configure{ batch, event_interval, batch_delay, late_indicate, gate, vanish_after,
 *              inline = "start"|"cancel"|false, final_hr, error_object =
 *              "extended"|"none"|"subclass", progress, run_to_completion,
 *              next_fail_after, next_hr, proxies }
 *                  (testwmi_async.c, testwmi_enum.c, testwmi_proxy.c)
 *   release([ms])  ends "hang" and "wedge" blocking (after ms, from another thread)
 *   stats()        live: calls sinks objects services enumerators call_results
 *                  in_flight held gated wedged posted_waiting; since reset: max_in_flight
 *                  connects started cancels_matched cancels_unmatched indicates indicated
 *                  statuses progress late_indicates events same_thread blankets
 *                  identity_checks identity_lost double_status round_trips vanished
 *                  default_blanket_calls wrong_thread posted_calls unmarshalled rejected
 *   reset() idle([ms]) open_gate() blankets() connects() marshal_check()
 *   background_connect(resource) background_result([ms])
 *   start_flags(method, flags)   a start's HRESULT for flags the module never sends
 *   proxy_check()  a proxy used and unmarshalled across apartments (testwmi_proxy.c)
 *   compares()     CompareTo calls on its own objects, the last one's flags (testwmi_bag.c)
 *   blankets()     kinds "services", "enumerator", "call_result", and "unknown" (a
 *                  proxy's own IUnknown, proxies = true)
 * Calls run as work items of the process's thread pool, not a thread per call.
 *
 * What it does not model of Windows: DCOM's wire (a round trip is a sleep on the
 * calling thread; the blanket is recorded, never enforced; without proxies = true
 * the objects are agile and sink calls are direct calls on the server's threads;
 * with it, only a sink of an STA is called through a queue, a test apartment
 * stub included, which is no proxy of another process); COM's pinging (a vanished
 * host's sink is released at once, not after minutes); semisynchronous streaming
 * (an enumerator holds Wine's whole answer); WMI's own providers (the data is Wine's: an unknown class in a
 * query gives no objects instead of WBEM_E_INVALID_CLASS, GetObject(class) gives
 * the class's first instance); real event providers (events are made up, with no
 * TargetInstance); MaxRequestLimit and the ObjectArray encoding of [MS-WMI] 2.2.14.
 * Its instances are self-contained, as Windows' are: a snapshot of what Wine
 * answered when the server handed them out (testwmi_object.c), never reading Wine's
 * class table again, which the next query of that class refills.
 */
#include "testwmi.h"

#include <stdio.h>
#include <stdlib.h>
#include <wchar.h>

#include "lua.h"
#include "lauxlib.h"

#define WIDEN_(s) L##s
#define WIDEN(s) WIDEN_(s)
#define DOWN_DELAY 50           /* ms before an unreachable host fails */
#define WEDGE_LATENCY 10        /* ms of a round trip to "wedge" before it stalls */
#define CONNECT_TRIPS 3         /* activation, authentication, the login */

const char *const testwmi_stat_names[STAT_COUNT] =
{
    "calls", "sinks", "objects", "services", "enumerators", "call_results", "in_flight", "held", "gated",
    "wedged", "posted_waiting", "max_in_flight", "connects", "started", "cancels_matched", "cancels_unmatched",
    "indicates", "indicated",
    "statuses", "progress", "late_indicates", "events", "same_thread", "blankets", "identity_checks",
    "identity_lost", "double_status", "round_trips", "vanished", "default_blanket_calls", "wrong_thread",
    "posted_calls", "unmarshalled", "rejected"
};

static const struct testwmi_config config_defaults =
{
    1, 100, 0, FALSE, FALSE, 0, INLINE_NONE, WBEM_S_NO_ERROR, ERROR_EXTENDED, TRUE, FALSE, -1, WBEM_E_INVALID_CLASS,
    FALSE, 0, 0, 1, MALFORMED_NONE
};

CRITICAL_SECTION testwmi_cs, testwmi_wine_cs;
HANDLE testwmi_gate, testwmi_unhang;
struct testwmi_config testwmi_config;
static HINSTANCE instance;
static LONGLONG counts[STAT_COUNT];     /* under testwmi_cs */

void testwmi_count( enum testwmi_stat s, LONG delta )
{
    EnterCriticalSection( &testwmi_cs );
    counts[s] += delta;
    LeaveCriticalSection( &testwmi_cs );
}

void testwmi_in_flight( LONG delta )
{
    EnterCriticalSection( &testwmi_cs );
    counts[STAT_IN_FLIGHT] += delta;
    if (counts[STAT_IN_FLIGHT] > counts[STAT_MAX_IN_FLIGHT]) counts[STAT_MAX_IN_FLIGHT] = counts[STAT_IN_FLIGHT];
    LeaveCriticalSection( &testwmi_cs );
}

/* --- connections ------------------------------------------------------------------- */

struct connect_record
{
    WCHAR host[64], ns[128], user[128], authority[128], locale[32];
    BOOL password;
    LONG flags;
    HRESULT hr;
};
static struct
{
    struct connect_record *items;
    size_t count, cap;
} connects;     /* under testwmi_cs */

static void connect_copy( WCHAR *dst, size_t cap, const WCHAR *src, size_t len )
{
    if (!src) src = L"";
    if (len == (size_t)-1) len = wcslen( src );
    if (len >= cap) len = cap - 1;
    memcpy( dst, src, len * sizeof(WCHAR) );
    dst[len] = 0;
}

static void connect_log( const struct connect_record *r )
{
    EnterCriticalSection( &testwmi_cs );
    if (connects.count == connects.cap)
    {
        size_t cap = connects.cap ? connects.cap * 2 : 16;
        struct connect_record *items = realloc( connects.items, cap * sizeof(*items) );
        if (items)
        {
            connects.items = items;
            connects.cap = cap;
        }
    }
    if (connects.count < connects.cap) connects.items[connects.count++] = *r;
    LeaveCriticalSection( &testwmi_cs );
}

static BOOL connect_is( const WCHAR *host, const WCHAR *kind )
{
    size_t n = wcslen( kind );
    return !_wcsnicmp( host, kind, n ) && (!host[n] || host[n] == '.');
}

/* "\\host\root\cimv2" or "//host/root/cimv2" -> host and "root\cimv2". */
static void connect_parse( const WCHAR *resource, struct connect_record *r, struct host *host )
{
    const WCHAR *p = resource ? resource : L"", *end;

    memset( host, 0, sizeof(*host) );
    if ((p[0] == '\\' || p[0] == '/') && (p[1] == '\\' || p[1] == '/'))
    {
        for (end = p + 2; *end && *end != '\\' && *end != '/'; end++);
        connect_copy( r->host, ARRAYSIZE(r->host), p + 2, end - (p + 2) );
        p = *end ? end + 1 : end;
    }
    connect_copy( r->ns, ARRAYSIZE(r->ns), p, (size_t)-1 );
    host->classes = classes_namespace( r->ns );
    host->remote = r->host[0] && wcscmp( r->host, L"." ) && _wcsicmp( r->host, L"localhost" );
    if (!_wcsnicmp( r->host, L"lat", 3 ) && r->host[3] >= '0' && r->host[3] <= '9')
    {
        host->kind = HOST_LATENCY;
        host->latency = wcstoul( r->host + 3, NULL, 10 );
    }
    /* The first label names the kind: "down.7" is one more machine that is down. */
    else if (connect_is( r->host, L"down" )) host->kind = HOST_DOWN;
    else if (connect_is( r->host, L"denied" )) host->kind = HOST_DENIED;
    else if (connect_is( r->host, L"hang" )) host->kind = HOST_HANG;
    else if (connect_is( r->host, L"wedge" ))
    {
        host->kind = HOST_WEDGE;
        host->latency = WEDGE_LATENCY;
    }
    else if (connect_is( r->host, L"vanish" )) host->kind = HOST_VANISH;
    else if (connect_is( r->host, L"reject" )) host->kind = HOST_REJECT;
    else if (connect_is( r->host, L"mixed" )) host->kind = HOST_MIXED;
    else host->kind = HOST_LOCAL;
}

void host_delay( const struct host *host, ULONG trips )
{
    testwmi_count( STAT_ROUND_TRIPS, trips );
    if (host->latency) Sleep( host->latency * trips );
}

HRESULT host_round_trip( const struct host *host )
{
    if (host->kind != HOST_WEDGE)
    {
        host_delay( host, 1 );
        return S_OK;
    }
    /* The host accepted the connection and stalls: the call waits for its answer. */
    testwmi_count( STAT_ROUND_TRIPS, 1 );
    testwmi_count( STAT_WEDGED, 1 );
    WaitForSingleObject( testwmi_unhang, INFINITE );
    testwmi_count( STAT_WEDGED, -1 );
    return RPC_UNAVAILABLE;
}

struct locator
{
    IWbemLocator IWbemLocator_iface;
    LONG refs;
};

static inline struct locator *impl_from_IWbemLocator( IWbemLocator *iface )
{
    return CONTAINING_RECORD( iface, struct locator, IWbemLocator_iface );
}

static HRESULT WINAPI locator_QueryInterface( IWbemLocator *iface, REFIID riid, void **obj )
{
    if (!obj) return E_POINTER;
    if (IsEqualGUID( riid, &IID_IUnknown ) || IsEqualGUID( riid, &IID_IWbemLocator ))
    {
        *obj = iface;
        IWbemLocator_AddRef( iface );
        return S_OK;
    }
    *obj = NULL;
    return E_NOINTERFACE;
}

static ULONG WINAPI locator_AddRef( IWbemLocator *iface )
{
    return InterlockedIncrement( &impl_from_IWbemLocator( iface )->refs );
}

static ULONG WINAPI locator_Release( IWbemLocator *iface )
{
    struct locator *locator = impl_from_IWbemLocator( iface );
    LONG refs = InterlockedDecrement( &locator->refs );
    if (!refs) free( locator );
    return refs;
}

static HRESULT connect_local( const WCHAR *ns, IWbemServices **wine )
{
    IWbemLocator *locator = NULL;
    BSTR bns = SysAllocString( ns[0] ? ns : L"root\\cimv2" );
    HRESULT hr;

    if (!bns) return E_OUTOFMEMORY;
    EnterCriticalSection( &testwmi_wine_cs );
    hr = CoCreateInstance( &CLSID_WbemLocator, NULL, CLSCTX_INPROC_SERVER, &IID_IWbemLocator, (void **)&locator );
    if (SUCCEEDED(hr)) hr = IWbemLocator_ConnectServer( locator, bns, NULL, NULL, NULL, 0, NULL, NULL, wine );
    if (locator) IWbemLocator_Release( locator );
    LeaveCriticalSection( &testwmi_wine_cs );
    SysFreeString( bns );
    return hr;
}

/* A services object of the server over root\cimv2 of this machine, as if on HOST. */
static HRESULT services_local( const struct host *host, IWbemServices **out )
{
    IWbemServices *wine = NULL;
    HRESULT hr = connect_local( L"root\\cimv2", &wine );

    *out = NULL;
    if (SUCCEEDED(hr) && FAILED(hr = services_create( wine, host, out )))
    {
        EnterCriticalSection( &testwmi_wine_cs );
        IWbemServices_Release( wine );
        LeaveCriticalSection( &testwmi_wine_cs );
    }
    return hr;
}

static HRESULT WINAPI locator_ConnectServer( IWbemLocator *iface, const BSTR resource, const BSTR user,
                                             const BSTR password, const BSTR locale, LONG flags,
                                             const BSTR authority, IWbemContext *ctx, IWbemServices **out )
{
    struct connect_record r;
    IWbemServices *wine = NULL;
    struct host host;
    BOOL proxies;
    HRESULT hr;

    (void)iface;
    context_record( L"ConnectServer", ctx );
    if (!out) return WBEM_E_INVALID_PARAMETER;
    *out = NULL;
    memset( &r, 0, sizeof(r) );
    connect_parse( resource, &r, &host );
    connect_copy( r.user, ARRAYSIZE(r.user), user, (size_t)-1 );
    connect_copy( r.authority, ARRAYSIZE(r.authority), authority, (size_t)-1 );
    connect_copy( r.locale, ARRAYSIZE(r.locale), locale, (size_t)-1 );
    r.password = password && *password;     /* whether one was given: never the password */
    r.flags = flags;
    EnterCriticalSection( &testwmi_cs );
    proxies = testwmi_config.proxies;
    LeaveCriticalSection( &testwmi_cs );
    testwmi_count( STAT_CONNECTS, 1 );
    testwmi_in_flight( 1 );
    switch (host.kind)
    {
    case HOST_DOWN:
        Sleep( DOWN_DELAY );
        hr = RPC_UNAVAILABLE;
        break;
    case HOST_DENIED:
        hr = E_ACCESSDENIED;
        break;
    case HOST_HANG:
        WaitForSingleObject( testwmi_unhang, INFINITE );
        hr = RPC_UNAVAILABLE;
        break;
    default:
        host_delay( &host, CONNECT_TRIPS );
        /* The class store's namespace keeps Wine's root\cimv2 for everything else. */
        hr = connect_local( host.classes ? L"root\\cimv2" : r.ns, &wine );
        if (SUCCEEDED(hr)) hr = services_create( wine, &host, out );
        else wine = NULL;
        if (SUCCEEDED(hr) && proxies)
        {
            IWbemServices *svc = *out;
            hr = proxy_services( svc, host.remote, out );
            IWbemServices_Release( svc );
            wine = NULL;    /* the services took it */
        }
        if (FAILED(hr) && wine)
        {
            EnterCriticalSection( &testwmi_wine_cs );
            IWbemServices_Release( wine );
            LeaveCriticalSection( &testwmi_wine_cs );
        }
        break;
    }
    r.hr = hr;
    connect_log( &r );
    testwmi_in_flight( -1 );
    return hr;
}

static const IWbemLocatorVtbl locator_vtbl =
{
    locator_QueryInterface,
    locator_AddRef,
    locator_Release,
    locator_ConnectServer
};

/* --- the class factory ------------------------------------------------------------- */

struct factory
{
    IClassFactory IClassFactory_iface;
    LONG refs;
};

static inline struct factory *impl_from_IClassFactory( IClassFactory *iface )
{
    return CONTAINING_RECORD( iface, struct factory, IClassFactory_iface );
}

static HRESULT WINAPI factory_QueryInterface( IClassFactory *iface, REFIID riid, void **obj )
{
    if (IsEqualGUID( riid, &IID_IUnknown ) || IsEqualGUID( riid, &IID_IClassFactory ))
    {
        *obj = iface;
        IClassFactory_AddRef( iface );
        return S_OK;
    }
    *obj = NULL;
    return E_NOINTERFACE;
}

static ULONG WINAPI factory_AddRef( IClassFactory *iface )
{
    return InterlockedIncrement( &impl_from_IClassFactory( iface )->refs );
}

static ULONG WINAPI factory_Release( IClassFactory *iface )
{
    struct factory *factory = impl_from_IClassFactory( iface );
    LONG refs = InterlockedDecrement( &factory->refs );
    if (!refs) free( factory );
    return refs;
}

static HRESULT WINAPI factory_CreateInstance( IClassFactory *iface, IUnknown *outer, REFIID riid, void **obj )
{
    struct locator *locator;
    HRESULT hr;

    (void)iface;
    *obj = NULL;
    if (outer) return CLASS_E_NOAGGREGATION;
    /* CoUnmarshalInterface of a proxy (testwmi_proxy.c) names this class. */
    if (IsEqualGUID( riid, &IID_IMarshal )) return proxy_unmarshaler( riid, obj );
    if (!(locator = calloc( 1, sizeof(*locator) ))) return E_OUTOFMEMORY;
    locator->IWbemLocator_iface.lpVtbl = &locator_vtbl;
    locator->refs = 1;
    hr = IWbemLocator_QueryInterface( &locator->IWbemLocator_iface, riid, obj );
    IWbemLocator_Release( &locator->IWbemLocator_iface );
    return hr;
}

static HRESULT WINAPI factory_LockServer( IClassFactory *iface, BOOL lock )
{
    (void)iface; (void)lock;
    return S_OK;
}

static const IClassFactoryVtbl factory_vtbl =
{
    factory_QueryInterface,
    factory_AddRef,
    factory_Release,
    factory_CreateInstance,
    factory_LockServer
};

__declspec(dllexport) HRESULT WINAPI DllGetClassObject( REFCLSID rclsid, REFIID riid, void **obj )
{
    struct factory *factory;
    CLSID clsid;
    HRESULT hr;

    *obj = NULL;
    if (FAILED(hr = CLSIDFromString( WIDEN(TESTWMI_CLSID), &clsid ))) return hr;
    if (!IsEqualGUID( rclsid, &clsid )) return CLASS_E_CLASSNOTAVAILABLE;
    if (!(factory = calloc( 1, sizeof(*factory) ))) return E_OUTOFMEMORY;
    factory->IClassFactory_iface.lpVtbl = &factory_vtbl;
    factory->refs = 1;
    hr = IClassFactory_QueryInterface( &factory->IClassFactory_iface, riid, obj );
    IClassFactory_Release( &factory->IClassFactory_iface );
    return hr;
}

/* Never unload: the Lua module lives in the same image, and server threads may run. */
__declspec(dllexport) HRESULT WINAPI DllCanUnloadNow( void )
{
    return S_FALSE;
}

BOOL WINAPI DllMain( HINSTANCE hinst, DWORD reason, void *reserved )
{
    (void)reserved;
    if (reason == DLL_PROCESS_ATTACH)
    {
        HMODULE self;
        instance = hinst;
        DisableThreadLibraryCalls( hinst );
        InitializeCriticalSection( &testwmi_cs );
        InitializeCriticalSection( &testwmi_wine_cs );
        testwmi_gate = CreateEventW( NULL, TRUE, TRUE, NULL );
        testwmi_unhang = CreateEventW( NULL, TRUE, FALSE, NULL );
        testwmi_config = config_defaults;
        /* Threads of the server may outlive lua_close's FreeLibrary: stay loaded. */
        GetModuleHandleExW( GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_PIN,
                            (const WCHAR *)&locator_vtbl, &self );
        return testwmi_gate && testwmi_unhang;
    }
    return TRUE;
}

/* --- the Lua module ---------------------------------------------------------------- */

static lua_Integer opt_integer( lua_State *L, const char *key, lua_Integer def, lua_Integer min, lua_Integer max )
{
    lua_Integer v;
    if (lua_getfield( L, 1, key ) == LUA_TNIL)
    {
        lua_pop( L, 1 );
        return def;
    }
    v = luaL_checkinteger( L, -1 );
    lua_pop( L, 1 );
    if (v < min || v > max) luaL_error( L, "bad option '%s' (out of range)", key );
    return v;
}

/* One of NAMES (false/nil for the first), as its index. */
static int opt_choice( lua_State *L, const char *key, int def, const char *const names[] )
{
    int i, t = lua_getfield( L, 1, key );

    if (t == LUA_TNIL) i = def;
    else if (t == LUA_TBOOLEAN && !lua_toboolean( L, -1 )) i = 0;
    else
    {
        const char *name = luaL_checkstring( L, -1 );
        for (i = 0; names[i] && strcmp( names[i], name ); i++);
        if (!names[i]) luaL_error( L, "bad option '%s' (invalid value '%s')", key, name );
    }
    lua_pop( L, 1 );
    return i;
}

static BOOL opt_boolean( lua_State *L, const char *key, BOOL def )
{
    BOOL v = def;
    if (lua_getfield( L, 1, key ) != LUA_TNIL) v = lua_toboolean( L, -1 );
    lua_pop( L, 1 );
    return v;
}

/* testwmi.configure{ batch = n, event_interval = ms, batch_delay = ms, late_indicate = bool,
 * gate = bool, vanish_after = n, inline = "start" | "cancel" | false, final_hr = hr,
 * error_object = "extended" | "none" | "subclass", progress = bool, run_to_completion = bool,
 * next_fail_after = n (-1: never), next_hr = hr, progress_flood = n, progress_text = bytes,
 * final_statuses = n, malformed = "vartype" | "bounds" | "date" | false }: only the options
 * given change; calls read them when they start (malformed: objects, when read). */
static int testwmi_configure( lua_State *L )
{
    static const char *const inline_names[] = { "none", "start", "cancel", NULL };
    static const char *const error_names[] = { "extended", "none", "subclass", NULL };
    struct testwmi_config c;
    BOOL gate;

    luaL_checktype( L, 1, LUA_TTABLE );
    EnterCriticalSection( &testwmi_cs );
    c = testwmi_config;
    LeaveCriticalSection( &testwmi_cs );
    c.batch = (LONG)opt_integer( L, "batch", c.batch, 1, 100000 );
    c.event_interval = (LONG)opt_integer( L, "event_interval", c.event_interval, 1, 600000 );
    c.batch_delay = (LONG)opt_integer( L, "batch_delay", c.batch_delay, 0, 600000 );
    c.late_indicate = opt_boolean( L, "late_indicate", c.late_indicate );
    c.vanish_after = (LONG)opt_integer( L, "vanish_after", c.vanish_after, 0, 100000 );
    c.inline_at = opt_choice( L, "inline", c.inline_at, inline_names );
    c.final_hr = (HRESULT)(DWORD)opt_integer( L, "final_hr", (DWORD)c.final_hr, 0, 0xffffffff );
    c.error_object = opt_choice( L, "error_object", c.error_object, error_names );
    c.progress = opt_boolean( L, "progress", c.progress );
    c.run_to_completion = opt_boolean( L, "run_to_completion", c.run_to_completion );
    c.next_fail_after = (LONG)opt_integer( L, "next_fail_after", c.next_fail_after, -1, 0x7fffffff );
    c.next_hr = (HRESULT)(DWORD)opt_integer( L, "next_hr", (DWORD)c.next_hr, 0, 0xffffffff );
    c.proxies = opt_boolean( L, "proxies", c.proxies );
    c.progress_flood = (LONG)opt_integer( L, "progress_flood", c.progress_flood, 0, 10000000 );
    c.progress_text = (LONG)opt_integer( L, "progress_text", c.progress_text, 0, 1 << 24 );
    c.final_statuses = (LONG)opt_integer( L, "final_statuses", c.final_statuses, 1, 10000000 );
    if (lua_getfield( L, 1, "malformed" ) != LUA_TNIL)
    {
        static const char *const kinds[] = { "none", "vartype", "bounds", "date", NULL };
        c.malformed = lua_toboolean( L, -1 ) ? luaL_checkoption( L, -1, NULL, kinds ) : MALFORMED_NONE;
    }
    lua_pop( L, 1 );
    gate = opt_boolean( L, "gate", c.gate );
    if (gate && !c.gate) ResetEvent( testwmi_gate );
    if (!gate) SetEvent( testwmi_gate );
    c.gate = gate;
    EnterCriticalSection( &testwmi_cs );
    testwmi_config = c;
    LeaveCriticalSection( &testwmi_cs );
    return 0;
}

/* testwmi.open_gate(): calls held by configure{ gate = true } deliver now. */
static int testwmi_open_gate( lua_State *L )
{
    (void)L;
    SetEvent( testwmi_gate );
    return 0;
}

static DWORD WINAPI release_later( void *arg )
{
    Sleep( (DWORD)(ULONG_PTR)arg );
    SetEvent( testwmi_unhang );
    return 0;
}

/* testwmi.release([ms]): every connection to "hang" and every call blocked on "wedge"
 * returns 0x800706BA (and later ones at once, until reset); after MS milliseconds
 * when given, from another thread, so that the Lua thread may block meanwhile. */
static int testwmi_release( lua_State *L )
{
    lua_Integer ms = luaL_optinteger( L, 1, 0 );

    luaL_argcheck( L, ms >= 0 && ms <= 600000, 1, "out of range" );
    if (!ms) SetEvent( testwmi_unhang );
    else if (!QueueUserWorkItem( release_later, (void *)(ULONG_PTR)ms, WT_EXECUTELONGFUNCTION ))
        return luaL_error( L, "cannot queue the release" );
    return 0;
}

static int testwmi_stats( lua_State *L )
{
    LONGLONG copy[STAT_COUNT];
    int i;

    EnterCriticalSection( &testwmi_cs );
    memcpy( copy, counts, sizeof(copy) );
    LeaveCriticalSection( &testwmi_cs );
    lua_createtable( L, 0, STAT_COUNT );
    for (i = 0; i < STAT_COUNT; i++)
    {
        lua_pushinteger( L, copy[i] );
        lua_setfield( L, -2, testwmi_stat_names[i] );
    }
    return 1;
}

/* testwmi.reset(): counters to zero (live counts stay), default configuration, logs
 * and written instances cleared, "hang" hangs again. */
static int testwmi_reset( lua_State *L )
{
    int i;

    (void)L;
    overlay_clear();
    security_reset_log();
    context_reset();
    queries_reset();
    EnterCriticalSection( &testwmi_cs );
    for (i = STAT_LIVE_END; i < STAT_COUNT; i++) counts[i] = 0;
    counts[STAT_MAX_IN_FLIGHT] = counts[STAT_IN_FLIGHT];
    testwmi_config = config_defaults;
    connects.count = 0;
    LeaveCriticalSection( &testwmi_cs );
    SetEvent( testwmi_gate );
    ResetEvent( testwmi_unhang );
    return 0;
}

/* testwmi.idle([ms]) --> true once no call runs and no sink is held (false after ms,
 * default 5000): the server's threads end a little after the client saw the status. */
static int testwmi_idle( lua_State *L )
{
    DWORD ms = (DWORD)luaL_optinteger( L, 1, 5000 ), start = GetTickCount();
    BOOL idle;

    for (;;)
    {
        EnterCriticalSection( &testwmi_cs );
        idle = !counts[STAT_CALLS] && !counts[STAT_SINKS];
        LeaveCriticalSection( &testwmi_cs );
        if (idle || GetTickCount() - start >= ms) break;
        Sleep( 5 );
    }
    lua_pushboolean( L, idle );
    return 1;
}

static void set_wide( lua_State *L, const char *key, const WCHAR *s )
{
    char buf[512];
    if (!s[0] || !WideCharToMultiByte( CP_UTF8, 0, s, -1, buf, sizeof(buf), NULL, NULL )) return;
    lua_pushstring( L, buf );
    lua_setfield( L, -2, key );
}

/* testwmi.connects() --> { { host =, namespace =, user =, authority =, locale =, password = bool,
 *   flags =, hresult = }, ... } in order (strings absent when not given) */
static int testwmi_connects( lua_State *L )
{
    struct connect_record *copy;
    size_t i, n;

    EnterCriticalSection( &testwmi_cs );
    n = connects.count;
    if ((copy = malloc( (n + 1) * sizeof(*copy) ))) memcpy( copy, connects.items, n * sizeof(*copy) );
    LeaveCriticalSection( &testwmi_cs );
    if (!copy) return luaL_error( L, "out of memory" );
    lua_createtable( L, (int)n, 0 );
    for (i = 0; i < n; i++)
    {
        lua_createtable( L, 0, 8 );
        set_wide( L, "host", copy[i].host );
        set_wide( L, "namespace", copy[i].ns );
        set_wide( L, "user", copy[i].user );
        set_wide( L, "authority", copy[i].authority );
        set_wide( L, "locale", copy[i].locale );
        lua_pushboolean( L, copy[i].password );
        lua_setfield( L, -2, "password" );
        lua_pushinteger( L, copy[i].flags );
        lua_setfield( L, -2, "flags" );
        lua_pushinteger( L, (lua_Integer)(DWORD)copy[i].hr );
        lua_setfield( L, -2, "hresult" );
        lua_rawseti( L, -2, (lua_Integer)i + 1 );
    }
    free( copy );
    return 1;
}

/* One connection made on a thread of its own (testwmi.background_connect), so a
 * spec can watch a "hang" host block and testwmi.release() end it. */
static struct
{
    HANDLE thread;
    WCHAR resource[128];
    HRESULT hr;
} background;

static DWORD WINAPI background_thread( void *arg )
{
    IWbemLocator *locator = NULL;
    IWbemServices *svc = NULL;
    BSTR resource = SysAllocString( background.resource );
    CLSID clsid;
    HRESULT hr;

    (void)arg;
    CoInitializeEx( NULL, COINIT_MULTITHREADED );
    hr = resource ? CLSIDFromString( WIDEN(TESTWMI_CLSID), &clsid ) : E_OUTOFMEMORY;
    if (SUCCEEDED(hr))
        hr = CoCreateInstance( &clsid, NULL, CLSCTX_INPROC_SERVER, &IID_IWbemLocator, (void **)&locator );
    if (SUCCEEDED(hr)) hr = IWbemLocator_ConnectServer( locator, resource, NULL, NULL, NULL, 0, NULL, NULL, &svc );
    if (svc) IWbemServices_Release( svc );
    if (locator) IWbemLocator_Release( locator );
    SysFreeString( resource );
    background.hr = hr;
    CoUninitialize();
    return 0;
}

/* testwmi.background_connect(resource): ConnectServer through the test locator on a new thread. */
static int testwmi_background_connect( lua_State *L )
{
    const char *resource = luaL_checkstring( L, 1 );

    if (background.thread) return luaL_error( L, "a background connection is under way" );
    if (!MultiByteToWideChar( CP_UTF8, 0, resource, -1, background.resource, ARRAYSIZE(background.resource) ))
        return luaL_argerror( L, 1, "too long" );
    if (!(background.thread = CreateThread( NULL, 0, background_thread, NULL, 0, NULL )))
        return luaL_error( L, "cannot create a thread" );
    return 0;
}

/* testwmi.background_result([ms]) --> its HRESULT once it returned, or nil after ms (default 0). */
static int testwmi_background_result( lua_State *L )
{
    DWORD ms = (DWORD)luaL_optinteger( L, 1, 0 );

    if (!background.thread) return luaL_error( L, "no background connection" );
    if (WaitForSingleObject( background.thread, ms ) != WAIT_OBJECT_0)
    {
        lua_pushnil( L );
        return 1;
    }
    CloseHandle( background.thread );
    background.thread = NULL;
    lua_pushinteger( L, (lua_Integer)(DWORD)background.hr );
    return 1;
}

/* Unmarshals the stream ARG in a new STA and reports whether the pointer is the
 * object itself (what the free-threaded marshaler gives). */
struct marshal_probe
{
    IStream *stream;
    IUnknown *original;
    HRESULT hr;
    BOOL same;
};

static DWORD WINAPI marshal_thread( void *arg )
{
    struct marshal_probe *p = arg;
    IUnknown *unk = NULL;

    CoInitializeEx( NULL, COINIT_APARTMENTTHREADED );
    p->hr = CoGetInterfaceAndReleaseStream( p->stream, &IID_IUnknown, (void **)&unk );
    if (SUCCEEDED(p->hr))
    {
        p->same = unk == p->original;
        IUnknown_Release( unk );
    }
    CoUninitialize();
    return 0;
}

static HRESULT marshal_probe( IUnknown *obj, REFIID iid, BOOL *same )
{
    struct marshal_probe p = { NULL, NULL, S_OK, FALSE };
    HANDLE thread;
    HRESULT hr;

    *same = FALSE;
    if (FAILED(hr = IUnknown_QueryInterface( obj, &IID_IUnknown, (void **)&p.original ))) return hr;
    hr = CoMarshalInterThreadInterfaceInStream( iid, obj, &p.stream );
    if (SUCCEEDED(hr))
    {
        if (!(thread = CreateThread( NULL, 0, marshal_thread, &p, 0, NULL ))) hr = E_OUTOFMEMORY;
        else
        {
            WaitForSingleObject( thread, INFINITE );
            CloseHandle( thread );
            hr = p.hr;
            *same = p.same;
        }
    }
    IUnknown_Release( p.original );
    return hr;
}

/* testwmi.marshal_check() --> { services = bool, enumerator = bool, call_result = bool }:
 * each kind of object, marshalled from this thread and unmarshalled in a new STA,
 * arrives as the object itself (it aggregates the free-threaded marshaler). */
static int testwmi_marshal_check( lua_State *L )
{
    static const struct host local = { HOST_LOCAL, 0, FALSE, FALSE };
    IWbemServices *svc = NULL;
    IEnumWbemClassObject *e = NULL;
    IWbemCallResult *result = NULL;
    struct objects none = { NULL, 0, 0 };
    BOOL same[3] = { FALSE, FALSE, FALSE };
    HRESULT hr;

    hr = services_local( &local, &svc );
    if (SUCCEEDED(hr)) hr = marshal_probe( (IUnknown *)svc, &IID_IWbemServices, &same[0] );
    if (SUCCEEDED(hr)) hr = enum_create( &local, &none, &e );
    if (SUCCEEDED(hr)) hr = marshal_probe( (IUnknown *)e, &IID_IEnumWbemClassObject, &same[1] );
    if (SUCCEEDED(hr)) hr = call_result_create( &local, S_OK, NULL, NULL, &result );
    if (SUCCEEDED(hr)) hr = marshal_probe( (IUnknown *)result, &IID_IWbemCallResult, &same[2] );
    if (result) IWbemCallResult_Release( result );
    if (e) IEnumWbemClassObject_Release( e );
    if (svc) IWbemServices_Release( svc );
    if (FAILED(hr)) return luaL_error( L, "marshal_check: 0x%08x", (unsigned int)hr );
    lua_createtable( L, 0, 3 );
    lua_pushboolean( L, same[0] );
    lua_setfield( L, -2, "services" );
    lua_pushboolean( L, same[1] );
    lua_setfield( L, -2, "enumerator" );
    lua_pushboolean( L, same[2] );
    lua_setfield( L, -2, "call_result" );
    return 1;
}

/* A sink that takes everything and keeps nothing: a static object. */
static HRESULT WINAPI null_sink_QueryInterface( IWbemObjectSink *iface, REFIID riid, void **obj )
{
    if (IsEqualGUID( riid, &IID_IUnknown ) || IsEqualGUID( riid, &IID_IWbemObjectSink ))
    {
        *obj = iface;
        return S_OK;
    }
    *obj = NULL;
    return E_NOINTERFACE;
}

static ULONG WINAPI null_sink_AddRef( IWbemObjectSink *iface ) { (void)iface; return 2; }
static ULONG WINAPI null_sink_Release( IWbemObjectSink *iface ) { (void)iface; return 1; }

static HRESULT WINAPI null_sink_Indicate( IWbemObjectSink *iface, LONG n, IWbemClassObject **objs )
{
    (void)iface; (void)n; (void)objs;
    return S_OK;
}

static HRESULT WINAPI null_sink_SetStatus( IWbemObjectSink *iface, LONG flags, HRESULT hr, BSTR param,
                                           IWbemClassObject *obj )
{
    (void)iface; (void)flags; (void)hr; (void)param; (void)obj;
    return S_OK;
}

static const IWbemObjectSinkVtbl null_sink_vtbl =
{
    null_sink_QueryInterface, null_sink_AddRef, null_sink_Release, null_sink_Indicate, null_sink_SetStatus
};
static IWbemObjectSink null_sink = { &null_sink_vtbl };

/* testwmi.start_flags(method, flags) --> the HRESULT of starting METHOD ("query",
 * "instances", "classes", "get", "exec", "delete", "events") on a local services
 * object with FLAGS: what the module cannot pass (it sends only flags it means). */
static int testwmi_start_flags( lua_State *L )
{
    static const char *const methods[] = { "query", "instances", "classes", "get", "exec", "delete", "events", NULL };
    static const struct host local = { HOST_LOCAL, 0, FALSE, FALSE };
    int method = luaL_checkoption( L, 1, NULL, methods );
    LONG flags = (LONG)luaL_checkinteger( L, 2 );
    IWbemServices *svc = NULL;
    BSTR wql = SysAllocString( L"WQL" ), a = SysAllocString( L"Win32_BIOS" ), query;
    HRESULT hr;

    query = SysAllocString( method == 6 ? L"SELECT * FROM __InstanceCreationEvent WITHIN 1"
                                        : L"SELECT * FROM Win32_BIOS" );
    hr = wql && a && query ? services_local( &local, &svc ) : E_OUTOFMEMORY;
    if (SUCCEEDED(hr))
    {
        switch (method)
        {
        case 0: hr = IWbemServices_ExecQueryAsync( svc, wql, query, flags, NULL, &null_sink ); break;
        case 1: hr = IWbemServices_CreateInstanceEnumAsync( svc, a, flags, NULL, &null_sink ); break;
        case 2: hr = IWbemServices_CreateClassEnumAsync( svc, NULL, flags, NULL, &null_sink ); break;
        case 3: hr = IWbemServices_GetObjectAsync( svc, a, flags, NULL, &null_sink ); break;
        case 4: hr = IWbemServices_ExecMethodAsync( svc, a, a, flags, NULL, NULL, &null_sink ); break;
        case 5: hr = IWbemServices_DeleteInstanceAsync( svc, a, flags, NULL, &null_sink ); break;
        default: hr = IWbemServices_ExecNotificationQueryAsync( svc, wql, query, flags, NULL, &null_sink ); break;
        }
        /* An event call never ends on its own. */
        if (method == 6 && SUCCEEDED(hr)) IWbemServices_CancelAsyncCall( svc, &null_sink );
        IWbemServices_Release( svc );
    }
    SysFreeString( wql );
    SysFreeString( a );
    SysFreeString( query );
    lua_pushinteger( L, (lua_Integer)(DWORD)hr );
    return 1;
}

/* A proxy of this (MTA) thread, used from a new STA: directly, then unmarshalled. */
struct proxy_probe
{
    IWbemServices *svc;
    IStream *stream;
    HRESULT wrong_thread, call, unmarshal;
    BOOL same;
    DWORD level;
};

static DWORD WINAPI proxy_probe_thread( void *arg )
{
    struct proxy_probe *p = arg;
    IWbemServices *svc = NULL;

    CoInitializeEx( NULL, COINIT_APARTMENTTHREADED );
    p->wrong_thread = IWbemServices_CancelAsyncCall( p->svc, &null_sink );
    p->unmarshal = CoGetInterfaceAndReleaseStream( p->stream, &IID_IWbemServices, (void **)&svc );
    if (SUCCEEDED(p->unmarshal))
    {
        p->same = svc == p->svc;
        CoQueryProxyBlanket( (IUnknown *)svc, NULL, NULL, NULL, &p->level, NULL, NULL, NULL );
        p->call = IWbemServices_CancelAsyncCall( svc, &null_sink );
        IWbemServices_Release( svc );
    }
    CoUninitialize();
    return 0;
}

/* testwmi.proxy_check() --> { same_apartment = bool, wrong_thread = hr, unmarshal = hr, same = bool,
 *   authn_level = n, call = hr }: a proxy of a remote host (configure{ proxies = true }
 * or not) made on this thread with a PKT_PRIVACY blanket (its IUnknown PKT_INTEGRITY:
 * testwmi.blankets() records kind "unknown"), unmarshalled here
 * (same_apartment: the same proxy?), called directly from a new STA (wrong_thread),
 * unmarshalled there (same: the same pointer? authn_level: its blanket's) and called
 * through (call: what the server answered). */
static int testwmi_proxy_check( lua_State *L )
{
    static const struct host remote = { HOST_LATENCY, 0, TRUE, FALSE };
    struct proxy_probe p = { NULL, NULL, E_FAIL, E_FAIL, E_FAIL, FALSE, 0 };
    IWbemServices *svc = NULL, *again = NULL;
    IStream *stream = NULL;
    IUnknown *unk;
    BOOL same_apartment = FALSE;
    HANDLE thread;
    HRESULT hr;

    hr = services_local( &remote, &svc );
    if (SUCCEEDED(hr)) hr = proxy_services( svc, TRUE, &p.svc );
    if (svc) IWbemServices_Release( svc );
    if (SUCCEEDED(hr))
        hr = CoSetProxyBlanket( (IUnknown *)p.svc, RPC_C_AUTHN_WINNT, RPC_C_AUTHZ_NONE, NULL,
                                RPC_C_AUTHN_LEVEL_PKT_PRIVACY, RPC_C_IMP_LEVEL_IMPERSONATE, NULL, EOAC_NONE );
    if (SUCCEEDED(hr) && SUCCEEDED(hr = IWbemServices_QueryInterface( p.svc, &IID_IUnknown, (void **)&unk )))
    {
        /* COM's rule: IUnknown has a blanket of its own (here PKT_INTEGRITY, to tell it apart). */
        hr = CoSetProxyBlanket( unk, RPC_C_AUTHN_WINNT, RPC_C_AUTHZ_NONE, NULL, RPC_C_AUTHN_LEVEL_PKT_INTEGRITY,
                                RPC_C_IMP_LEVEL_IMPERSONATE, NULL, EOAC_NONE );
        IUnknown_Release( unk );
    }
    if (SUCCEEDED(hr)) hr = CoMarshalInterThreadInterfaceInStream( &IID_IWbemServices, (IUnknown *)p.svc, &stream );
    if (SUCCEEDED(hr)) hr = CoGetInterfaceAndReleaseStream( stream, &IID_IWbemServices, (void **)&again );
    if (SUCCEEDED(hr))
    {
        same_apartment = again == p.svc;
        IWbemServices_Release( again );
        hr = CoMarshalInterThreadInterfaceInStream( &IID_IWbemServices, (IUnknown *)p.svc, &p.stream );
    }
    if (SUCCEEDED(hr))
    {
        if (!(thread = CreateThread( NULL, 0, proxy_probe_thread, &p, 0, NULL ))) hr = E_OUTOFMEMORY;
        else
        {
            WaitForSingleObject( thread, INFINITE );
            CloseHandle( thread );
        }
    }
    if (p.svc) IWbemServices_Release( p.svc );
    if (FAILED(hr)) return luaL_error( L, "proxy_check: 0x%08x", (unsigned int)hr );
    lua_createtable( L, 0, 6 );
    lua_pushboolean( L, same_apartment );
    lua_setfield( L, -2, "same_apartment" );
    lua_pushinteger( L, (lua_Integer)(DWORD)p.wrong_thread );
    lua_setfield( L, -2, "wrong_thread" );
    lua_pushinteger( L, (lua_Integer)(DWORD)p.unmarshal );
    lua_setfield( L, -2, "unmarshal" );
    lua_pushboolean( L, p.same );
    lua_setfield( L, -2, "same" );
    lua_pushinteger( L, p.level );
    lua_setfield( L, -2, "authn_level" );
    lua_pushinteger( L, (lua_Integer)(DWORD)p.call );
    lua_setfield( L, -2, "call" );
    return 1;
}

__declspec(dllexport) int luaopen_testwmi( lua_State *L )
{
    static const luaL_Reg funcs[] =
    {
        { "configure", testwmi_configure },
        { "open_gate", testwmi_open_gate },
        { "release", testwmi_release },
        { "stats", testwmi_stats },
        { "reset", testwmi_reset },
        { "idle", testwmi_idle },
        { "blankets", security_push_log },
        { "compares", bag_compares },
        { "class_log", classes_push_log },
        { "connects", testwmi_connects },
        { "marshal_check", testwmi_marshal_check },
        { "background_connect", testwmi_background_connect },
        { "background_result", testwmi_background_result },
        { "start_flags", testwmi_start_flags },
        { "proxy_check", testwmi_proxy_check },
        { "contexts", context_push_log },
        { "context_names", context_set_names },
        { "process_privileges", context_push_process_privileges },
        { "thread_token", context_thread_token },
        { "queries", queries_push },
        { NULL, NULL }
    };
    char path[MAX_PATH];

    luaL_newlib( L, funcs );
    lua_pushstring( L, TESTWMI_CLSID );
    lua_setfield( L, -2, "clsid" );
    /* Where this image was loaded from: must be the path registered for COM. */
    if (!GetModuleFileNameA( instance, path, sizeof(path) )) path[0] = 0;
    lua_pushstring( L, path );
    lua_setfield( L, -2, "path" );
    return 1;
}

/*
 * Test-only stand-in for Unsecapp.exe. Wine has neither Unsecapp nor proxy/stubs for
 * the WMI interfaces, so this DLL is registered as an in-process COM server
 * (scripts/register-testapt.sh), named by wmi.apartment{ mode = "unsecapp", clsid =
 * ..., context = "inproc" }; it follows the documented contract of
 * IUnsecuredApartment and IWbemUnsecuredApartment and records what it is asked.
 * The same DLL is the Lua module "testapt" that configures it and reads the record:
 * require and COM load one file, so they share the globals; COM threads call the
 * stubs, hence the critical section.
 */

#define COBJMACROS
#define CONST_VTABLE
#define _WIN32_WINNT 0x0603     /* for IID_IAgileObject */

#include <windows.h>
#include <objbase.h>
#include <wbemcli.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua.h"
#include "lauxlib.h"

/* The one source of truth: scripts/register-testapt.sh reads the CLSID from this line. */
#define TESTAPT_CLSID "{E78E4FF7-CAB3-4F32-A61D-4C8DD78AE6F3}"
#define WIDEN_(s) L##s
#define WIDEN(s) WIDEN_(s)

enum op { OP_CREATE_INSTANCE, OP_QUERY_INTERFACE, OP_CREATE_OBJECT_STUB, OP_CREATE_SINK_STUB,
          OP_INDICATE, OP_SET_STATUS, OP_STUB_RELEASED };
static const char *const op_names[] = { "CreateInstance", "QueryInterface", "CreateObjectStub",
                                        "CreateSinkStub", "Indicate", "SetStatus", "StubReleased" };
enum target { TARGET_NONE, TARGET_APARTMENT, TARGET_STUB };

/* Plain C data only: records are made on COM threads, tables only on the Lua thread. */
struct record
{
    enum op op;
    enum target target;
    IID iid;
    LONG flags, count;
    BOOL reserved_null;
    HRESULT hr;
};

/* The first three are live counts, which reset leaves alone. */
enum count { COUNT_APARTMENTS, COUNT_STUBS, COUNT_SINKS_HELD, COUNT_INDICATED, COUNT_STATUSES, COUNT_NONE };
static const char *const count_names[] = { "apartments", "stubs", "sinks_held", "indicated", "statuses" };

static CRITICAL_SECTION cs;
static HINSTANCE instance;
static struct
{
    BOOL wbem;                  /* offer IWbemUnsecuredApartment */
    HRESULT fail_create;        /* S_OK, or what Create*Stub returns */
    struct record *log;
    size_t log_len, log_cap;
    LONGLONG counts[COUNT_NONE];
} state = { .wbem = TRUE };

/* Appends r (if any) and moves a counter under the lock the Lua side reads with.
 * A record that finds no memory is dropped: this is only a test log. */
static void note( const struct record *r, enum count c, LONGLONG delta )
{
    EnterCriticalSection( &cs );
    if (c != COUNT_NONE) state.counts[c] += delta;
    if (r && state.log_len == state.log_cap)
    {
        size_t cap = state.log_cap ? state.log_cap * 2 : 64;
        struct record *log = realloc( state.log, cap * sizeof(*log) );
        if (log)
        {
            state.log = log;
            state.log_cap = cap;
        }
    }
    if (r && state.log_len < state.log_cap) state.log[state.log_len++] = *r;
    LeaveCriticalSection( &cs );
}

/* The stub: what Unsecapp.exe hands out, forwarding IWbemObjectSink to the client's sink. */
struct stub
{
    IWbemObjectSink IWbemObjectSink_iface;
    LONG refs;
    IWbemObjectSink *sink;
};

static inline struct stub *impl_from_IWbemObjectSink( IWbemObjectSink *iface )
{
    return CONTAINING_RECORD( iface, struct stub, IWbemObjectSink_iface );
}

static HRESULT WINAPI stub_QueryInterface( IWbemObjectSink *iface, REFIID riid, void **obj )
{
    struct record r = { .op = OP_QUERY_INTERFACE, .target = TARGET_STUB, .iid = *riid, .hr = S_OK };

    if (IsEqualGUID( riid, &IID_IUnknown ) || IsEqualGUID( riid, &IID_IWbemObjectSink ))
    {
        *obj = iface;
        IWbemObjectSink_AddRef( iface );
    }
    else
    {
        *obj = NULL;
        r.hr = E_NOINTERFACE;
    }
    /* Whoever asks is recorded: WMI's own QI shows that it was handed the stub. */
    note( &r, COUNT_NONE, 0 );
    return r.hr;
}

static ULONG WINAPI stub_AddRef( IWbemObjectSink *iface )
{
    struct stub *stub = impl_from_IWbemObjectSink( iface );
    return InterlockedIncrement( &stub->refs );
}

static ULONG WINAPI stub_Release( IWbemObjectSink *iface )
{
    struct stub *stub = impl_from_IWbemObjectSink( iface );
    LONG refs = InterlockedDecrement( &stub->refs );

    if (!refs)
    {
        struct record r = { .op = OP_STUB_RELEASED };

        /* The sink goes first, so a spec seeing StubReleased knows the sink was let go. */
        IWbemObjectSink_Release( stub->sink );
        note( NULL, COUNT_SINKS_HELD, -1 );
        note( &r, COUNT_STUBS, -1 );
        free( stub );
    }
    return refs;
}

static HRESULT WINAPI stub_Indicate( IWbemObjectSink *iface, LONG count, IWbemClassObject **objs )
{
    struct stub *stub = impl_from_IWbemObjectSink( iface );
    struct record r = { .op = OP_INDICATE, .count = count };

    /* Counted before forwarding: once the Lua thread sees the object, the count shows it. */
    note( &r, COUNT_INDICATED, count );
    return IWbemObjectSink_Indicate( stub->sink, count, objs );
}

static HRESULT WINAPI stub_SetStatus( IWbemObjectSink *iface, LONG flags, HRESULT hr, BSTR param,
                                      IWbemClassObject *obj )
{
    struct stub *stub = impl_from_IWbemObjectSink( iface );
    struct record r = { .op = OP_SET_STATUS, .flags = flags, .hr = hr };

    note( &r, COUNT_STATUSES, 1 );
    return IWbemObjectSink_SetStatus( stub->sink, flags, hr, param, obj );
}

static const IWbemObjectSinkVtbl stub_vtbl =
{
    stub_QueryInterface,
    stub_AddRef,
    stub_Release,
    stub_Indicate,
    stub_SetStatus
};

/* The stub holds its own reference on the sink until its last Release. */
static HRESULT stub_create( IWbemObjectSink *sink, IWbemObjectSink **ret )
{
    struct stub *stub;

    if (!(stub = calloc( 1, sizeof(*stub) ))) return E_OUTOFMEMORY;
    stub->IWbemObjectSink_iface.lpVtbl = &stub_vtbl;
    stub->refs = 1;
    stub->sink = sink;
    IWbemObjectSink_AddRef( sink );
    note( NULL, COUNT_SINKS_HELD, 1 );
    note( NULL, COUNT_STUBS, 1 );
    *ret = &stub->IWbemObjectSink_iface;
    return S_OK;
}

/* The apartment. IWbemUnsecuredApartment extends IUnsecuredApartment: one vtable serves both. */
struct apartment
{
    IWbemUnsecuredApartment IWbemUnsecuredApartment_iface;
    LONG refs;
    BOOL wbem;          /* fixed at creation: an object answers QI the same way all its life */
};

static inline struct apartment *impl_from_IWbemUnsecuredApartment( IWbemUnsecuredApartment *iface )
{
    return CONTAINING_RECORD( iface, struct apartment, IWbemUnsecuredApartment_iface );
}

static HRESULT apartment_query( struct apartment *apt, REFIID riid, void **obj )
{
    if (IsEqualGUID( riid, &IID_IUnknown ) || IsEqualGUID( riid, &IID_IUnsecuredApartment ) ||
        (apt->wbem && IsEqualGUID( riid, &IID_IWbemUnsecuredApartment )))
    {
        *obj = &apt->IWbemUnsecuredApartment_iface;
        IWbemUnsecuredApartment_AddRef( &apt->IWbemUnsecuredApartment_iface );
        return S_OK;
    }
    *obj = NULL;
    return E_NOINTERFACE;
}

static HRESULT WINAPI apartment_QueryInterface( IWbemUnsecuredApartment *iface, REFIID riid, void **obj )
{
    struct record r = { .op = OP_QUERY_INTERFACE, .target = TARGET_APARTMENT, .iid = *riid };

    r.hr = apartment_query( impl_from_IWbemUnsecuredApartment( iface ), riid, obj );
    note( &r, COUNT_NONE, 0 );
    return r.hr;
}

static ULONG WINAPI apartment_AddRef( IWbemUnsecuredApartment *iface )
{
    struct apartment *apt = impl_from_IWbemUnsecuredApartment( iface );
    return InterlockedIncrement( &apt->refs );
}

static ULONG WINAPI apartment_Release( IWbemUnsecuredApartment *iface )
{
    struct apartment *apt = impl_from_IWbemUnsecuredApartment( iface );
    LONG refs = InterlockedDecrement( &apt->refs );

    if (!refs)
    {
        note( NULL, COUNT_APARTMENTS, -1 );
        free( apt );
    }
    return refs;
}

static HRESULT configured_failure( void )
{
    HRESULT hr;

    EnterCriticalSection( &cs );
    hr = state.fail_create;
    LeaveCriticalSection( &cs );
    return hr;
}

static HRESULT WINAPI apartment_CreateObjectStub( IWbemUnsecuredApartment *iface, IUnknown *object,
                                                  IUnknown **ret )
{
    struct record r = { .op = OP_CREATE_OBJECT_STUB };
    IWbemObjectSink *sink = NULL, *stub;
    HRESULT hr;

    (void)iface;
    if (!object || !ret)
    {
        hr = E_POINTER;
        goto done;
    }
    *ret = NULL;
    if (FAILED(hr = configured_failure())) goto done;
    /* The object must be the client's sink; the caller QIs the stub for IWbemObjectSink. */
    if (FAILED(hr = IUnknown_QueryInterface( object, &IID_IWbemObjectSink, (void **)&sink ))) goto done;
    if (SUCCEEDED(hr = stub_create( sink, &stub ))) *ret = (IUnknown *)stub;

done:
    if (sink) IWbemObjectSink_Release( sink );
    r.hr = hr;
    note( &r, COUNT_NONE, 0 );
    return hr;
}

static HRESULT WINAPI apartment_CreateSinkStub( IWbemUnsecuredApartment *iface, IWbemObjectSink *sink,
                                                DWORD flags, LPCWSTR reserved, IWbemObjectSink **ret )
{
    struct record r = { .op = OP_CREATE_SINK_STUB, .flags = flags, .reserved_null = !reserved };
    HRESULT hr;

    (void)iface;
    if (!sink || !ret)
    {
        hr = E_POINTER;
        goto done;
    }
    *ret = NULL;
    /* Stricter than Unsecapp may be: a caller passing junk should fail its spec. */
    if (flags > WBEM_FLAG_UNSECAPP_DONT_CHECK_ACCESS || reserved)
    {
        hr = WBEM_E_INVALID_PARAMETER;
        goto done;
    }
    if (FAILED(hr = configured_failure())) goto done;
    hr = stub_create( sink, ret );

done:
    r.hr = hr;
    note( &r, COUNT_NONE, 0 );
    return hr;
}

static const IWbemUnsecuredApartmentVtbl apartment_vtbl =
{
    apartment_QueryInterface,
    apartment_AddRef,
    apartment_Release,
    apartment_CreateObjectStub,
    apartment_CreateSinkStub
};

/* The class factory: a real object per DllGetClassObject, no faked refcount. */
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
    struct record r = { .op = OP_CREATE_INSTANCE, .iid = *riid };
    struct apartment *apt;
    HRESULT hr;

    (void)iface;
    *obj = NULL;
    if (outer) hr = CLASS_E_NOAGGREGATION;
    else if (!(apt = calloc( 1, sizeof(*apt) ))) hr = E_OUTOFMEMORY;
    else
    {
        apt->IWbemUnsecuredApartment_iface.lpVtbl = &apartment_vtbl;
        apt->refs = 1;
        EnterCriticalSection( &cs );
        apt->wbem = state.wbem;
        LeaveCriticalSection( &cs );
        note( NULL, COUNT_APARTMENTS, 1 );
        /* Not logged as a QI: the CreateInstance record carries the IID asked for. */
        hr = apartment_query( apt, riid, obj );
        IWbemUnsecuredApartment_Release( &apt->IWbemUnsecuredApartment_iface );
    }
    r.hr = hr;
    note( &r, COUNT_NONE, 0 );
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
    if (FAILED(hr = CLSIDFromString( WIDEN(TESTAPT_CLSID), &clsid ))) return hr;
    if (!IsEqualGUID( rclsid, &clsid )) return CLASS_E_CLASSNOTAVAILABLE;
    if (!(factory = calloc( 1, sizeof(*factory) ))) return E_OUTOFMEMORY;
    factory->IClassFactory_iface.lpVtbl = &factory_vtbl;
    factory->refs = 1;
    hr = IClassFactory_QueryInterface( &factory->IClassFactory_iface, riid, obj );
    IClassFactory_Release( &factory->IClassFactory_iface );
    return hr;
}

/* Never unload: the Lua module lives in the same image. */
__declspec(dllexport) HRESULT WINAPI DllCanUnloadNow( void )
{
    return S_FALSE;
}

BOOL WINAPI DllMain( HINSTANCE hinst, DWORD reason, void *reserved )
{
    if (reason == DLL_PROCESS_ATTACH)
    {
        instance = hinst;
        DisableThreadLibraryCalls( hinst );
        InitializeCriticalSection( &cs );
    }
    else if (reason == DLL_PROCESS_DETACH && !reserved)   /* FreeLibrary, not process exit */
    {
        DeleteCriticalSection( &cs );
        free( state.log );
    }
    return TRUE;
}

/* The Lua module. */

static const struct { const IID *iid; const char *name; } iid_names[] =
{
    { &IID_IUnknown, "IUnknown" },
    { &IID_IWbemObjectSink, "IWbemObjectSink" },
    { &IID_IUnsecuredApartment, "IUnsecuredApartment" },
    { &IID_IWbemUnsecuredApartment, "IWbemUnsecuredApartment" },
    { &IID_IClassFactory, "IClassFactory" },
    { &IID_IMarshal, "IMarshal" },
    { &IID_INoMarshal, "INoMarshal" },
    { &IID_IAgileObject, "IAgileObject" },
    { &IID_IStdMarshalInfo, "IStdMarshalInfo" },
    { &IID_IExternalConnection, "IExternalConnection" },
    { &IID_IClientSecurity, "IClientSecurity" },
    { &IID_ICallFactory, "ICallFactory" },
    { &IID_IRpcOptions, "IRpcOptions" },
    { &IID_IDispatch, "IDispatch" },
};

static const char *iid_name( const IID *iid, char buf[40] )
{
    size_t i;

    for (i = 0; i < ARRAYSIZE(iid_names); i++)
        if (IsEqualGUID( iid, iid_names[i].iid )) return iid_names[i].name;
    snprintf( buf, 40, "{%08lX-%04X-%04X-%02X%02X-%02X%02X%02X%02X%02X%02X}",
              (unsigned long)iid->Data1, iid->Data2, iid->Data3, iid->Data4[0], iid->Data4[1],
              iid->Data4[2], iid->Data4[3], iid->Data4[4], iid->Data4[5], iid->Data4[6], iid->Data4[7] );
    return buf;
}

static void set_string( lua_State *L, const char *key, const char *value )
{
    lua_pushstring( L, value );
    lua_setfield( L, -2, key );
}

static void set_integer( lua_State *L, const char *key, lua_Integer value )
{
    lua_pushinteger( L, value );
    lua_setfield( L, -2, key );
}

/* HRESULTs reach Lua as the unsigned 32-bit value, as in the module's API. */
static void set_hresult( lua_State *L, HRESULT hr )
{
    set_integer( L, "hresult", (lua_Integer)(DWORD)hr );
}

/* testapt.reset{ wbem = true|false, fail_create = nil|hresult } */
static int testapt_reset( lua_State *L )
{
    BOOL wbem = TRUE;
    HRESULT fail = S_OK;

    if (!lua_isnoneornil( L, 1 ))
    {
        luaL_checktype( L, 1, LUA_TTABLE );
        if (lua_getfield( L, 1, "wbem" ) != LUA_TNIL) wbem = lua_toboolean( L, -1 );
        if (lua_getfield( L, 1, "fail_create" ) != LUA_TNIL)
        {
            lua_Integer v = luaL_checkinteger( L, -1 );
            fail = (HRESULT)(DWORD)v;
            luaL_argcheck( L, v >= -(lua_Integer)0x80000000 && v <= (lua_Integer)0xffffffff && FAILED(fail), 1,
                           "fail_create must be a failure HRESULT" );
        }
    }
    EnterCriticalSection( &cs );
    state.wbem = wbem;
    state.fail_create = fail;
    state.log_len = 0;
    state.counts[COUNT_INDICATED] = state.counts[COUNT_STATUSES] = 0;
    LeaveCriticalSection( &cs );
    return 0;
}

static int testapt_log( lua_State *L )
{
    struct record *copy;
    size_t i, n;
    char buf[40];

    /* Copy out under the lock, build tables outside it: a Lua error must not hold cs. */
    EnterCriticalSection( &cs );
    n = state.log_len;
    LeaveCriticalSection( &cs );
    copy = lua_newuserdatauv( L, (n + 1) * sizeof(*copy), 0 );
    EnterCriticalSection( &cs );
    if (n > state.log_len) n = state.log_len;
    memcpy( copy, state.log, n * sizeof(*copy) );
    LeaveCriticalSection( &cs );

    lua_createtable( L, (int)n, 0 );
    for (i = 0; i < n; i++)
    {
        const struct record *r = &copy[i];

        lua_createtable( L, 0, 4 );
        set_string( L, "op", op_names[r->op] );
        switch (r->op)
        {
        case OP_QUERY_INTERFACE:
            set_string( L, "target", r->target == TARGET_STUB ? "stub" : "apartment" );
            /* fall through */
        case OP_CREATE_INSTANCE:
            set_string( L, "iid", iid_name( &r->iid, buf ) );
            break;
        case OP_CREATE_SINK_STUB:
            set_integer( L, "flags", r->flags );
            lua_pushboolean( L, r->reserved_null );
            lua_setfield( L, -2, "reserved_null" );
            break;
        case OP_INDICATE:
            set_integer( L, "count", r->count );
            break;
        case OP_SET_STATUS:
            set_integer( L, "flags", r->flags );
            set_hresult( L, r->hr );
            break;
        default:
            break;
        }
        /* A failed call carries its HRESULT; SetStatus's hresult is its argument. */
        if (r->op != OP_SET_STATUS && FAILED(r->hr)) set_hresult( L, r->hr );
        lua_rawseti( L, -2, (lua_Integer)i + 1 );
    }
    return 1;
}

static int testapt_counts( lua_State *L )
{
    LONGLONG counts[COUNT_NONE];
    int i;

    EnterCriticalSection( &cs );
    memcpy( counts, state.counts, sizeof(counts) );
    LeaveCriticalSection( &cs );
    lua_createtable( L, 0, COUNT_NONE );
    for (i = 0; i < COUNT_NONE; i++) set_integer( L, count_names[i], counts[i] );
    return 1;
}

__declspec(dllexport) int luaopen_testapt( lua_State *L )
{
    static const luaL_Reg funcs[] =
    {
        { "reset", testapt_reset },
        { "log", testapt_log },
        { "counts", testapt_counts },
        { NULL, NULL }
    };
    char path[MAX_PATH];

    luaL_newlib( L, funcs );
    set_string( L, "clsid", TESTAPT_CLSID );
    /* Where this image was loaded from: must be the path registered for COM. */
    if (!GetModuleFileNameA( instance, path, sizeof(path) )) path[0] = 0;
    set_string( L, "path", path );
    return 1;
}

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
#include <tlhelp32.h>
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
    /* Benchmark support (see "Benchmark support" below), under cs. */
    enum hold { HOLD_NONE, HOLD_WAIT, HOLD_HELD, HOLD_RELEASED } hold;
    struct held_status { LONG flags; HRESULT hr; BSTR param; IWbemClassObject *obj; } held;
};

/* Benchmark support (bench/dispatch.lua, bench/memory.lua): none of it acts
 * unless testapt.hold() or testapt.flood() asked for it. Under cs, except quiet. */
static struct
{
    BOOL hold;                  /* stubs made from now on hold their final status */
    struct stub *latest;        /* the most recently created stub (no reference) */
    volatile LONG quiet;        /* a flood runs: Indicate is forwarded unrecorded */
} bench = { FALSE, NULL, 0 };

static void held_free( struct held_status *h )
{
    SysFreeString( h->param );
    if (h->obj) IWbemClassObject_Release( h->obj );
    memset( h, 0, sizeof(*h) );
}

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

        EnterCriticalSection( &cs );
        if (bench.latest == stub) bench.latest = NULL;
        LeaveCriticalSection( &cs );
        held_free( &stub->held );   /* a status never released is dropped */
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

    /* A benchmark flood measures the sink, not this log. */
    if (bench.quiet) return IWbemObjectSink_Indicate( stub->sink, count, objs );
    /* Counted before forwarding: once the Lua thread sees the object, the count shows it. */
    note( &r, COUNT_INDICATED, count );
    return IWbemObjectSink_Indicate( stub->sink, count, objs );
}

static HRESULT WINAPI stub_SetStatus( IWbemObjectSink *iface, LONG flags, HRESULT hr, BSTR param,
                                      IWbemClassObject *obj )
{
    struct stub *stub = impl_from_IWbemObjectSink( iface );
    struct record r = { .op = OP_SET_STATUS, .flags = flags, .hr = hr };
    BOOL held = FALSE;

    /* Benchmarks keep a call in flight by holding its final status (testapt.hold). */
    if (flags == WBEM_STATUS_COMPLETE)
    {
        EnterCriticalSection( &cs );
        if (stub->hold == HOLD_WAIT && (!param || (stub->held.param = SysAllocString( param ))))
        {
            stub->held.flags = flags;
            stub->held.hr = hr;
            if ((stub->held.obj = obj)) IWbemClassObject_AddRef( obj );
            stub->hold = HOLD_HELD;
            held = TRUE;
        }
        LeaveCriticalSection( &cs );
        if (held) return WBEM_S_NO_ERROR;
    }
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
    EnterCriticalSection( &cs );
    stub->hold = bench.hold ? HOLD_WAIT : HOLD_NONE;
    bench.latest = stub;
    LeaveCriticalSection( &cs );
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


/* --- Benchmark support: held statuses and a flood of Indicates ------------------- */
/*
 * bench/dispatch.lua measures the module's own dispatch cost, which Wine's slow WMI
 * hides. A call started with a stub of this apartment stays in flight while its
 * final status is held (testapt.hold), and testapt.flood calls that stub's
 * Indicate from several threads with a few real IWbemClassObject instances, as
 * WMI would, then releases the status: it reaches the queue after every object.
 * The same driver can feed a bare C sink instead, the reference.
 */

#define POOL_MAX 16             /* real objects indicated in turn */
#define FLOOD_MAX_THREADS 16

/* The objects: Lua thread fills it, producers only read it while a flood runs. */
static struct
{
    WCHAR query[128];
    IWbemClassObject *objs[POOL_MAX];
    ULONG count;
} pool;

static void pool_clear( void )
{
    while (pool.count)
    {
        IWbemClassObject *obj = pool.objs[--pool.count];
        IWbemClassObject_Release( obj );
    }
    pool.query[0] = 0;
}

/* Fills the pool with the first instances of "SELECT * FROM <class>" (QUERY). */
static HRESULT pool_fill( const WCHAR *query )
{
    IWbemLocator *locator = NULL;
    IWbemServices *svc = NULL;
    IEnumWbemClassObject *e = NULL;
    BSTR ns = SysAllocString( L"root\\cimv2" ), lang = SysAllocString( L"WQL" ), q = SysAllocString( query );
    ULONG got = 0;
    HRESULT hr;

    if (pool.count && !wcscmp( pool.query, query )) hr = S_OK;
    else if (!ns || !lang || !q) hr = E_OUTOFMEMORY;
    else
    {
        pool_clear();
        hr = CoCreateInstance( &CLSID_WbemLocator, NULL, CLSCTX_INPROC_SERVER, &IID_IWbemLocator,
                               (void **)&locator );
        if (SUCCEEDED(hr)) hr = IWbemLocator_ConnectServer( locator, ns, NULL, NULL, NULL, 0, NULL, NULL, &svc );
        if (SUCCEEDED(hr)) hr = IWbemServices_ExecQuery( svc, lang, q, WBEM_FLAG_RETURN_IMMEDIATELY |
                                                         WBEM_FLAG_FORWARD_ONLY, NULL, &e );
        if (SUCCEEDED(hr)) hr = IEnumWbemClassObject_Next( e, WBEM_INFINITE, POOL_MAX, pool.objs, &got );
        if (SUCCEEDED(hr) && !got) hr = WBEM_E_NOT_FOUND;
        if (SUCCEEDED(hr))
        {
            pool.count = got;
            wcscpy( pool.query, query );
            hr = S_OK;
        }
        else while (got)
        {
            IWbemClassObject *obj = pool.objs[--got];
            IWbemClassObject_Release( obj );
        }
    }
    if (e) IEnumWbemClassObject_Release( e );
    if (svc) IWbemServices_Release( svc );
    if (locator) IWbemLocator_Release( locator );
    SysFreeString( ns );
    SysFreeString( lang );
    SysFreeString( q );
    return hr;
}

/* The latest stub with a new reference, or NULL. Its Release clears bench.latest
 * under cs before freeing it, so it cannot vanish while cs is held here. */
static struct stub *latest_acquire( void )
{
    struct stub *stub;

    EnterCriticalSection( &cs );
    if ((stub = bench.latest))
    {
        LONG refs = stub->refs, seen;
        while (refs > 0 && (seen = InterlockedCompareExchange( &stub->refs, refs + 1, refs )) != refs)
            refs = seen;
        if (refs <= 0) stub = NULL;
    }
    LeaveCriticalSection( &cs );
    return stub;
}

/* Forwards STUB's held final status (recorded as it goes); a status arriving
 * later passes straight through. TRUE when one was held. */
static BOOL stub_release_status( struct stub *stub )
{
    struct held_status h;
    BOOL held = FALSE;

    memset( &h, 0, sizeof(h) );
    EnterCriticalSection( &cs );
    if (stub->hold == HOLD_HELD)
    {
        h = stub->held;
        memset( &stub->held, 0, sizeof(stub->held) );
        held = TRUE;
    }
    if (stub->hold != HOLD_NONE) stub->hold = HOLD_RELEASED;
    LeaveCriticalSection( &cs );
    if (held)
    {
        struct record r = { .op = OP_SET_STATUS, .flags = h.flags, .hr = h.hr };
        note( &r, COUNT_STATUSES, 1 );
        IWbemObjectSink_SetStatus( stub->sink, h.flags, h.hr, h.param, h.obj );
        held_free( &h );
    }
    return held;
}

/* The reference: a minimal C sink that queues under a lock, signalling its
 * consumer when the queue was empty (or on every object: signal_each). */
struct bare_node
{
    struct bare_node *next;
    IWbemClassObject *obj;
};

struct bare_sink
{
    IWbemObjectSink IWbemObjectSink_iface;
    LONG refs;
    CRITICAL_SECTION lock;
    struct bare_node *head, *tail;
    HANDLE event;
    BOOL signal_each;
};

static inline struct bare_sink *bare_from_IWbemObjectSink( IWbemObjectSink *iface )
{
    return CONTAINING_RECORD( iface, struct bare_sink, IWbemObjectSink_iface );
}

static HRESULT WINAPI bare_QueryInterface( IWbemObjectSink *iface, REFIID riid, void **obj )
{
    if (IsEqualGUID( riid, &IID_IUnknown ) || IsEqualGUID( riid, &IID_IWbemObjectSink ))
    {
        *obj = iface;
        IWbemObjectSink_AddRef( iface );
        return S_OK;
    }
    *obj = NULL;
    return E_NOINTERFACE;
}

static ULONG WINAPI bare_AddRef( IWbemObjectSink *iface )
{
    return InterlockedIncrement( &bare_from_IWbemObjectSink( iface )->refs );
}

static ULONG WINAPI bare_Release( IWbemObjectSink *iface )
{
    struct bare_sink *sink = bare_from_IWbemObjectSink( iface );
    LONG refs = InterlockedDecrement( &sink->refs );

    if (!refs)
    {
        while (sink->head)
        {
            struct bare_node *node = sink->head;
            sink->head = node->next;
            IWbemClassObject_Release( node->obj );
            free( node );
        }
        DeleteCriticalSection( &sink->lock );
        CloseHandle( sink->event );
        free( sink );
    }
    return refs;
}

static HRESULT WINAPI bare_Indicate( IWbemObjectSink *iface, LONG count, IWbemClassObject **objs )
{
    struct bare_sink *sink = bare_from_IWbemObjectSink( iface );
    LONG i;

    for (i = 0; i < count; i++)
    {
        struct bare_node *node = malloc( sizeof(*node) );
        BOOL was_empty;

        if (!node) return WBEM_E_OUT_OF_MEMORY;
        node->next = NULL;
        node->obj = objs[i];
        IWbemClassObject_AddRef( node->obj );
        EnterCriticalSection( &sink->lock );
        was_empty = !sink->head;
        if (sink->tail) sink->tail->next = node;
        else sink->head = node;
        sink->tail = node;
        LeaveCriticalSection( &sink->lock );
        if (was_empty || sink->signal_each) SetEvent( sink->event );
    }
    return WBEM_S_NO_ERROR;
}

static HRESULT WINAPI bare_SetStatus( IWbemObjectSink *iface, LONG flags, HRESULT hr, BSTR param,
                                      IWbemClassObject *obj )
{
    (void)iface; (void)flags; (void)hr; (void)param; (void)obj;
    return WBEM_S_NO_ERROR;
}

static const IWbemObjectSinkVtbl bare_vtbl =
{
    bare_QueryInterface,
    bare_AddRef,
    bare_Release,
    bare_Indicate,
    bare_SetStatus
};

/* One flood at a time, started and joined on the Lua thread. */
static struct
{
    IWbemObjectSink *target;    /* a testapt stub's, or a bare sink's (own reference) */
    struct stub *stub;          /* the stub, when the target is one */
    BOOL release;               /* release the stub's held status after the last object */
    LONG objects, threads, share[FLOOD_MAX_THREADS];
    volatile LONG running, failed;
    LARGE_INTEGER start, end;
    HANDLE handles[FLOOD_MAX_THREADS];
    int nhandles;
} flood;

static double seconds_between( LARGE_INTEGER a, LARGE_INTEGER b )
{
    LARGE_INTEGER f;
    QueryPerformanceFrequency( &f );
    return (double)(b.QuadPart - a.QuadPart) / (double)f.QuadPart;
}

static DWORD WINAPI flood_thread( void *arg )
{
    LONG id = (LONG)(INT_PTR)arg, i, n = flood.share[id];

    for (i = 0; i < n; i++)
    {
        IWbemClassObject *obj = pool.objs[(ULONG)(id + i) % pool.count];

        /* The provider's own reference while it calls the sink, as Wine's worker holds it. */
        IWbemClassObject_AddRef( obj );
        if (FAILED(IWbemObjectSink_Indicate( flood.target, 1, &obj ))) InterlockedIncrement( &flood.failed );
        IWbemClassObject_Release( obj );
    }
    if (!InterlockedDecrement( &flood.running ))
    {
        QueryPerformanceCounter( &flood.end );
        if (flood.stub && flood.release) stub_release_status( flood.stub );
    }
    return 0;
}

/* Waits for the producers and drops what the flood holds; returns the producer time. */
static double flood_join( void )
{
    int i;

    WaitForMultipleObjects( flood.nhandles, flood.handles, TRUE, INFINITE );
    for (i = 0; i < flood.nhandles; i++) CloseHandle( flood.handles[i] );
    flood.nhandles = 0;
    InterlockedExchange( &bench.quiet, 0 );
    if (flood.stub) IWbemObjectSink_Release( &flood.stub->IWbemObjectSink_iface );
    else if (flood.target) IWbemObjectSink_Release( flood.target );
    flood.stub = NULL;
    flood.target = NULL;
    return seconds_between( flood.start, flood.end );
}

/* Starts the producers; FALSE (after joining those started) when a thread cannot be made. */
static BOOL flood_start( void )
{
    LONG i;

    for (i = 0; i < flood.threads; i++)
        flood.share[i] = flood.objects / flood.threads + (i < flood.objects % flood.threads);
    flood.running = flood.threads;
    flood.failed = 0;
    InterlockedExchange( &bench.quiet, 1 );
    QueryPerformanceCounter( &flood.start );
    flood.end = flood.start;
    for (i = 0; i < flood.threads; i++)
    {
        HANDLE h = CreateThread( NULL, 0, flood_thread, (void *)(INT_PTR)i, 0, NULL );
        if (!h)
        {
            /* The missing producers' shares are never sent. */
            LONG left = flood.threads - i;
            if (InterlockedExchangeAdd( &flood.running, -left ) == left)
            {
                QueryPerformanceCounter( &flood.end );
                if (flood.stub && flood.release) stub_release_status( flood.stub );
            }
            flood_join();
            return FALSE;
        }
        flood.handles[flood.nhandles++] = h;
    }
    return TRUE;
}

static const char *opt_string( lua_State *L, const char *key, const char *def )
{
    const char *s;
    lua_getfield( L, 1, key );
    s = lua_isnil( L, -1 ) ? def : luaL_checkstring( L, -1 );
    lua_pop( L, 1 );    /* the options table keeps the string alive */
    return s;
}

static lua_Integer opt_integer( lua_State *L, const char *key, lua_Integer def )
{
    lua_Integer v;
    lua_getfield( L, 1, key );
    v = luaL_optinteger( L, -1, def );
    lua_pop( L, 1 );
    return v;
}

static BOOL opt_boolean( lua_State *L, const char *key, BOOL def )
{
    BOOL v;
    lua_getfield( L, 1, key );
    v = lua_isnil( L, -1 ) ? def : lua_toboolean( L, -1 );
    lua_pop( L, 1 );
    return v;
}

/* UTF-8 S into the fixed buffer OUT of N characters; raises when it does not fit. */
static void to_wide( lua_State *L, const char *s, WCHAR *out, int n )
{
    if (!MultiByteToWideChar( CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, out, n ))
        luaL_error( L, "'%s' is too long or not UTF-8", s );
}

/* Fills the pool from option 'class' ("Win32_Service" by default). */
static void pool_check( lua_State *L )
{
    WCHAR query[128];
    HRESULT hr;

    lua_pushfstring( L, "SELECT * FROM %s", opt_string( L, "class", "Win32_Service" ) );
    to_wide( L, lua_tostring( L, -1 ), query, ARRAYSIZE(query) );
    lua_pop( L, 1 );
    if (FAILED(hr = pool_fill( query )))
        luaL_error( L, "flood: cannot read objects (0x%08X)", (unsigned int)hr );
}

/* testapt.flood{ objects = N, threads = 2, class = "Win32_Service", sink = "stub" | "bare",
 *                background = false, release = true, property = "Name", signal = "empty" | "each" }
 * sink = "stub": Indicate on the most recently created stub, one object per call, from
 *   THREADS threads, then release its held status (release = false keeps it).
 *   --> producer seconds, objects sent; with background = true it returns at once
 *   and testapt.flood_wait() returns them.
 * sink = "bare": into the bare C sink, consumed on this thread (Get PROPERTY, Release).
 *   --> seconds from start to the last object consumed, producer seconds, consumed */
static int testapt_flood( lua_State *L )
{
    static const char *const sinks[] = { "stub", "bare", NULL };
    static const char *const signals[] = { "empty", "each", NULL };
    lua_Integer objects, threads;
    int sink_kind, signal;
    BOOL background;

    luaL_checktype( L, 1, LUA_TTABLE );
    if (flood.nhandles) return luaL_error( L, "flood: one is running (testapt.flood_wait)" );
    objects = opt_integer( L, "objects", 100000 );
    threads = opt_integer( L, "threads", 2 );
    luaL_argcheck( L, objects >= 0 && objects <= 0x7fffffff, 1, "objects out of range" );
    luaL_argcheck( L, threads >= 1 && threads <= FLOOD_MAX_THREADS, 1, "threads out of range" );
    lua_getfield( L, 1, "sink" );
    sink_kind = luaL_checkoption( L, -1, "stub", sinks );
    lua_getfield( L, 1, "signal" );
    signal = luaL_checkoption( L, -1, "empty", signals );
    lua_pop( L, 2 );
    background = opt_boolean( L, "background", FALSE );
    pool_check( L );

    flood.objects = (LONG)objects;
    flood.threads = (LONG)threads;
    flood.release = opt_boolean( L, "release", TRUE );
    if (sink_kind == 0)
    {
        if (!(flood.stub = latest_acquire())) return luaL_error( L, "flood: no stub alive" );
        flood.target = &flood.stub->IWbemObjectSink_iface;
        if (!flood_start()) return luaL_error( L, "flood: cannot create a thread" );
        if (background)
        {
            lua_pushboolean( L, 1 );
            return 1;
        }
        lua_pushnumber( L, flood_join() );
        lua_pushinteger( L, objects - flood.failed );
        return 2;
    }
    else
    {
        WCHAR wprop[64];
        struct bare_sink *sink = calloc( 1, sizeof(*sink) );
        LARGE_INTEGER done;
        lua_Integer consumed = 0;
        BSTR prop;
        double producer;

        to_wide( L, opt_string( L, "property", "Name" ), wprop, ARRAYSIZE(wprop) );
        if (!sink || !(sink->event = CreateEventW( NULL, FALSE, FALSE, NULL )) || !(prop = SysAllocString( wprop )))
        {
            if (sink && sink->event) CloseHandle( sink->event );
            free( sink );
            return luaL_error( L, "flood: out of memory" );
        }
        sink->IWbemObjectSink_iface.lpVtbl = &bare_vtbl;
        sink->refs = 1;
        sink->signal_each = signal == 1;
        InitializeCriticalSection( &sink->lock );
        flood.stub = NULL;
        flood.target = &sink->IWbemObjectSink_iface;
        IWbemObjectSink_AddRef( flood.target );
        if (!flood_start())
        {
            SysFreeString( prop );
            IWbemObjectSink_Release( &sink->IWbemObjectSink_iface );
            return luaL_error( L, "flood: cannot create a thread" );
        }
        while (consumed < objects)
        {
            struct bare_node *node;
            VARIANT v;

            EnterCriticalSection( &sink->lock );
            if ((node = sink->head) && !(sink->head = node->next)) sink->tail = NULL;
            LeaveCriticalSection( &sink->lock );
            if (!node)
            {
                WaitForSingleObject( sink->event, INFINITE );
                continue;
            }
            VariantInit( &v );
            if (SUCCEEDED(IWbemClassObject_Get( node->obj, prop, 0, &v, NULL, NULL ))) VariantClear( &v );
            IWbemClassObject_Release( node->obj );
            free( node );
            consumed++;
        }
        QueryPerformanceCounter( &done );
        producer = flood_join();
        SysFreeString( prop );
        lua_pushnumber( L, seconds_between( flood.start, done ) );
        lua_pushnumber( L, producer );
        lua_pushinteger( L, consumed );
        IWbemObjectSink_Release( &sink->IWbemObjectSink_iface );
        return 3;
    }
}

/* testapt.flood_wait() --> producer seconds, objects sent (after a background flood) */
static int testapt_flood_wait( lua_State *L )
{
    LONG objects = flood.objects;
    if (!flood.nhandles) return luaL_error( L, "flood_wait: no flood running" );
    lua_pushnumber( L, flood_join() );
    lua_pushinteger( L, objects - flood.failed );
    return 2;
}

/* testapt.hold(on): stubs made from now on hold their final status until
 * testapt.release() or a flood releases it (testapt.reset() turns it off). */
static int testapt_hold( lua_State *L )
{
    EnterCriticalSection( &cs );
    bench.hold = lua_toboolean( L, 1 );
    LeaveCriticalSection( &cs );
    return 0;
}

/* testapt.held() --> true when the latest stub holds a final status */
static int testapt_held( lua_State *L )
{
    EnterCriticalSection( &cs );
    lua_pushboolean( L, bench.latest && bench.latest->hold == HOLD_HELD );
    LeaveCriticalSection( &cs );
    return 1;
}

/* testapt.release() --> true when the latest stub's held status was forwarded now */
static int testapt_release( lua_State *L )
{
    struct stub *stub = latest_acquire();
    BOOL held = stub ? stub_release_status( stub ) : FALSE;
    if (stub) IWbemObjectSink_Release( &stub->IWbemObjectSink_iface );
    lua_pushboolean( L, held );
    return 1;
}

/* testapt.probe{ class = "Win32_Service", property = "Name", iterations = N }
 * --> nanoseconds per Get + VariantClear on the flood's objects, in C */
static int testapt_probe( lua_State *L )
{
    WCHAR wprop[64];
    LARGE_INTEGER a, b;
    lua_Integer i, n;
    BSTR prop;

    luaL_checktype( L, 1, LUA_TTABLE );
    n = opt_integer( L, "iterations", 100000 );
    luaL_argcheck( L, n > 0, 1, "iterations must be positive" );
    to_wide( L, opt_string( L, "property", "Name" ), wprop, ARRAYSIZE(wprop) );
    pool_check( L );
    if (!(prop = SysAllocString( wprop ))) return luaL_error( L, "probe: out of memory" );
    QueryPerformanceCounter( &a );
    for (i = 0; i < n; i++)
    {
        VARIANT v;
        VariantInit( &v );
        if (SUCCEEDED(IWbemClassObject_Get( pool.objs[i % pool.count], prop, 0, &v, NULL, NULL )))
            VariantClear( &v );
    }
    QueryPerformanceCounter( &b );
    SysFreeString( prop );
    lua_pushnumber( L, seconds_between( a, b ) * 1e9 / (double)n );
    return 1;
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
    bench.hold = FALSE;
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

/* testapt.init_sta() --> HRESULT of CoInitializeEx(STA) on the calling thread: a
 * child process makes its Lua thread an STA host before it loads luawmi. */
static int testapt_init_sta( lua_State *L )
{
    lua_pushinteger( L, (DWORD)CoInitializeEx( NULL, COINIT_APARTMENTTHREADED ) );
    return 1;
}

/* testapt.leak(bytes): allocates BYTES, touches them and never frees them. `make
 * stress LEAK=64` calls it once per operation to show that the slope catches a
 * leak of that size (a hook in this test-only DLL, no test branch in the module).
 * The volatile store keeps the compiler from dropping the allocation. */
static void *volatile testapt_leaked;

static int testapt_leak( lua_State *L )
{
    lua_Integer bytes = luaL_checkinteger( L, 1 );
    void *p;

    luaL_argcheck( L, bytes > 0 && bytes <= 0x100000, 1, "1 to 1048576 bytes" );
    if (!(p = malloc( (size_t)bytes ))) return luaL_error( L, "out of memory" );
    memset( p, 0xa5, (size_t)bytes );
    testapt_leaked = p;
    return 0;
}

/* testapt.heap() --> bytes in use in every heap of the process, their blocks, and the
 * process's threads: what `make stress` reads beside private bytes, to tell a leak
 * (heap blocks that pile up) from the commit and thread-stack swings of Wine. */
static int testapt_heap( lua_State *L )
{
    HANDLE heaps[64];
    DWORD n = GetProcessHeaps( ARRAYSIZE(heaps), heaps ), i;
    LONGLONG busy = 0, blocks = 0, threads = 0;
    HANDLE snap;
    THREADENTRY32 te;

    if (n > ARRAYSIZE(heaps)) n = ARRAYSIZE(heaps);
    for (i = 0; i < n; i++)
    {
        PROCESS_HEAP_ENTRY e;

        if (!HeapLock( heaps[i] )) continue;
        e.lpData = NULL;
        while (HeapWalk( heaps[i], &e ))
        {
            if (!(e.wFlags & PROCESS_HEAP_ENTRY_BUSY)) continue;
            busy += e.cbData;
            blocks++;
        }
        HeapUnlock( heaps[i] );
    }
    snap = CreateToolhelp32Snapshot( TH32CS_SNAPTHREAD, 0 );
    if (snap != INVALID_HANDLE_VALUE)
    {
        te.dwSize = sizeof(te);
        if (Thread32First( snap, &te ))
            do if (te.th32OwnerProcessID == GetCurrentProcessId()) threads++;
            while (Thread32Next( snap, &te ));
        CloseHandle( snap );
    }
    lua_createtable( L, 0, 3 );
    set_integer( L, "busy", busy );
    set_integer( L, "blocks", blocks );
    set_integer( L, "threads", threads );
    return 1;
}

__declspec(dllexport) int luaopen_testapt( lua_State *L )
{
    static const luaL_Reg funcs[] =
    {
        { "reset", testapt_reset },
        { "log", testapt_log },
        { "counts", testapt_counts },
        { "init_sta", testapt_init_sta },
        /* benchmark support */
        { "hold", testapt_hold },
        { "held", testapt_held },
        { "release", testapt_release },
        { "flood", testapt_flood },
        { "flood_wait", testapt_flood_wait },
        { "probe", testapt_probe },
        { "leak", testapt_leak },
        { "heap", testapt_heap },
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

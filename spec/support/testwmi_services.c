/*
 * The test server's IWbemServices: Wine's real services for the data, Windows'
 * asynchronous contract for the rest ([MS-WMI] 3.1.4.3, see testwmi_async.c).
 *
 * - Every use of Wine's services is serialised on testwmi_wine_cs: Wine corrupts
 *   its heap when two queries of one class run at once. The concurrency a client
 *   sees is the server's own (testwmi_async.c).
 * - Wine's PutInstance and DeleteInstance fail (WBEM_E_FAILED), so instances the
 *   client writes live in an overlay here: PutInstance stores a copy under its
 *   relative path (which GetResultString and SetStatus's strParam carry, [MS-WMI]
 *   3.1.4.2.2), GetObject and CreateInstanceEnum find it, DeleteInstance removes it.
 * - Wine's CreateClassEnum fails (WBEM_E_FAILED): the class list is the classes of
 *   a fixed list that Wine's GetObject finds (Wine answers GetObject(class) with
 *   the class's first instance, so these are what Wine has for a class object).
 * - Every method the client calls is a DCOM round trip to the host it connected to
 *   (host_round_trip), and so is the last Release of the client's reference; the
 *   server's own references (its running operations) are counted apart, as a DCOM
 *   server's are. Once a "vanish" host vanished, every call fails 0x800706BA.
 */
#include "testwmi.h"

#include <stdlib.h>
#include <wchar.h>

struct services
{
    IWbemServices IWbemServices_iface;
    struct security security;
    IUnknown *ftm;
    LONG refs;              /* the client's */
    LONG held;              /* the server's: one for all the client's references, one per operation */
    LONG vanished;          /* a "vanish" host is gone */
    IWbemServices *wine;
    struct host host;
    struct op_table table;  /* its AsyncOperationTable, under testwmi_cs */
};

/* Classes CreateClassEnum offers: cheap for Wine to read, none that walks the disk. */
static const WCHAR *const services_classes[] =
{
    L"StdRegProv", L"Win32_BIOS", L"Win32_BaseBoard", L"Win32_ComputerSystem", L"Win32_OperatingSystem",
    L"Win32_Process", L"Win32_Processor", L"Win32_Service"
};

/* --- the overlay of written instances ------------------------------------------------- */

struct written
{
    struct written *next;
    BSTR relpath;
    BSTR cls;
    IWbemClassObject *obj;
};
static struct written *overlay;     /* under testwmi_cs */

void overlay_clear( void )
{
    struct written *list;

    classes_clear();
    EnterCriticalSection( &testwmi_cs );
    list = overlay;
    overlay = NULL;
    LeaveCriticalSection( &testwmi_cs );
    while (list)
    {
        struct written *next = list->next;
        SysFreeString( list->relpath );
        SysFreeString( list->cls );
        IWbemClassObject_Release( list->obj );
        free( list );
        list = next;
    }
}

/* "\\host\root\cimv2:Class.Key=1" -> "Class.Key=1" */
static const WCHAR *services_relative( const WCHAR *path )
{
    const WCHAR *colon = wcschr( path, ':' );
    return colon ? colon + 1 : path;
}

/* A copy of the instance written at PATH, or NULL. */
static IWbemClassObject *overlay_find( const WCHAR *path )
{
    IWbemClassObject *found = NULL, *copy = NULL;
    struct written *w;

    path = services_relative( path );
    EnterCriticalSection( &testwmi_cs );
    for (w = overlay; w; w = w->next)
    {
        if (_wcsicmp( w->relpath, path )) continue;
        found = w->obj;
        IWbemClassObject_AddRef( found );
        break;
    }
    LeaveCriticalSection( &testwmi_cs );
    if (found)
    {
        if (FAILED(object_copy( found, &copy ))) copy = NULL;
        IWbemClassObject_Release( found );
    }
    return copy;
}

/* --- IWbemServices -------------------------------------------------------------------- */

static inline struct services *impl_from_IWbemServices( IWbemServices *iface )
{
    return CONTAINING_RECORD( iface, struct services, IWbemServices_iface );
}

IWbemServices *services_wine( struct services *svc ) { return svc->wine; }
const struct host *services_host( struct services *svc ) { return &svc->host; }
struct security *services_security( struct services *svc ) { return &svc->security; }
void services_addref( struct services *svc ) { InterlockedIncrement( &svc->held ); }
BOOL services_vanished( struct services *svc ) { return InterlockedCompareExchange( &svc->vanished, 0, 0 ); }
void services_vanish( struct services *svc ) { InterlockedExchange( &svc->vanished, TRUE ); }

void services_release( struct services *svc )
{
    if (InterlockedDecrement( &svc->held )) return;
    EnterCriticalSection( &testwmi_wine_cs );
    IWbemServices_Release( svc->wine );
    LeaveCriticalSection( &testwmi_wine_cs );
    if (svc->ftm) IUnknown_Release( svc->ftm );
    security_free( &svc->security );
    free( svc );
    testwmi_count( STAT_SERVICES, -1 );
}

/* A client call reaches the server: one round trip, and the identity checked. */
HRESULT services_trip( struct services *svc )
{
    HRESULT hr;

    if (services_vanished( svc )) return RPC_UNAVAILABLE;
    if (FAILED(hr = host_round_trip( &svc->host ))) return hr;
    if (services_vanished( svc )) return RPC_UNAVAILABLE;
    security_check( &svc->security );
    return S_OK;
}

static HRESULT WINAPI services_QueryInterface( IWbemServices *iface, REFIID riid, void **obj )
{
    struct services *svc = impl_from_IWbemServices( iface );

    if (!obj) return E_POINTER;
    if (IsEqualGUID( riid, &IID_IUnknown ) || IsEqualGUID( riid, &IID_IWbemServices ))
        *obj = &svc->IWbemServices_iface;
    else if (IsEqualGUID( riid, &IID_IClientSecurity ))
        *obj = &svc->security.IClientSecurity_iface;
    else if (svc->ftm && (IsEqualGUID( riid, &IID_IMarshal ) || IsEqualGUID( riid, &IID_IAgileObject )))
        return IUnknown_QueryInterface( svc->ftm, riid, obj );
    else
    {
        *obj = NULL;
        return E_NOINTERFACE;
    }
    IWbemServices_AddRef( iface );
    return S_OK;
}

static ULONG WINAPI services_AddRef( IWbemServices *iface )
{
    return InterlockedIncrement( &impl_from_IWbemServices( iface )->refs );
}

static ULONG WINAPI services_Release( IWbemServices *iface )
{
    struct services *svc = impl_from_IWbemServices( iface );
    LONG refs = InterlockedDecrement( &svc->refs );

    if (!refs)
    {
        /* The proxy's last Release is a call to the server (RemRelease). */
        if (!services_vanished( svc )) host_round_trip( &svc->host );
        services_release( svc );
    }
    return refs;
}

/* A synchronous call: a round trip, counted in flight until services_call_end. */
static HRESULT services_call_begin( struct services *svc )
{
    HRESULT hr = services_trip( svc );
    if (SUCCEEDED(hr)) testwmi_in_flight( 1 );
    return hr;
}

static HRESULT services_call_end( HRESULT hr )
{
    testwmi_in_flight( -1 );
    return hr;
}

static HRESULT services_drain( IEnumWbemClassObject *e, struct objects *out )
{
    IWbemClassObject *obj;
    ULONG got;
    HRESULT hr;

    for (;;)
    {
        got = 0;
        obj = NULL;
        hr = IEnumWbemClassObject_Next( e, WBEM_INFINITE, 1, &obj, &got );
        if (FAILED(hr) || !got) break;
        if (!(obj = object_wrap( obj ))) return E_OUTOFMEMORY;
        if (FAILED(hr = objects_add( out, obj ))) return hr;
    }
    return FAILED(hr) ? hr : S_OK;
}

static HRESULT services_classes_of( struct services *svc, const WCHAR *super, struct objects *out )
{
    IWbemClassObject *obj;
    HRESULT hr = S_OK;
    VARIANT v;
    size_t i;

    if (super && *super)
    {
        /* Wine names an unknown class WBEM_E_NOT_FOUND; Windows' CreateClassEnum says WBEM_E_INVALID_CLASS. */
        if (FAILED(IWbemServices_GetObject( svc->wine, (BSTR)super, 0, NULL, &obj, NULL ))) return WBEM_E_INVALID_CLASS;
        IWbemClassObject_Release( obj );
    }
    for (i = 0; i < ARRAYSIZE(services_classes) && SUCCEEDED(hr); i++)
    {
        BOOL keep = !super || !*super;
        obj = NULL;
        if (FAILED(IWbemServices_GetObject( svc->wine, (BSTR)services_classes[i], 0, NULL, &obj, NULL ))) continue;
        VariantInit( &v );
        /* Deep: every class whose derivation names the superclass. */
        if (!keep && SUCCEEDED(IWbemClassObject_Get( obj, L"__DERIVATION", 0, &v, NULL, NULL ))
            && V_VT( &v ) == (VT_ARRAY | VT_BSTR))
        {
            LONG lo, hi, j;
            SafeArrayGetLBound( V_ARRAY( &v ), 1, &lo );
            SafeArrayGetUBound( V_ARRAY( &v ), 1, &hi );
            for (j = lo; j <= hi && !keep; j++)
            {
                BSTR s = NULL;
                if (SUCCEEDED(SafeArrayGetElement( V_ARRAY( &v ), &j, &s )) && s) keep = !_wcsicmp( s, super );
                SysFreeString( s );
            }
        }
        VariantClear( &v );
        if (!keep)
        {
            IWbemClassObject_Release( obj );
            continue;
        }
        if (!(obj = object_wrap( obj ))) hr = E_OUTOFMEMORY;
        else hr = objects_add( out, obj );
    }
    return hr;
}

/* Copies of written instances of class CLS, after what Wine has. */
static HRESULT services_overlay_instances( const WCHAR *cls, struct objects *out )
{
    struct objects found = { NULL, 0, 0 };
    struct written *w;
    HRESULT hr = S_OK;
    ULONG i;

    EnterCriticalSection( &testwmi_cs );
    for (w = overlay; w && SUCCEEDED(hr); w = w->next)
    {
        if (_wcsicmp( w->cls, cls )) continue;
        IWbemClassObject_AddRef( w->obj );
        hr = objects_add( &found, w->obj );
    }
    LeaveCriticalSection( &testwmi_cs );
    for (i = 0; i < found.count && SUCCEEDED(hr); i++)
    {
        IWbemClassObject *copy;
        if (SUCCEEDED(hr = object_copy( found.objs[i], &copy ))) hr = objects_add( out, copy );
    }
    objects_free( &found );
    return hr;
}

/* services_collect with the client's context CTX, which a method of Wine's reads
 * (StdRegProv's registry view: __ProviderArchitecture). */
static HRESULT services_collect_ctx( struct services *svc, int kind, const WCHAR *a, const WCHAR *b, LONG flags,
                                     IWbemClassObject *in, IWbemContext *ctx, struct objects *out )
{
    IEnumWbemClassObject *e = NULL;
    IWbemClassObject *obj = NULL;
    HRESULT hr;

    /* Only what a query may carry: the server reads Wine's answer whole. */
    flags &= WBEM_FLAG_SHALLOW | WBEM_FLAG_DEEP | WBEM_FLAG_USE_AMENDED_QUALIFIERS;
    if (svc->host.classes) return classes_collect( kind, a, flags, out );
    if (kind == COLLECT_GET && a && (obj = overlay_find( a ))) return objects_add( out, obj );
    if ((hr = schema_collect( kind, a, b, flags, out )) != S_FALSE) return hr;
    if (kind == COLLECT_QUERY && (hr = items_query( a, out )) != S_FALSE) return hr;
    EnterCriticalSection( &testwmi_wine_cs );
    switch (kind)
    {
    case COLLECT_QUERY:
    {
        BSTR lang = SysAllocString( L"WQL" );
        hr = lang ? IWbemServices_ExecQuery( svc->wine, lang, (BSTR)a, flags | WBEM_FLAG_FORWARD_ONLY, NULL, &e )
                  : E_OUTOFMEMORY;
        SysFreeString( lang );
        if (SUCCEEDED(hr)) hr = services_drain( e, out );
        break;
    }
    case COLLECT_INSTANCES:
        hr = IWbemServices_CreateInstanceEnum( svc->wine, (BSTR)a, flags | WBEM_FLAG_FORWARD_ONLY, NULL, &e );
        if (SUCCEEDED(hr)) hr = services_drain( e, out );
        break;
    case COLLECT_CLASSES:
        hr = services_classes_of( svc, a, out );
        break;
    case COLLECT_GET:
        /* GetObject("") makes an empty class that Wine then crashes on. */
        hr = a && *a ? IWbemServices_GetObject( svc->wine, (BSTR)a, 0, NULL, &obj, NULL ) : WBEM_E_INVALID_PARAMETER;
        if (SUCCEEDED(hr)) hr = (obj = object_wrap( obj )) ? objects_add( out, obj ) : E_OUTOFMEMORY;
        break;
    case COLLECT_EXEC:
        if ((hr = methods_exec( a, b, in, &obj )) == S_FALSE)
            hr = IWbemServices_ExecMethod( svc->wine, (BSTR)a, (BSTR)b, 0, ctx, object_unwrap( in ), &obj, NULL );
        if (SUCCEEDED(hr) && obj) hr = (obj = object_wrap( obj )) ? objects_add( out, obj ) : E_OUTOFMEMORY;
        break;
    default:
        hr = WBEM_E_INVALID_PARAMETER;
    }
    if (e) IEnumWbemClassObject_Release( e );
    LeaveCriticalSection( &testwmi_wine_cs );
    if (SUCCEEDED(hr) && kind == COLLECT_INSTANCES) hr = services_overlay_instances( a, out );
    if (FAILED(hr)) objects_free( out );
    return hr;
}

HRESULT services_collect( struct services *svc, int kind, const WCHAR *a, const WCHAR *b, LONG flags,
                          IWbemClassObject *in, struct objects *out )
{
    return services_collect_ctx( svc, kind, a, b, flags, in, NULL, out );
}

HRESULT services_put( struct services *svc, IWbemClassObject *obj, LONG flags, BSTR *path )
{
    struct written *w, **at;
    IWbemClassObject *copy = NULL;
    VARIANT cls;
    HRESULT hr;

    if (svc->host.classes) return classes_put( obj, flags, path );
    *path = NULL;
    VariantInit( &cls );
    if (FAILED(hr = object_relpath( obj, svc->wine, path ))) return hr;
    if (FAILED(hr = object_copy( obj, &copy ))) goto done;
    if (FAILED(hr = IWbemClassObject_Get( copy, L"__CLASS", 0, &cls, NULL, NULL ))) goto done;
    if (V_VT( &cls ) != VT_BSTR || !(w = calloc( 1, sizeof(*w) )))
    {
        hr = V_VT( &cls ) != VT_BSTR ? WBEM_E_INVALID_OBJECT : E_OUTOFMEMORY;
        goto done;
    }
    if (!(w->relpath = SysAllocString( *path )))
    {
        free( w );
        hr = E_OUTOFMEMORY;
        goto done;
    }
    w->cls = V_BSTR( &cls );
    V_VT( &cls ) = VT_EMPTY;
    w->obj = copy;
    copy = NULL;
    EnterCriticalSection( &testwmi_cs );
    for (at = &overlay; *at && _wcsicmp( (*at)->relpath, w->relpath ); at = &(*at)->next);
    if (*at && (flags & WBEM_FLAG_CREATE_ONLY)) hr = WBEM_E_ALREADY_EXISTS;
    else if (!*at && (flags & WBEM_FLAG_UPDATE_ONLY)) hr = WBEM_E_NOT_FOUND;
    else if (*at)
    {
        /* Replaced in place: the old copy is released outside the lock. */
        struct written *old = *at;
        w->next = old->next;
        *at = w;
        w = old;
    }
    else
    {
        *at = w;
        w = NULL;
    }
    LeaveCriticalSection( &testwmi_cs );
    if (w)
    {
        SysFreeString( w->relpath );
        SysFreeString( w->cls );
        IWbemClassObject_Release( w->obj );
        free( w );
    }
done:
    VariantClear( &cls );
    if (copy) IWbemClassObject_Release( copy );
    if (FAILED(hr))
    {
        SysFreeString( *path );
        *path = NULL;
    }
    return hr;
}

/* Only written instances can be deleted; Wine answers for the rest. */
HRESULT services_delete( struct services *svc, const WCHAR *path )
{
    struct written *w = NULL, **at;
    HRESULT hr;

    if (!path) return WBEM_E_INVALID_PARAMETER;
    if (svc->host.classes) return classes_delete( path );
    EnterCriticalSection( &testwmi_cs );
    for (at = &overlay; *at && _wcsicmp( (*at)->relpath, services_relative( path ) ); at = &(*at)->next);
    if ((w = *at)) *at = w->next;
    LeaveCriticalSection( &testwmi_cs );
    if (w)
    {
        SysFreeString( w->relpath );
        SysFreeString( w->cls );
        IWbemClassObject_Release( w->obj );
        free( w );
        return WBEM_S_NO_ERROR;
    }
    EnterCriticalSection( &testwmi_wine_cs );
    hr = IWbemServices_DeleteInstance( svc->wine, (BSTR)path, 0, NULL, NULL );
    LeaveCriticalSection( &testwmi_wine_cs );
    return hr;
}

static HRESULT WINAPI services_OpenNamespace( IWbemServices *iface, const BSTR ns, LONG flags, IWbemContext *ctx,
                                              IWbemServices **out, IWbemCallResult **result )
{
    (void)iface; (void)ns; (void)flags; (void)ctx;
    if (out) *out = NULL;
    if (result) *result = NULL;
    return WBEM_E_NOT_SUPPORTED;
}

static HRESULT WINAPI services_CancelAsyncCall( IWbemServices *iface, IWbemObjectSink *sink )
{
    struct services *svc = impl_from_IWbemServices( iface );
    HRESULT hr = services_trip( svc );
    return FAILED(hr) ? hr : async_cancel( &svc->table, sink );
}

static HRESULT WINAPI services_QueryObjectSink( IWbemServices *iface, LONG flags, IWbemObjectSink **sink )
{
    (void)iface; (void)flags;
    if (sink) *sink = NULL;
    return WBEM_E_NOT_SUPPORTED;
}

static HRESULT WINAPI services_GetObject( IWbemServices *iface, const BSTR path, LONG flags, IWbemContext *ctx,
                                          IWbemClassObject **obj, IWbemCallResult **result )
{
    struct services *svc = impl_from_IWbemServices( iface );
    struct objects list = { NULL, 0, 0 };
    HRESULT hr;

    context_record( L"GetObject", ctx );
    if (result) *result = NULL;
    if (!obj) return WBEM_E_INVALID_PARAMETER;
    *obj = NULL;
    if (FAILED(hr = services_call_begin( svc ))) return hr;
    if (SUCCEEDED(hr = services_collect( svc, COLLECT_GET, path, NULL, flags, NULL, &list )))
    {
        *obj = list.objs[0];
        list.count = 0;
    }
    objects_free( &list );
    return services_call_end( hr );
}

static HRESULT WINAPI services_GetObjectAsync( IWbemServices *iface, const BSTR path, LONG flags, IWbemContext *ctx,
                                               IWbemObjectSink *sink )
{
    struct services *svc = impl_from_IWbemServices( iface );
    context_record( L"GetObjectAsync", ctx );
    return async_start( svc, &svc->table, OP_GET, path, NULL, flags, NULL, sink );
}

/* PutInstance and, in the class store's namespace, PutClass: a written path in the result. */
static HRESULT services_put_call( struct services *svc, IWbemClassObject *obj, LONG flags, IWbemCallResult **result )
{
    BSTR path = NULL;
    HRESULT hr;

    if (FAILED(hr = services_call_begin( svc ))) return hr;
    hr = services_put( svc, obj, flags, &path );
    if (SUCCEEDED(hr) && result) hr = call_result_create( &svc->host, S_OK, path, NULL, result );
    else SysFreeString( path );
    return services_call_end( hr );
}

/* Classes are written only in the class store's namespace (testwmi_classes.c); elsewhere,
 * as in Wine, not at all. PutClass takes a class, DeleteClass a class name. */
static HRESULT WINAPI services_PutClass( IWbemServices *iface, IWbemClassObject *obj, LONG flags, IWbemContext *ctx,
                                         IWbemCallResult **result )
{
    struct services *svc = impl_from_IWbemServices( iface );

    context_record( L"PutClass", ctx );
    if (result) *result = NULL;
    if (!svc->host.classes) return WBEM_E_NOT_SUPPORTED;
    if (!obj || !classes_is_class( obj )) return WBEM_E_INVALID_PARAMETER;
    return services_put_call( svc, obj, flags, result );
}

static HRESULT WINAPI services_PutClassAsync( IWbemServices *iface, IWbemClassObject *obj, LONG flags,
                                              IWbemContext *ctx, IWbemObjectSink *sink )
{
    struct services *svc = impl_from_IWbemServices( iface );

    context_record( L"PutClassAsync", ctx );
    if (!svc->host.classes) return WBEM_E_NOT_SUPPORTED;
    if (!obj || !classes_is_class( obj )) return WBEM_E_INVALID_PARAMETER;
    return async_start( svc, &svc->table, OP_PUT, NULL, NULL, flags, obj, sink );
}

static HRESULT WINAPI services_DeleteClass( IWbemServices *iface, const BSTR cls, LONG flags, IWbemContext *ctx,
                                            IWbemCallResult **result )
{
    struct services *svc = impl_from_IWbemServices( iface );
    HRESULT hr;

    (void)flags;
    context_record( L"DeleteClass", ctx );
    if (result) *result = NULL;
    if (!svc->host.classes) return WBEM_E_NOT_SUPPORTED;
    if (!cls || !*cls || wcspbrk( cls, L".=" )) return WBEM_E_INVALID_PARAMETER;
    if (FAILED(hr = services_call_begin( svc ))) return hr;
    return services_call_end( services_delete( svc, cls ) );
}

static HRESULT WINAPI services_DeleteClassAsync( IWbemServices *iface, const BSTR cls, LONG flags,
                                                 IWbemContext *ctx, IWbemObjectSink *sink )
{
    struct services *svc = impl_from_IWbemServices( iface );

    context_record( L"DeleteClassAsync", ctx );
    if (!svc->host.classes) return WBEM_E_NOT_SUPPORTED;
    if (!cls || !*cls || wcspbrk( cls, L".=" )) return WBEM_E_INVALID_PARAMETER;
    return async_start( svc, &svc->table, OP_DELETE, cls, NULL, flags, NULL, sink );
}

static HRESULT services_enum( struct services *svc, int kind, const WCHAR *a, LONG flags, IEnumWbemClassObject **out )
{
    struct objects list = { NULL, 0, 0 };
    HRESULT hr;

    if (!out) return WBEM_E_INVALID_PARAMETER;
    *out = NULL;
    if (FAILED(hr = services_call_begin( svc ))) return hr;
    hr = services_collect( svc, kind, a, NULL, flags, NULL, &list );
    if (SUCCEEDED(hr)) hr = enum_create( &svc->host, &list, out );
    return services_call_end( hr );
}

static HRESULT WINAPI services_CreateClassEnum( IWbemServices *iface, const BSTR super, LONG flags,
                                                IWbemContext *ctx, IEnumWbemClassObject **out )
{
    context_record( L"CreateClassEnum", ctx );
    return services_enum( impl_from_IWbemServices( iface ), COLLECT_CLASSES, super, flags, out );
}

static HRESULT WINAPI services_CreateClassEnumAsync( IWbemServices *iface, const BSTR super, LONG flags,
                                                     IWbemContext *ctx, IWbemObjectSink *sink )
{
    struct services *svc = impl_from_IWbemServices( iface );
    context_record( L"CreateClassEnumAsync", ctx );
    return async_start( svc, &svc->table, OP_CLASSES, super, NULL, flags, NULL, sink );
}

static HRESULT WINAPI services_PutInstance( IWbemServices *iface, IWbemClassObject *obj, LONG flags,
                                            IWbemContext *ctx, IWbemCallResult **result )
{
    struct services *svc = impl_from_IWbemServices( iface );

    context_record( L"PutInstance", ctx );
    if (result) *result = NULL;
    if (!obj || (svc->host.classes && classes_is_class( obj ))) return WBEM_E_INVALID_PARAMETER;
    return services_put_call( svc, obj, flags, result );
}

static HRESULT WINAPI services_PutInstanceAsync( IWbemServices *iface, IWbemClassObject *obj, LONG flags,
                                                 IWbemContext *ctx, IWbemObjectSink *sink )
{
    struct services *svc = impl_from_IWbemServices( iface );
    IWbemClassObject *copy = NULL;
    HRESULT hr;

    context_record( L"PutInstanceAsync", ctx );
    if (!obj || (svc->host.classes && classes_is_class( obj ))) return WBEM_E_INVALID_PARAMETER;
    /* What the client passed, as it was at the call: it may change it afterwards. */
    if (FAILED(object_copy( obj, &copy ))) copy = obj, IWbemClassObject_AddRef( obj );
    hr = async_start( svc, &svc->table, OP_PUT, NULL, NULL, flags, copy, sink );
    IWbemClassObject_Release( copy );
    return hr;
}

static HRESULT WINAPI services_DeleteInstance( IWbemServices *iface, const BSTR path, LONG flags, IWbemContext *ctx,
                                               IWbemCallResult **result )
{
    struct services *svc = impl_from_IWbemServices( iface );
    HRESULT hr;

    (void)flags;
    context_record( L"DeleteInstance", ctx );
    if (result) *result = NULL;
    if (svc->host.classes && path && !wcspbrk( path, L".=" )) return WBEM_E_INVALID_PARAMETER;
    if (FAILED(hr = services_call_begin( svc ))) return hr;
    hr = services_delete( svc, path );
    return services_call_end( hr );
}

static HRESULT WINAPI services_DeleteInstanceAsync( IWbemServices *iface, const BSTR path, LONG flags,
                                                    IWbemContext *ctx, IWbemObjectSink *sink )
{
    struct services *svc = impl_from_IWbemServices( iface );
    context_record( L"DeleteInstanceAsync", ctx );
    return async_start( svc, &svc->table, OP_DELETE, path, NULL, flags, NULL, sink );
}

static HRESULT WINAPI services_CreateInstanceEnum( IWbemServices *iface, const BSTR cls, LONG flags,
                                                   IWbemContext *ctx, IEnumWbemClassObject **out )
{
    context_record( L"CreateInstanceEnum", ctx );
    return services_enum( impl_from_IWbemServices( iface ), COLLECT_INSTANCES, cls, flags, out );
}

static HRESULT WINAPI services_CreateInstanceEnumAsync( IWbemServices *iface, const BSTR cls, LONG flags,
                                                        IWbemContext *ctx, IWbemObjectSink *sink )
{
    struct services *svc = impl_from_IWbemServices( iface );
    context_record( L"CreateInstanceEnumAsync", ctx );
    return async_start( svc, &svc->table, OP_INSTANCES, cls, NULL, flags, NULL, sink );
}

static HRESULT WINAPI services_ExecQuery( IWbemServices *iface, const BSTR lang, const BSTR query, LONG flags,
                                          IWbemContext *ctx, IEnumWbemClassObject **out )
{
    context_record( L"ExecQuery", ctx );
    queries_record( "ExecQuery", query );
    if (!lang || _wcsicmp( lang, L"WQL" )) return WBEM_E_INVALID_QUERY_TYPE;
    return services_enum( impl_from_IWbemServices( iface ), COLLECT_QUERY, query, flags, out );
}

static HRESULT WINAPI services_ExecQueryAsync( IWbemServices *iface, const BSTR lang, const BSTR query, LONG flags,
                                               IWbemContext *ctx, IWbemObjectSink *sink )
{
    struct services *svc = impl_from_IWbemServices( iface );
    context_record( L"ExecQueryAsync", ctx );
    queries_record( "ExecQueryAsync", query );
    if (!lang || _wcsicmp( lang, L"WQL" )) return WBEM_E_INVALID_QUERY_TYPE;
    return async_start( svc, &svc->table, OP_QUERY, query, NULL, flags, NULL, sink );
}

static HRESULT WINAPI services_ExecNotificationQuery( IWbemServices *iface, const BSTR lang, const BSTR query,
                                                      LONG flags, IWbemContext *ctx, IEnumWbemClassObject **out )
{
    (void)iface; (void)lang; (void)query; (void)flags; (void)ctx;
    if (out) *out = NULL;
    return WBEM_E_NOT_SUPPORTED;
}

static HRESULT WINAPI services_ExecNotificationQueryAsync( IWbemServices *iface, const BSTR lang, const BSTR query,
                                                           LONG flags, IWbemContext *ctx, IWbemObjectSink *sink )
{
    struct services *svc = impl_from_IWbemServices( iface );
    context_record( L"ExecNotificationQueryAsync", ctx );
    queries_record( "ExecNotificationQueryAsync", query );
    if (!lang || _wcsicmp( lang, L"WQL" )) return WBEM_E_INVALID_QUERY_TYPE;
    return async_start( svc, &svc->table, OP_EVENTS, query, NULL, flags, NULL, sink );
}

static HRESULT WINAPI services_ExecMethod( IWbemServices *iface, const BSTR path, const BSTR method, LONG flags,
                                           IWbemContext *ctx, IWbemClassObject *in, IWbemClassObject **out,
                                           IWbemCallResult **result )
{
    struct services *svc = impl_from_IWbemServices( iface );
    struct objects list = { NULL, 0, 0 };
    HRESULT hr;

    context_record( L"ExecMethod", ctx );
    if (out) *out = NULL;
    if (result) *result = NULL;
    if (FAILED(hr = services_call_begin( svc ))) return hr;
    hr = services_collect_ctx( svc, COLLECT_EXEC, path, method, flags, in, ctx, &list );
    if (SUCCEEDED(hr) && list.count && out)
    {
        *out = list.objs[0];
        list.count = 0;
    }
    objects_free( &list );
    return services_call_end( hr );
}

static HRESULT WINAPI services_ExecMethodAsync( IWbemServices *iface, const BSTR path, const BSTR method, LONG flags,
                                                IWbemContext *ctx, IWbemClassObject *in, IWbemObjectSink *sink )
{
    struct services *svc = impl_from_IWbemServices( iface );
    context_record( L"ExecMethodAsync", ctx );
    return async_start( svc, &svc->table, OP_EXEC, path, method, flags, in, sink );
}

static const IWbemServicesVtbl services_vtbl =
{
    services_QueryInterface,
    services_AddRef,
    services_Release,
    services_OpenNamespace,
    services_CancelAsyncCall,
    services_QueryObjectSink,
    services_GetObject,
    services_GetObjectAsync,
    services_PutClass,
    services_PutClassAsync,
    services_DeleteClass,
    services_DeleteClassAsync,
    services_CreateClassEnum,
    services_CreateClassEnumAsync,
    services_PutInstance,
    services_PutInstanceAsync,
    services_DeleteInstance,
    services_DeleteInstanceAsync,
    services_CreateInstanceEnum,
    services_CreateInstanceEnumAsync,
    services_ExecQuery,
    services_ExecQueryAsync,
    services_ExecNotificationQuery,
    services_ExecNotificationQueryAsync,
    services_ExecMethod,
    services_ExecMethodAsync
};

/* Takes WINE's reference. */
HRESULT services_create( IWbemServices *wine, const struct host *host, IWbemServices **out )
{
    struct services *svc;

    *out = NULL;
    if (!(svc = calloc( 1, sizeof(*svc) ))) return E_OUTOFMEMORY;
    svc->IWbemServices_iface.lpVtbl = &services_vtbl;
    svc->refs = 1;
    svc->held = 1;
    svc->wine = wine;
    svc->host = *host;
    security_init( &svc->security, (IUnknown *)&svc->IWbemServices_iface, "services" );
    /* Lets a client hand the services to another apartment of this process. */
    if (FAILED(CoCreateFreeThreadedMarshaler( (IUnknown *)&svc->IWbemServices_iface, &svc->ftm ))) svc->ftm = NULL;
    testwmi_count( STAT_SERVICES, 1 );
    *out = &svc->IWbemServices_iface;
    return S_OK;
}

/*
 * The enumerators (IEnumWbemClassObject) of ExecQuery, CreateInstanceEnum and
 * CreateClassEnum, and the call results (IWbemCallResult) of PutInstance. The
 * server reads Wine's answer whole under its Wine lock and serves it from a list,
 * so no Wine enumerator outlives the lock. Both implement IClientSecurity (a
 * client sets the blanket on them as on any proxy WMI hands out) and aggregate
 * the free-threaded marshaler, so they can be handed to another apartment. Each
 * method the client calls and the last Release are a round trip to the host.
 */
#include "testwmi.h"

#include <stdlib.h>

void objects_free( struct objects *list )
{
    while (list->count)
    {
        list->count--;
        IWbemClassObject_Release( list->objs[list->count] );
    }
    free( list->objs );
    list->objs = NULL;
    list->cap = 0;
}

HRESULT objects_add( struct objects *list, IWbemClassObject *obj )
{
    if (list->count == list->cap)
    {
        ULONG cap = list->cap ? list->cap * 2 : 16;
        IWbemClassObject **objs = realloc( list->objs, cap * sizeof(*objs) );
        if (!objs)
        {
            IWbemClassObject_Release( obj );
            return E_OUTOFMEMORY;
        }
        list->objs = objs;
        list->cap = cap;
    }
    list->objs[list->count++] = obj;
    return S_OK;
}

/* --- IEnumWbemClassObject ----------------------------------------------------------- */

struct enumerator
{
    IEnumWbemClassObject IEnumWbemClassObject_iface;
    struct security security;
    IUnknown *ftm;
    LONG refs;
    struct host host;
    LONG fail_after;        /* configure{ next_fail_after } when it was made */
    HRESULT fail_hr;
    struct objects list;
    ULONG pos;              /* under testwmi_cs */
};

static inline struct enumerator *impl_from_IEnumWbemClassObject( IEnumWbemClassObject *iface )
{
    return CONTAINING_RECORD( iface, struct enumerator, IEnumWbemClassObject_iface );
}

static HRESULT WINAPI enum_QueryInterface( IEnumWbemClassObject *iface, REFIID riid, void **obj )
{
    struct enumerator *e = impl_from_IEnumWbemClassObject( iface );

    if (!obj) return E_POINTER;
    if (IsEqualGUID( riid, &IID_IUnknown ) || IsEqualGUID( riid, &IID_IEnumWbemClassObject ))
        *obj = &e->IEnumWbemClassObject_iface;
    else if (IsEqualGUID( riid, &IID_IClientSecurity ))
        *obj = &e->security.IClientSecurity_iface;
    else if (e->ftm && (IsEqualGUID( riid, &IID_IMarshal ) || IsEqualGUID( riid, &IID_IAgileObject )))
        return IUnknown_QueryInterface( e->ftm, riid, obj );
    else
    {
        *obj = NULL;
        return E_NOINTERFACE;
    }
    IEnumWbemClassObject_AddRef( iface );
    return S_OK;
}

static ULONG WINAPI enum_AddRef( IEnumWbemClassObject *iface )
{
    return InterlockedIncrement( &impl_from_IEnumWbemClassObject( iface )->refs );
}

static ULONG WINAPI enum_Release( IEnumWbemClassObject *iface )
{
    struct enumerator *e = impl_from_IEnumWbemClassObject( iface );
    LONG refs = InterlockedDecrement( &e->refs );

    if (!refs)
    {
        host_round_trip( &e->host );
        objects_free( &e->list );
        if (e->ftm) IUnknown_Release( e->ftm );
        security_free( &e->security );
        free( e );
        testwmi_count( STAT_ENUMERATORS, -1 );
    }
    return refs;
}

static HRESULT WINAPI enum_Reset( IEnumWbemClassObject *iface )
{
    struct enumerator *e = impl_from_IEnumWbemClassObject( iface );
    HRESULT hr;

    if (FAILED(hr = host_round_trip( &e->host ))) return hr;
    security_check( &e->security );
    EnterCriticalSection( &testwmi_cs );
    e->pos = 0;
    LeaveCriticalSection( &testwmi_cs );
    return WBEM_S_NO_ERROR;
}

static HRESULT WINAPI enum_Next( IEnumWbemClassObject *iface, LONG timeout, ULONG count, IWbemClassObject **objs,
                                 ULONG *returned )
{
    struct enumerator *e = impl_from_IEnumWbemClassObject( iface );
    ULONG i = 0;
    HRESULT hr;

    (void)timeout;
    if (!objs || !returned) return WBEM_E_INVALID_PARAMETER;
    *returned = 0;
    if (FAILED(hr = host_round_trip( &e->host ))) return hr;
    security_check( &e->security );
    EnterCriticalSection( &testwmi_cs );
    for (; i < count && e->pos < e->list.count && (e->fail_after < 0 || e->pos < (ULONG)e->fail_after); i++)
    {
        objs[i] = e->list.objs[e->pos++];
        IWbemClassObject_AddRef( objs[i] );
    }
    /* configure{ next_fail_after }: the batch that reaches the limit fails, with the
     * objects before it (a Next that fails may have returned some). */
    hr = i == count ? WBEM_S_NO_ERROR : WBEM_S_FALSE;
    if (i < count && e->fail_after >= 0 && e->pos == (ULONG)e->fail_after) hr = e->fail_hr;
    LeaveCriticalSection( &testwmi_cs );
    *returned = i;
    return hr;
}

static HRESULT WINAPI enum_NextAsync( IEnumWbemClassObject *iface, ULONG count, IWbemObjectSink *sink )
{
    (void)iface; (void)count; (void)sink;
    return WBEM_E_NOT_SUPPORTED;
}

static HRESULT WINAPI enum_Clone( IEnumWbemClassObject *iface, IEnumWbemClassObject **out )
{
    (void)iface;
    if (out) *out = NULL;
    return WBEM_E_NOT_SUPPORTED;
}

static HRESULT WINAPI enum_Skip( IEnumWbemClassObject *iface, LONG timeout, ULONG count )
{
    struct enumerator *e = impl_from_IEnumWbemClassObject( iface );
    ULONG left;
    HRESULT hr;

    (void)timeout;
    if (FAILED(hr = host_round_trip( &e->host ))) return hr;
    security_check( &e->security );
    EnterCriticalSection( &testwmi_cs );
    left = e->list.count - e->pos;
    e->pos += count < left ? count : left;
    LeaveCriticalSection( &testwmi_cs );
    return count <= left ? WBEM_S_NO_ERROR : WBEM_S_FALSE;
}

static const IEnumWbemClassObjectVtbl enum_vtbl =
{
    enum_QueryInterface,
    enum_AddRef,
    enum_Release,
    enum_Reset,
    enum_Next,
    enum_NextAsync,
    enum_Clone,
    enum_Skip
};

HRESULT enum_create( const struct host *host, struct objects *list, IEnumWbemClassObject **out )
{
    struct enumerator *e;

    *out = NULL;
    if (!(e = calloc( 1, sizeof(*e) )))
    {
        objects_free( list );
        return E_OUTOFMEMORY;
    }
    e->IEnumWbemClassObject_iface.lpVtbl = &enum_vtbl;
    e->refs = 1;
    e->host = *host;
    EnterCriticalSection( &testwmi_cs );
    e->fail_after = testwmi_config.next_fail_after;
    e->fail_hr = testwmi_config.next_hr;
    LeaveCriticalSection( &testwmi_cs );
    e->list = *list;
    memset( list, 0, sizeof(*list) );
    security_init( &e->security, (IUnknown *)&e->IEnumWbemClassObject_iface, "enumerator" );
    /* Without the marshaler the object still works in-process; only marshalling fails. */
    if (FAILED(CoCreateFreeThreadedMarshaler( (IUnknown *)&e->IEnumWbemClassObject_iface, &e->ftm ))) e->ftm = NULL;
    testwmi_count( STAT_ENUMERATORS, 1 );
    *out = &e->IEnumWbemClassObject_iface;
    return S_OK;
}

/* --- IWbemCallResult ------------------------------------------------------------------ */

struct call_result
{
    IWbemCallResult IWbemCallResult_iface;
    struct security security;
    IUnknown *ftm;
    LONG refs;
    struct host host;
    HRESULT status;
    BSTR path;
    IWbemClassObject *obj;
};

static inline struct call_result *impl_from_IWbemCallResult( IWbemCallResult *iface )
{
    return CONTAINING_RECORD( iface, struct call_result, IWbemCallResult_iface );
}

static HRESULT WINAPI result_QueryInterface( IWbemCallResult *iface, REFIID riid, void **obj )
{
    struct call_result *r = impl_from_IWbemCallResult( iface );

    if (!obj) return E_POINTER;
    if (IsEqualGUID( riid, &IID_IUnknown ) || IsEqualGUID( riid, &IID_IWbemCallResult ))
        *obj = &r->IWbemCallResult_iface;
    else if (IsEqualGUID( riid, &IID_IClientSecurity ))
        *obj = &r->security.IClientSecurity_iface;
    else if (r->ftm && (IsEqualGUID( riid, &IID_IMarshal ) || IsEqualGUID( riid, &IID_IAgileObject )))
        return IUnknown_QueryInterface( r->ftm, riid, obj );
    else
    {
        *obj = NULL;
        return E_NOINTERFACE;
    }
    IWbemCallResult_AddRef( iface );
    return S_OK;
}

static ULONG WINAPI result_AddRef( IWbemCallResult *iface )
{
    return InterlockedIncrement( &impl_from_IWbemCallResult( iface )->refs );
}

static ULONG WINAPI result_Release( IWbemCallResult *iface )
{
    struct call_result *r = impl_from_IWbemCallResult( iface );
    LONG refs = InterlockedDecrement( &r->refs );

    if (!refs)
    {
        host_round_trip( &r->host );
        SysFreeString( r->path );
        if (r->obj) IWbemClassObject_Release( r->obj );
        if (r->ftm) IUnknown_Release( r->ftm );
        security_free( &r->security );
        free( r );
        testwmi_count( STAT_CALL_RESULTS, -1 );
    }
    return refs;
}

static HRESULT WINAPI result_GetResultObject( IWbemCallResult *iface, LONG timeout, IWbemClassObject **obj )
{
    struct call_result *r = impl_from_IWbemCallResult( iface );
    HRESULT hr;

    (void)timeout;
    if (!obj) return WBEM_E_INVALID_PARAMETER;
    if (FAILED(hr = host_round_trip( &r->host ))) return hr;
    security_check( &r->security );
    if ((*obj = r->obj)) IWbemClassObject_AddRef( r->obj );
    if (r->obj) return WBEM_S_NO_ERROR;
    return FAILED(r->status) ? r->status : (HRESULT)WBEM_E_INVALID_OPERATION;
}

static HRESULT WINAPI result_GetResultString( IWbemCallResult *iface, LONG timeout, BSTR *str )
{
    struct call_result *r = impl_from_IWbemCallResult( iface );
    HRESULT hr;

    (void)timeout;
    if (!str) return WBEM_E_INVALID_PARAMETER;
    *str = NULL;
    if (FAILED(hr = host_round_trip( &r->host ))) return hr;
    security_check( &r->security );
    if (FAILED(r->status)) return r->status;
    if (!r->path) return WBEM_E_INVALID_OPERATION;
    return (*str = SysAllocString( r->path )) ? WBEM_S_NO_ERROR : E_OUTOFMEMORY;
}

static HRESULT WINAPI result_GetResultServices( IWbemCallResult *iface, LONG timeout, IWbemServices **svc )
{
    (void)iface; (void)timeout;
    if (svc) *svc = NULL;
    return WBEM_E_INVALID_OPERATION;
}

static HRESULT WINAPI result_GetCallStatus( IWbemCallResult *iface, LONG timeout, LONG *status )
{
    struct call_result *r = impl_from_IWbemCallResult( iface );
    HRESULT hr;

    (void)timeout;
    if (!status) return WBEM_E_INVALID_PARAMETER;
    if (FAILED(hr = host_round_trip( &r->host ))) return hr;
    security_check( &r->security );
    *status = r->status;
    return WBEM_S_NO_ERROR;
}

static const IWbemCallResultVtbl result_vtbl =
{
    result_QueryInterface,
    result_AddRef,
    result_Release,
    result_GetResultObject,
    result_GetResultString,
    result_GetResultServices,
    result_GetCallStatus
};

HRESULT call_result_create( const struct host *host, HRESULT status, BSTR path, IWbemClassObject *obj,
                            IWbemCallResult **out )
{
    struct call_result *r;

    *out = NULL;
    if (!(r = calloc( 1, sizeof(*r) )))
    {
        SysFreeString( path );
        return E_OUTOFMEMORY;
    }
    r->IWbemCallResult_iface.lpVtbl = &result_vtbl;
    r->refs = 1;
    r->host = *host;
    r->status = status;
    r->path = path;
    if ((r->obj = obj)) IWbemClassObject_AddRef( obj );
    security_init( &r->security, (IUnknown *)&r->IWbemCallResult_iface, "call_result" );
    if (FAILED(CoCreateFreeThreadedMarshaler( (IUnknown *)&r->IWbemCallResult_iface, &r->ftm ))) r->ftm = NULL;
    testwmi_count( STAT_CALL_RESULTS, 1 );
    *out = &r->IWbemCallResult_iface;
    return S_OK;
}

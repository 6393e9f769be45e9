/*
 * configure{ proxies = true }: what a client holds is a DCOM proxy, not the object.
 * A proxy belongs to the apartment that made it and is not agile:
 * - a call from another apartment fails RPC_E_WRONG_THREAD (counted: wrong_thread);
 * - it is marshalled by its own IMarshal (the unmarshal class is the server's own
 *   CLSID): unmarshalled in the same apartment it is the same proxy, in another
 *   one it is a new proxy whose blanket is the default, as COM's standard
 *   marshaling gives (the module must set the blanket again);
 * - its IUnknown is an interface of its own with a blanket of its own, recorded in
 *   testwmi.blankets() as kind "unknown" (COM: set the blanket on IUnknown too);
 * - a call made through it while its interface still has the default blanket, on
 *   a remote host, is counted (default_blanket_calls);
 * - a sink passed from an STA is called through that thread's message queue: the
 *   server's thread posts the call and waits, and the call runs only when the STA
 *   pumps messages (counted: posted_waiting while queued, posted_calls once run).
 * Enumerators and call results obtained through a proxy are proxies of its apartment.
 * The wrapped object (the services, enumerator or call result) does the work.
 */
#include "testwmi.h"

#include <stdlib.h>

#define POSTED_MESSAGE (WM_APP + 0x57)
#define POSTED_TIMEOUT 30000    /* ms a server thread waits for an STA that never pumps */

enum proxy_kind { PROXY_SERVICES, PROXY_ENUM, PROXY_RESULT };

struct proxy
{
    IUnknown IUnknown_iface;                /* the identity: a blanket of its own */
    IWbemServices IWbemServices_iface;      /* one of these three, by kind */
    IEnumWbemClassObject IEnumWbemClassObject_iface;
    IWbemCallResult IWbemCallResult_iface;
    IMarshal IMarshal_iface;
    IClientSecurity IClientSecurity_iface;
    struct security unknown;                /* the IUnknown's blanket */
    LONG refs;
    enum proxy_kind kind;
    IUnknown *target;                       /* the server's object */
    DWORD apartment;                        /* 0: the MTA; else the STA's thread id */
    BOOL remote;
    LONG blanket_set;                       /* the interface's blanket was set */
};

static const IUnknownVtbl proxy_unknown_vtbl;
static const IWbemServicesVtbl proxy_services_vtbl;
static const IEnumWbemClassObjectVtbl proxy_enum_vtbl;
static const IWbemCallResultVtbl proxy_result_vtbl;
static const IMarshalVtbl proxy_marshal_vtbl;
static const IClientSecurityVtbl proxy_security_vtbl;

static DWORD proxy_current_apartment( void )
{
    APTTYPE type;
    APTTYPEQUALIFIER qualifier;

    if (SUCCEEDED(CoGetApartmentType( &type, &qualifier )) && (type == APTTYPE_STA || type == APTTYPE_MAINSTA))
        return GetCurrentThreadId();
    return 0;
}

static HRESULT proxy_create( enum proxy_kind kind, IUnknown *target, BOOL remote, struct proxy **out );

static inline struct proxy *proxy_from_unknown( IUnknown *iface )
{
    return CONTAINING_RECORD( iface, struct proxy, IUnknown_iface );
}

static HRESULT WINAPI proxy_unknown_QueryInterface( IUnknown *iface, REFIID riid, void **obj )
{
    struct proxy *p = proxy_from_unknown( iface );

    if (!obj) return E_POINTER;
    *obj = NULL;
    if (IsEqualGUID( riid, &IID_IUnknown )) *obj = &p->IUnknown_iface;
    else if (IsEqualGUID( riid, &IID_IMarshal )) *obj = &p->IMarshal_iface;
    else if (IsEqualGUID( riid, &IID_IClientSecurity )) *obj = &p->IClientSecurity_iface;
    else if (p->kind == PROXY_SERVICES && IsEqualGUID( riid, &IID_IWbemServices )) *obj = &p->IWbemServices_iface;
    else if (p->kind == PROXY_ENUM && IsEqualGUID( riid, &IID_IEnumWbemClassObject ))
        *obj = &p->IEnumWbemClassObject_iface;
    else if (p->kind == PROXY_RESULT && IsEqualGUID( riid, &IID_IWbemCallResult )) *obj = &p->IWbemCallResult_iface;
    else return E_NOINTERFACE;
    InterlockedIncrement( &p->refs );
    return S_OK;
}

static ULONG WINAPI proxy_unknown_AddRef( IUnknown *iface )
{
    return InterlockedIncrement( &proxy_from_unknown( iface )->refs );
}

static ULONG WINAPI proxy_unknown_Release( IUnknown *iface )
{
    struct proxy *p = proxy_from_unknown( iface );
    LONG refs = InterlockedDecrement( &p->refs );

    if (!refs)
    {
        IUnknown_Release( p->target );
        security_free( &p->unknown );
        free( p );
    }
    return refs;
}

static const IUnknownVtbl proxy_unknown_vtbl =
{
    proxy_unknown_QueryInterface,
    proxy_unknown_AddRef,
    proxy_unknown_Release
};

/* Every call through the proxy: from its own apartment, else RPC_E_WRONG_THREAD. */
static HRESULT proxy_enter( struct proxy *p )
{
    if (proxy_current_apartment() != p->apartment)
    {
        testwmi_count( STAT_WRONG_THREAD, 1 );
        return RPC_E_WRONG_THREAD;
    }
    if (p->remote && !InterlockedCompareExchange( &p->blanket_set, 0, 0 ))
        testwmi_count( STAT_DEFAULT_BLANKET_CALLS, 1 );
    return S_OK;
}

/* An enumerator or call result handed out through P: a proxy of P's apartment. */
static HRESULT proxy_wrap_out( struct proxy *p, HRESULT hr, enum proxy_kind kind, void **out )
{
    struct proxy *q;

    if (FAILED(hr) || !out || !*out) return hr;
    if (FAILED(proxy_create( kind, *out, p->remote, &q )))
    {
        IUnknown_Release( (IUnknown *)*out );
        *out = NULL;
        return E_OUTOFMEMORY;
    }
    IUnknown_Release( (IUnknown *)*out );   /* q holds it */
    if (kind == PROXY_ENUM) *out = &q->IEnumWbemClassObject_iface;
    else *out = &q->IWbemCallResult_iface;
    return hr;
}

/* --- sinks of an STA: called through its message queue ----------------------------- */

struct posted_sink
{
    IWbemObjectSink IWbemObjectSink_iface;
    LONG refs;
    struct posted_sink *next;       /* in posted_sinks, under testwmi_cs */
    IWbemObjectSink *client;
    IUnknown *services;             /* the server's services object it was passed to (no reference) */
    DWORD thread;
    HWND window;
};
static struct posted_sink *posted_sinks;   /* under testwmi_cs */

/* One sink call waiting in the STA's queue: the window procedure runs it. */
struct posted_call
{
    LONG refs;
    HANDLE done;
    IWbemObjectSink *client;
    BOOL status;
    LONG count;
    IWbemClassObject **objs;
    LONG flags;
    HRESULT hr;
    BSTR param;
    IWbemClassObject *obj;
    HRESULT result;
};

static void posted_call_release( struct posted_call *c )
{
    LONG i;
    if (InterlockedDecrement( &c->refs )) return;
    for (i = 0; i < c->count; i++) IWbemClassObject_Release( c->objs[i] );
    free( c->objs );
    SysFreeString( c->param );
    if (c->obj) IWbemClassObject_Release( c->obj );
    IWbemObjectSink_Release( c->client );
    CloseHandle( c->done );
    free( c );
}

static LRESULT CALLBACK posted_window_proc( HWND hwnd, UINT msg, WPARAM wparam, LPARAM lparam )
{
    struct posted_call *c = (struct posted_call *)lparam;

    if (msg != POSTED_MESSAGE) return DefWindowProcW( hwnd, msg, wparam, lparam );
    testwmi_count( STAT_POSTED_WAITING, -1 );
    testwmi_count( STAT_POSTED_CALLS, 1 );
    if (c->status) c->result = IWbemObjectSink_SetStatus( c->client, c->flags, c->hr, c->param, c->obj );
    else c->result = IWbemObjectSink_Indicate( c->client, c->count, c->objs );
    SetEvent( c->done );
    posted_call_release( c );
    return 0;
}

/* This thread's message-only window (made once; it goes with the thread). */
static HWND posted_window( void )
{
    static DWORD slot = TLS_OUT_OF_INDEXES;
    static LONG registered;
    HWND hwnd;

    EnterCriticalSection( &testwmi_cs );
    if (slot == TLS_OUT_OF_INDEXES) slot = TlsAlloc();
    if (!registered)
    {
        WNDCLASSW wc = { 0 };
        wc.lpfnWndProc = posted_window_proc;
        wc.hInstance = GetModuleHandleW( NULL );
        wc.lpszClassName = L"testwmi_sta_calls";
        registered = RegisterClassW( &wc ) != 0;
    }
    LeaveCriticalSection( &testwmi_cs );
    if (slot == TLS_OUT_OF_INDEXES) return NULL;
    if (!(hwnd = TlsGetValue( slot )))
    {
        hwnd = CreateWindowExW( 0, L"testwmi_sta_calls", NULL, 0, 0, 0, 0, 0, HWND_MESSAGE, NULL,
                                GetModuleHandleW( NULL ), NULL );
        TlsSetValue( slot, hwnd );
    }
    return hwnd;
}

static inline struct posted_sink *posted_from_sink( IWbemObjectSink *iface )
{
    return CONTAINING_RECORD( iface, struct posted_sink, IWbemObjectSink_iface );
}

static HRESULT WINAPI posted_QueryInterface( IWbemObjectSink *iface, REFIID riid, void **obj )
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

static ULONG WINAPI posted_AddRef( IWbemObjectSink *iface )
{
    return InterlockedIncrement( &posted_from_sink( iface )->refs );
}

static ULONG WINAPI posted_Release( IWbemObjectSink *iface )
{
    struct posted_sink *s = posted_from_sink( iface );
    struct posted_sink **at;
    LONG refs = InterlockedDecrement( &s->refs );

    if (!refs)
    {
        EnterCriticalSection( &testwmi_cs );
        for (at = &posted_sinks; *at && *at != s; at = &(*at)->next);
        if (*at) *at = s->next;
        LeaveCriticalSection( &testwmi_cs );
        IWbemObjectSink_Release( s->client );
        free( s );
    }
    return refs;
}

/* Runs C on the sink's STA: at once when already on it, else through its queue. */
static HRESULT posted_run( struct posted_sink *s, struct posted_call *c )
{
    HRESULT hr;

    c->client = s->client;
    IWbemObjectSink_AddRef( c->client );
    if (GetCurrentThreadId() == s->thread)
    {
        c->refs = 1;
        c->done = NULL;
        if (c->status) hr = IWbemObjectSink_SetStatus( c->client, c->flags, c->hr, c->param, c->obj );
        else hr = IWbemObjectSink_Indicate( c->client, c->count, c->objs );
        posted_call_release( c );
        return hr;
    }
    c->refs = 2;
    if (!(c->done = CreateEventW( NULL, TRUE, FALSE, NULL )))
    {
        c->refs = 1;
        posted_call_release( c );
        return E_OUTOFMEMORY;
    }
    testwmi_count( STAT_POSTED_WAITING, 1 );
    if (!PostMessageW( s->window, POSTED_MESSAGE, 0, (LPARAM)c ))
    {
        /* The STA is gone: so is the client. */
        testwmi_count( STAT_POSTED_WAITING, -1 );
        posted_call_release( c );
        posted_call_release( c );
        return RPC_E_DISCONNECTED;
    }
    hr = WaitForSingleObject( c->done, POSTED_TIMEOUT ) == WAIT_OBJECT_0 ? c->result : RPC_E_TIMEOUT;
    posted_call_release( c );
    return hr;
}

static HRESULT WINAPI posted_Indicate( IWbemObjectSink *iface, LONG count, IWbemClassObject **objs )
{
    struct posted_call *c = calloc( 1, sizeof(*c) );
    LONG i;

    if (!c || !(c->objs = calloc( count > 0 ? count : 1, sizeof(*objs) )))
    {
        free( c );
        return E_OUTOFMEMORY;
    }
    /* The call's own copies: it may run after this Indicate gave up waiting. */
    for (i = 0; i < count; i++)
    {
        c->objs[i] = objs[i];
        IWbemClassObject_AddRef( objs[i] );
    }
    c->count = count;
    return posted_run( posted_from_sink( iface ), c );
}

static HRESULT WINAPI posted_SetStatus( IWbemObjectSink *iface, LONG flags, HRESULT hr, BSTR param,
                                        IWbemClassObject *obj )
{
    struct posted_call *c = calloc( 1, sizeof(*c) );

    if (!c) return E_OUTOFMEMORY;
    c->status = TRUE;
    c->flags = flags;
    c->hr = hr;
    c->param = param ? SysAllocString( param ) : NULL;
    if ((c->obj = obj)) IWbemClassObject_AddRef( obj );
    return posted_run( posted_from_sink( iface ), c );
}

static const IWbemObjectSinkVtbl posted_vtbl =
{
    posted_QueryInterface,
    posted_AddRef,
    posted_Release,
    posted_Indicate,
    posted_SetStatus
};

IWbemObjectSink *proxy_sink_client( IWbemObjectSink *sink )
{
    return sink->lpVtbl == &posted_vtbl ? posted_from_sink( sink )->client : sink;
}

/* The sink the server is given for CLIENT, passed through P: CLIENT itself in the
 * MTA; in an STA, a sink that calls CLIENT through the STA's queue. */
static IWbemObjectSink *posted_sink_for( struct proxy *p, IWbemObjectSink *client )
{
    struct posted_sink *s;

    if (!client || !p->apartment) return client;
    if (!(s = calloc( 1, sizeof(*s) ))) return NULL;
    s->IWbemObjectSink_iface.lpVtbl = &posted_vtbl;
    s->refs = 1;
    s->client = client;
    IWbemObjectSink_AddRef( client );
    s->services = p->target;
    s->thread = GetCurrentThreadId();
    if (!(s->window = posted_window()))
    {
        IWbemObjectSink_Release( client );
        free( s );
        return NULL;
    }
    EnterCriticalSection( &testwmi_cs );
    s->next = posted_sinks;
    posted_sinks = s;
    LeaveCriticalSection( &testwmi_cs );
    return &s->IWbemObjectSink_iface;
}

/* The sink the server was given for CLIENT (AddRef'd), as DCOM finds the same stub
 * for the same object: CancelAsyncCall must name what the start named. */
static IWbemObjectSink *posted_sink_find( struct proxy *p, IWbemObjectSink *client )
{
    struct posted_sink *s;

    if (!client || !p->apartment) return client ? (IWbemObjectSink_AddRef( client ), client) : NULL;
    EnterCriticalSection( &testwmi_cs );
    for (s = posted_sinks; s; s = s->next)
        if (s->client == client && s->services == p->target) break;
    if (s) IWbemObjectSink_AddRef( &s->IWbemObjectSink_iface );
    LeaveCriticalSection( &testwmi_cs );
    if (s) return &s->IWbemObjectSink_iface;
    IWbemObjectSink_AddRef( client );
    return client;
}

/* An *Async start through P: the server gets the sink of P's apartment. */
#define PROXY_ASYNC( call ) \
    do { \
        IWbemObjectSink *s_; \
        HRESULT hr_; \
        if (FAILED(hr_ = proxy_enter( p ))) return hr_; \
        if (sink && !(s_ = posted_sink_for( p, sink ))) return E_OUTOFMEMORY; \
        if (!sink) s_ = NULL; \
        hr_ = (call); \
        if (s_ && s_ != sink) IWbemObjectSink_Release( s_ ); \
        return hr_; \
    } while (0)

/* --- IWbemServices ------------------------------------------------------------------- */

static inline struct proxy *proxy_from_services( IWbemServices *iface )
{
    return CONTAINING_RECORD( iface, struct proxy, IWbemServices_iface );
}

#define SVC(p) ((IWbemServices *)(p)->target)

static HRESULT WINAPI psvc_QueryInterface( IWbemServices *iface, REFIID riid, void **obj )
{
    return proxy_unknown_QueryInterface( &proxy_from_services( iface )->IUnknown_iface, riid, obj );
}

static ULONG WINAPI psvc_AddRef( IWbemServices *iface )
{
    return proxy_unknown_AddRef( &proxy_from_services( iface )->IUnknown_iface );
}

static ULONG WINAPI psvc_Release( IWbemServices *iface )
{
    return proxy_unknown_Release( &proxy_from_services( iface )->IUnknown_iface );
}

static HRESULT WINAPI psvc_OpenNamespace( IWbemServices *iface, const BSTR ns, LONG flags, IWbemContext *ctx,
                                          IWbemServices **out, IWbemCallResult **result )
{
    struct proxy *p = proxy_from_services( iface );
    HRESULT hr = proxy_enter( p );
    return FAILED(hr) ? hr : IWbemServices_OpenNamespace( SVC(p), ns, flags, ctx, out, result );
}

static HRESULT WINAPI psvc_CancelAsyncCall( IWbemServices *iface, IWbemObjectSink *sink )
{
    struct proxy *p = proxy_from_services( iface );
    IWbemObjectSink *s;
    HRESULT hr;

    if (FAILED(hr = proxy_enter( p ))) return hr;
    s = posted_sink_find( p, sink );
    hr = IWbemServices_CancelAsyncCall( SVC(p), s );
    if (s) IWbemObjectSink_Release( s );
    return hr;
}

static HRESULT WINAPI psvc_QueryObjectSink( IWbemServices *iface, LONG flags, IWbemObjectSink **sink )
{
    struct proxy *p = proxy_from_services( iface );
    HRESULT hr = proxy_enter( p );
    return FAILED(hr) ? hr : IWbemServices_QueryObjectSink( SVC(p), flags, sink );
}

static HRESULT WINAPI psvc_GetObject( IWbemServices *iface, const BSTR path, LONG flags, IWbemContext *ctx,
                                      IWbemClassObject **obj, IWbemCallResult **result )
{
    struct proxy *p = proxy_from_services( iface );
    HRESULT hr = proxy_enter( p );
    if (FAILED(hr)) return hr;
    hr = IWbemServices_GetObject( SVC(p), path, flags, ctx, obj, result );
    return proxy_wrap_out( p, hr, PROXY_RESULT, (void **)result );
}

static HRESULT WINAPI psvc_GetObjectAsync( IWbemServices *iface, const BSTR path, LONG flags, IWbemContext *ctx,
                                           IWbemObjectSink *sink )
{
    struct proxy *p = proxy_from_services( iface );
    PROXY_ASYNC( IWbemServices_GetObjectAsync( SVC(p), path, flags, ctx, s_ ) );
}

static HRESULT WINAPI psvc_PutClass( IWbemServices *iface, IWbemClassObject *obj, LONG flags, IWbemContext *ctx,
                                     IWbemCallResult **result )
{
    struct proxy *p = proxy_from_services( iface );
    HRESULT hr = proxy_enter( p );
    return FAILED(hr) ? hr : IWbemServices_PutClass( SVC(p), obj, flags, ctx, result );
}

static HRESULT WINAPI psvc_PutClassAsync( IWbemServices *iface, IWbemClassObject *obj, LONG flags,
                                          IWbemContext *ctx, IWbemObjectSink *sink )
{
    struct proxy *p = proxy_from_services( iface );
    PROXY_ASYNC( IWbemServices_PutClassAsync( SVC(p), obj, flags, ctx, s_ ) );
}

static HRESULT WINAPI psvc_DeleteClass( IWbemServices *iface, const BSTR cls, LONG flags, IWbemContext *ctx,
                                        IWbemCallResult **result )
{
    struct proxy *p = proxy_from_services( iface );
    HRESULT hr = proxy_enter( p );
    return FAILED(hr) ? hr : IWbemServices_DeleteClass( SVC(p), cls, flags, ctx, result );
}

static HRESULT WINAPI psvc_DeleteClassAsync( IWbemServices *iface, const BSTR cls, LONG flags, IWbemContext *ctx,
                                             IWbemObjectSink *sink )
{
    struct proxy *p = proxy_from_services( iface );
    PROXY_ASYNC( IWbemServices_DeleteClassAsync( SVC(p), cls, flags, ctx, s_ ) );
}

static HRESULT WINAPI psvc_CreateClassEnum( IWbemServices *iface, const BSTR super, LONG flags, IWbemContext *ctx,
                                            IEnumWbemClassObject **out )
{
    struct proxy *p = proxy_from_services( iface );
    HRESULT hr = proxy_enter( p );
    if (FAILED(hr)) return hr;
    hr = IWbemServices_CreateClassEnum( SVC(p), super, flags, ctx, out );
    return proxy_wrap_out( p, hr, PROXY_ENUM, (void **)out );
}

static HRESULT WINAPI psvc_CreateClassEnumAsync( IWbemServices *iface, const BSTR super, LONG flags,
                                                 IWbemContext *ctx, IWbemObjectSink *sink )
{
    struct proxy *p = proxy_from_services( iface );
    PROXY_ASYNC( IWbemServices_CreateClassEnumAsync( SVC(p), super, flags, ctx, s_ ) );
}

static HRESULT WINAPI psvc_PutInstance( IWbemServices *iface, IWbemClassObject *obj, LONG flags, IWbemContext *ctx,
                                        IWbemCallResult **result )
{
    struct proxy *p = proxy_from_services( iface );
    HRESULT hr = proxy_enter( p );
    if (FAILED(hr)) return hr;
    hr = IWbemServices_PutInstance( SVC(p), obj, flags, ctx, result );
    return proxy_wrap_out( p, hr, PROXY_RESULT, (void **)result );
}

static HRESULT WINAPI psvc_PutInstanceAsync( IWbemServices *iface, IWbemClassObject *obj, LONG flags,
                                             IWbemContext *ctx, IWbemObjectSink *sink )
{
    struct proxy *p = proxy_from_services( iface );
    PROXY_ASYNC( IWbemServices_PutInstanceAsync( SVC(p), obj, flags, ctx, s_ ) );
}

static HRESULT WINAPI psvc_DeleteInstance( IWbemServices *iface, const BSTR path, LONG flags, IWbemContext *ctx,
                                           IWbemCallResult **result )
{
    struct proxy *p = proxy_from_services( iface );
    HRESULT hr = proxy_enter( p );
    if (FAILED(hr)) return hr;
    hr = IWbemServices_DeleteInstance( SVC(p), path, flags, ctx, result );
    return proxy_wrap_out( p, hr, PROXY_RESULT, (void **)result );
}

static HRESULT WINAPI psvc_DeleteInstanceAsync( IWbemServices *iface, const BSTR path, LONG flags,
                                                IWbemContext *ctx, IWbemObjectSink *sink )
{
    struct proxy *p = proxy_from_services( iface );
    PROXY_ASYNC( IWbemServices_DeleteInstanceAsync( SVC(p), path, flags, ctx, s_ ) );
}

static HRESULT WINAPI psvc_CreateInstanceEnum( IWbemServices *iface, const BSTR cls, LONG flags, IWbemContext *ctx,
                                               IEnumWbemClassObject **out )
{
    struct proxy *p = proxy_from_services( iface );
    HRESULT hr = proxy_enter( p );
    if (FAILED(hr)) return hr;
    hr = IWbemServices_CreateInstanceEnum( SVC(p), cls, flags, ctx, out );
    return proxy_wrap_out( p, hr, PROXY_ENUM, (void **)out );
}

static HRESULT WINAPI psvc_CreateInstanceEnumAsync( IWbemServices *iface, const BSTR cls, LONG flags,
                                                    IWbemContext *ctx, IWbemObjectSink *sink )
{
    struct proxy *p = proxy_from_services( iface );
    PROXY_ASYNC( IWbemServices_CreateInstanceEnumAsync( SVC(p), cls, flags, ctx, s_ ) );
}

static HRESULT WINAPI psvc_ExecQuery( IWbemServices *iface, const BSTR lang, const BSTR query, LONG flags,
                                      IWbemContext *ctx, IEnumWbemClassObject **out )
{
    struct proxy *p = proxy_from_services( iface );
    HRESULT hr = proxy_enter( p );
    if (FAILED(hr)) return hr;
    hr = IWbemServices_ExecQuery( SVC(p), lang, query, flags, ctx, out );
    return proxy_wrap_out( p, hr, PROXY_ENUM, (void **)out );
}

static HRESULT WINAPI psvc_ExecQueryAsync( IWbemServices *iface, const BSTR lang, const BSTR query, LONG flags,
                                           IWbemContext *ctx, IWbemObjectSink *sink )
{
    struct proxy *p = proxy_from_services( iface );
    PROXY_ASYNC( IWbemServices_ExecQueryAsync( SVC(p), lang, query, flags, ctx, s_ ) );
}

static HRESULT WINAPI psvc_ExecNotificationQuery( IWbemServices *iface, const BSTR lang, const BSTR query,
                                                  LONG flags, IWbemContext *ctx, IEnumWbemClassObject **out )
{
    struct proxy *p = proxy_from_services( iface );
    HRESULT hr = proxy_enter( p );
    if (FAILED(hr)) return hr;
    hr = IWbemServices_ExecNotificationQuery( SVC(p), lang, query, flags, ctx, out );
    return proxy_wrap_out( p, hr, PROXY_ENUM, (void **)out );
}

static HRESULT WINAPI psvc_ExecNotificationQueryAsync( IWbemServices *iface, const BSTR lang, const BSTR query,
                                                       LONG flags, IWbemContext *ctx, IWbemObjectSink *sink )
{
    struct proxy *p = proxy_from_services( iface );
    PROXY_ASYNC( IWbemServices_ExecNotificationQueryAsync( SVC(p), lang, query, flags, ctx, s_ ) );
}

static HRESULT WINAPI psvc_ExecMethod( IWbemServices *iface, const BSTR path, const BSTR method, LONG flags,
                                       IWbemContext *ctx, IWbemClassObject *in, IWbemClassObject **out,
                                       IWbemCallResult **result )
{
    struct proxy *p = proxy_from_services( iface );
    HRESULT hr = proxy_enter( p );
    if (FAILED(hr)) return hr;
    hr = IWbemServices_ExecMethod( SVC(p), path, method, flags, ctx, in, out, result );
    return proxy_wrap_out( p, hr, PROXY_RESULT, (void **)result );
}

static HRESULT WINAPI psvc_ExecMethodAsync( IWbemServices *iface, const BSTR path, const BSTR method, LONG flags,
                                            IWbemContext *ctx, IWbemClassObject *in, IWbemObjectSink *sink )
{
    struct proxy *p = proxy_from_services( iface );
    PROXY_ASYNC( IWbemServices_ExecMethodAsync( SVC(p), path, method, flags, ctx, in, s_ ) );
}

static const IWbemServicesVtbl proxy_services_vtbl =
{
    psvc_QueryInterface, psvc_AddRef, psvc_Release, psvc_OpenNamespace, psvc_CancelAsyncCall,
    psvc_QueryObjectSink, psvc_GetObject, psvc_GetObjectAsync, psvc_PutClass, psvc_PutClassAsync,
    psvc_DeleteClass, psvc_DeleteClassAsync, psvc_CreateClassEnum, psvc_CreateClassEnumAsync,
    psvc_PutInstance, psvc_PutInstanceAsync, psvc_DeleteInstance, psvc_DeleteInstanceAsync,
    psvc_CreateInstanceEnum, psvc_CreateInstanceEnumAsync, psvc_ExecQuery, psvc_ExecQueryAsync,
    psvc_ExecNotificationQuery, psvc_ExecNotificationQueryAsync, psvc_ExecMethod, psvc_ExecMethodAsync
};

/* --- IEnumWbemClassObject -------------------------------------------------------------- */

static inline struct proxy *proxy_from_enum( IEnumWbemClassObject *iface )
{
    return CONTAINING_RECORD( iface, struct proxy, IEnumWbemClassObject_iface );
}

#define ENUM(p) ((IEnumWbemClassObject *)(p)->target)

static HRESULT WINAPI penum_QueryInterface( IEnumWbemClassObject *iface, REFIID riid, void **obj )
{
    return proxy_unknown_QueryInterface( &proxy_from_enum( iface )->IUnknown_iface, riid, obj );
}

static ULONG WINAPI penum_AddRef( IEnumWbemClassObject *iface )
{
    return proxy_unknown_AddRef( &proxy_from_enum( iface )->IUnknown_iface );
}

static ULONG WINAPI penum_Release( IEnumWbemClassObject *iface )
{
    return proxy_unknown_Release( &proxy_from_enum( iface )->IUnknown_iface );
}

static HRESULT WINAPI penum_Reset( IEnumWbemClassObject *iface )
{
    struct proxy *p = proxy_from_enum( iface );
    HRESULT hr = proxy_enter( p );
    return FAILED(hr) ? hr : IEnumWbemClassObject_Reset( ENUM(p) );
}

static HRESULT WINAPI penum_Next( IEnumWbemClassObject *iface, LONG timeout, ULONG count, IWbemClassObject **objs,
                                  ULONG *returned )
{
    struct proxy *p = proxy_from_enum( iface );
    HRESULT hr = proxy_enter( p );
    if (FAILED(hr) && returned) *returned = 0;
    return FAILED(hr) ? hr : IEnumWbemClassObject_Next( ENUM(p), timeout, count, objs, returned );
}

static HRESULT WINAPI penum_NextAsync( IEnumWbemClassObject *iface, ULONG count, IWbemObjectSink *sink )
{
    struct proxy *p = proxy_from_enum( iface );
    PROXY_ASYNC( IEnumWbemClassObject_NextAsync( ENUM(p), count, s_ ) );
}

static HRESULT WINAPI penum_Clone( IEnumWbemClassObject *iface, IEnumWbemClassObject **out )
{
    struct proxy *p = proxy_from_enum( iface );
    HRESULT hr = proxy_enter( p );
    if (FAILED(hr)) return hr;
    hr = IEnumWbemClassObject_Clone( ENUM(p), out );
    return proxy_wrap_out( p, hr, PROXY_ENUM, (void **)out );
}

static HRESULT WINAPI penum_Skip( IEnumWbemClassObject *iface, LONG timeout, ULONG count )
{
    struct proxy *p = proxy_from_enum( iface );
    HRESULT hr = proxy_enter( p );
    return FAILED(hr) ? hr : IEnumWbemClassObject_Skip( ENUM(p), timeout, count );
}

static const IEnumWbemClassObjectVtbl proxy_enum_vtbl =
{
    penum_QueryInterface, penum_AddRef, penum_Release, penum_Reset, penum_Next, penum_NextAsync, penum_Clone,
    penum_Skip
};

/* --- IWbemCallResult -------------------------------------------------------------------- */

static inline struct proxy *proxy_from_result( IWbemCallResult *iface )
{
    return CONTAINING_RECORD( iface, struct proxy, IWbemCallResult_iface );
}

#define RESULT(p) ((IWbemCallResult *)(p)->target)

static HRESULT WINAPI presult_QueryInterface( IWbemCallResult *iface, REFIID riid, void **obj )
{
    return proxy_unknown_QueryInterface( &proxy_from_result( iface )->IUnknown_iface, riid, obj );
}

static ULONG WINAPI presult_AddRef( IWbemCallResult *iface )
{
    return proxy_unknown_AddRef( &proxy_from_result( iface )->IUnknown_iface );
}

static ULONG WINAPI presult_Release( IWbemCallResult *iface )
{
    return proxy_unknown_Release( &proxy_from_result( iface )->IUnknown_iface );
}

static HRESULT WINAPI presult_GetResultObject( IWbemCallResult *iface, LONG timeout, IWbemClassObject **obj )
{
    struct proxy *p = proxy_from_result( iface );
    HRESULT hr = proxy_enter( p );
    return FAILED(hr) ? hr : IWbemCallResult_GetResultObject( RESULT(p), timeout, obj );
}

static HRESULT WINAPI presult_GetResultString( IWbemCallResult *iface, LONG timeout, BSTR *str )
{
    struct proxy *p = proxy_from_result( iface );
    HRESULT hr = proxy_enter( p );
    return FAILED(hr) ? hr : IWbemCallResult_GetResultString( RESULT(p), timeout, str );
}

static HRESULT WINAPI presult_GetResultServices( IWbemCallResult *iface, LONG timeout, IWbemServices **svc )
{
    struct proxy *p = proxy_from_result( iface );
    HRESULT hr = proxy_enter( p );
    return FAILED(hr) ? hr : IWbemCallResult_GetResultServices( RESULT(p), timeout, svc );
}

static HRESULT WINAPI presult_GetCallStatus( IWbemCallResult *iface, LONG timeout, LONG *status )
{
    struct proxy *p = proxy_from_result( iface );
    HRESULT hr = proxy_enter( p );
    return FAILED(hr) ? hr : IWbemCallResult_GetCallStatus( RESULT(p), timeout, status );
}

static const IWbemCallResultVtbl proxy_result_vtbl =
{
    presult_QueryInterface, presult_AddRef, presult_Release, presult_GetResultObject, presult_GetResultString,
    presult_GetResultServices, presult_GetCallStatus
};

/* --- IClientSecurity: the interface's blanket goes to the object, IUnknown's is its own ---- */

static inline struct proxy *proxy_from_security( IClientSecurity *iface )
{
    return CONTAINING_RECORD( iface, struct proxy, IClientSecurity_iface );
}

static HRESULT WINAPI psec_QueryInterface( IClientSecurity *iface, REFIID riid, void **obj )
{
    return proxy_unknown_QueryInterface( &proxy_from_security( iface )->IUnknown_iface, riid, obj );
}

static ULONG WINAPI psec_AddRef( IClientSecurity *iface )
{
    return proxy_unknown_AddRef( &proxy_from_security( iface )->IUnknown_iface );
}

static ULONG WINAPI psec_Release( IClientSecurity *iface )
{
    return proxy_unknown_Release( &proxy_from_security( iface )->IUnknown_iface );
}

/* The object's own IClientSecurity (no reference kept). */
static IClientSecurity *proxy_target_security( struct proxy *p )
{
    IClientSecurity *sec = NULL;
    if (SUCCEEDED(IUnknown_QueryInterface( p->target, &IID_IClientSecurity, (void **)&sec )))
        IClientSecurity_Release( sec );
    return sec;
}

static HRESULT WINAPI psec_QueryBlanket( IClientSecurity *iface, IUnknown *proxy, DWORD *authn_svc, DWORD *authz_svc,
                                         OLECHAR **principal, DWORD *authn_level, DWORD *imp_level, void **auth_info,
                                         DWORD *capabilities )
{
    struct proxy *p = proxy_from_security( iface );
    IClientSecurity *sec = proxy == &p->IUnknown_iface ? &p->unknown.IClientSecurity_iface : proxy_target_security( p );
    struct security fresh;

    /* A proxy whose interface blanket was never set has the default, whatever the object's. */
    if (sec && proxy != &p->IUnknown_iface && !InterlockedCompareExchange( &p->blanket_set, 0, 0 ))
    {
        security_init( &fresh, proxy, "fresh" );
        sec = &fresh.IClientSecurity_iface;
    }
    if (!sec) return E_NOINTERFACE;
    return IClientSecurity_QueryBlanket( sec, proxy, authn_svc, authz_svc, principal, authn_level, imp_level,
                                         auth_info, capabilities );
}

static HRESULT WINAPI psec_SetBlanket( IClientSecurity *iface, IUnknown *proxy, DWORD authn_svc, DWORD authz_svc,
                                       OLECHAR *principal, DWORD authn_level, DWORD imp_level, void *auth_info,
                                       DWORD capabilities )
{
    struct proxy *p = proxy_from_security( iface );
    IClientSecurity *sec;

    if (proxy == &p->IUnknown_iface) sec = &p->unknown.IClientSecurity_iface;
    else if ((sec = proxy_target_security( p ))) InterlockedExchange( &p->blanket_set, TRUE );
    if (!sec) return E_NOINTERFACE;
    return IClientSecurity_SetBlanket( sec, proxy, authn_svc, authz_svc, principal, authn_level, imp_level,
                                       auth_info, capabilities );
}

static HRESULT WINAPI psec_CopyProxy( IClientSecurity *iface, IUnknown *proxy, IUnknown **copy )
{
    (void)iface;
    if (!proxy || !copy) return E_INVALIDARG;
    IUnknown_AddRef( proxy );
    *copy = proxy;
    return S_OK;
}

static const IClientSecurityVtbl proxy_security_vtbl =
{
    psec_QueryInterface, psec_AddRef, psec_Release, psec_QueryBlanket, psec_SetBlanket, psec_CopyProxy
};

/* --- IMarshal ---------------------------------------------------------------------------- */

/* What a marshalled proxy carries (in-process only: pointers). */
struct proxy_data
{
    DWORD magic;
    enum proxy_kind kind;
    IUnknown *target;       /* a reference, for normal marshaling and until ReleaseMarshalData */
    struct proxy *source;   /* the marshalled proxy, kept alive by a reference too */
    DWORD apartment;
    BOOL remote;
    DWORD flags;            /* MSHLFLAGS */
};
#define PROXY_MAGIC 0x50585754  /* "TWXP" */

static inline struct proxy *proxy_from_marshal( IMarshal *iface )
{
    return CONTAINING_RECORD( iface, struct proxy, IMarshal_iface );
}

static HRESULT WINAPI pmarshal_QueryInterface( IMarshal *iface, REFIID riid, void **obj )
{
    return proxy_unknown_QueryInterface( &proxy_from_marshal( iface )->IUnknown_iface, riid, obj );
}

static ULONG WINAPI pmarshal_AddRef( IMarshal *iface )
{
    return proxy_unknown_AddRef( &proxy_from_marshal( iface )->IUnknown_iface );
}

static ULONG WINAPI pmarshal_Release( IMarshal *iface )
{
    return proxy_unknown_Release( &proxy_from_marshal( iface )->IUnknown_iface );
}

static HRESULT WINAPI pmarshal_GetUnmarshalClass( IMarshal *iface, REFIID riid, void *pv, DWORD context,
                                                  void *reserved, DWORD flags, CLSID *clsid )
{
    (void)iface; (void)riid; (void)pv; (void)context; (void)reserved; (void)flags;
    return CLSIDFromString( L"" TESTWMI_CLSID, clsid );
}

static HRESULT WINAPI pmarshal_GetMarshalSizeMax( IMarshal *iface, REFIID riid, void *pv, DWORD context,
                                                  void *reserved, DWORD flags, DWORD *size )
{
    (void)iface; (void)riid; (void)pv; (void)context; (void)reserved; (void)flags;
    *size = sizeof(struct proxy_data);
    return S_OK;
}

static HRESULT WINAPI pmarshal_MarshalInterface( IMarshal *iface, IStream *stream, REFIID riid, void *pv,
                                                 DWORD context, void *reserved, DWORD flags )
{
    struct proxy *p = proxy_from_marshal( iface );
    struct proxy_data d = { PROXY_MAGIC, p->kind, p->target, p, p->apartment, p->remote, flags };
    HRESULT hr;

    (void)riid; (void)pv; (void)reserved;
    if (context != MSHCTX_INPROC && context != MSHCTX_CROSSCTX) return E_FAIL;
    if (FAILED(hr = IStream_Write( stream, &d, sizeof(d), NULL ))) return hr;
    IUnknown_AddRef( p->target );
    proxy_unknown_AddRef( &p->IUnknown_iface );
    return S_OK;
}

static HRESULT proxy_read( IStream *stream, struct proxy_data *d )
{
    ULONG got = 0;
    HRESULT hr = IStream_Read( stream, d, sizeof(*d), &got );
    if (SUCCEEDED(hr) && (got != sizeof(*d) || d->magic != PROXY_MAGIC)) hr = E_FAIL;
    return hr;
}

static void proxy_data_release( struct proxy_data *d )
{
    IUnknown_Release( d->target );
    proxy_unknown_Release( &d->source->IUnknown_iface );
}

/* In the apartment that made the proxy: the proxy itself; elsewhere, a new one with
 * the default blanket. Normal marshaling: the data is used up. */
static HRESULT WINAPI pmarshal_UnmarshalInterface( IMarshal *iface, IStream *stream, REFIID riid, void **obj )
{
    struct proxy_data d;
    struct proxy *q;
    HRESULT hr;

    (void)iface;
    *obj = NULL;
    if (FAILED(hr = proxy_read( stream, &d ))) return hr;
    if (d.apartment == proxy_current_apartment() && d.source->apartment == d.apartment)
        hr = proxy_unknown_QueryInterface( &d.source->IUnknown_iface, riid, obj );
    else if (SUCCEEDED(hr = proxy_create( d.kind, d.target, d.remote, &q )))
    {
        testwmi_count( STAT_UNMARSHALLED, 1 );
        hr = proxy_unknown_QueryInterface( &q->IUnknown_iface, riid, obj );
        proxy_unknown_Release( &q->IUnknown_iface );
    }
    if (!(d.flags & (MSHLFLAGS_TABLESTRONG | MSHLFLAGS_TABLEWEAK))) proxy_data_release( &d );
    return hr;
}

static HRESULT WINAPI pmarshal_ReleaseMarshalData( IMarshal *iface, IStream *stream )
{
    struct proxy_data d;
    HRESULT hr;

    (void)iface;
    if (SUCCEEDED(hr = proxy_read( stream, &d ))) proxy_data_release( &d );
    return hr;
}

static HRESULT WINAPI pmarshal_DisconnectObject( IMarshal *iface, DWORD reserved )
{
    (void)iface; (void)reserved;
    return S_OK;
}

static const IMarshalVtbl proxy_marshal_vtbl =
{
    pmarshal_QueryInterface, pmarshal_AddRef, pmarshal_Release, pmarshal_GetUnmarshalClass,
    pmarshal_GetMarshalSizeMax, pmarshal_MarshalInterface, pmarshal_UnmarshalInterface,
    pmarshal_ReleaseMarshalData, pmarshal_DisconnectObject
};

/* The unmarshaler COM makes from the server's CLSID (CoUnmarshalInterface): stateless. */
static HRESULT WINAPI unmarshaler_QueryInterface( IMarshal *iface, REFIID riid, void **obj )
{
    if (IsEqualGUID( riid, &IID_IUnknown ) || IsEqualGUID( riid, &IID_IMarshal ))
    {
        *obj = iface;
        return S_OK;
    }
    *obj = NULL;
    return E_NOINTERFACE;
}

static ULONG WINAPI unmarshaler_AddRef( IMarshal *iface ) { (void)iface; return 2; }
static ULONG WINAPI unmarshaler_Release( IMarshal *iface ) { (void)iface; return 1; }

static HRESULT WINAPI unmarshaler_MarshalInterface( IMarshal *iface, IStream *stream, REFIID riid, void *pv,
                                                    DWORD context, void *reserved, DWORD flags )
{
    (void)iface; (void)stream; (void)riid; (void)pv; (void)context; (void)reserved; (void)flags;
    return E_NOTIMPL;
}

static const IMarshalVtbl unmarshaler_vtbl =
{
    unmarshaler_QueryInterface, unmarshaler_AddRef, unmarshaler_Release, pmarshal_GetUnmarshalClass,
    pmarshal_GetMarshalSizeMax, unmarshaler_MarshalInterface, pmarshal_UnmarshalInterface,
    pmarshal_ReleaseMarshalData, pmarshal_DisconnectObject
};
static IMarshal unmarshaler = { &unmarshaler_vtbl };

HRESULT proxy_unmarshaler( REFIID riid, void **obj )
{
    return unmarshaler_QueryInterface( &unmarshaler, riid, obj );
}

/* --- making proxies ------------------------------------------------------------------------ */

/* A proxy of the calling apartment for TARGET (AddRef'd). */
static HRESULT proxy_create( enum proxy_kind kind, IUnknown *target, BOOL remote, struct proxy **out )
{
    struct proxy *p;

    *out = NULL;
    if (!(p = calloc( 1, sizeof(*p) ))) return E_OUTOFMEMORY;
    p->IUnknown_iface.lpVtbl = &proxy_unknown_vtbl;
    p->IWbemServices_iface.lpVtbl = &proxy_services_vtbl;
    p->IEnumWbemClassObject_iface.lpVtbl = &proxy_enum_vtbl;
    p->IWbemCallResult_iface.lpVtbl = &proxy_result_vtbl;
    p->IMarshal_iface.lpVtbl = &proxy_marshal_vtbl;
    p->IClientSecurity_iface.lpVtbl = &proxy_security_vtbl;
    security_init( &p->unknown, &p->IUnknown_iface, "unknown" );
    p->refs = 1;
    p->kind = kind;
    p->target = target;
    IUnknown_AddRef( target );
    p->apartment = proxy_current_apartment();
    p->remote = remote;
    *out = p;
    return S_OK;
}

HRESULT proxy_services( IWbemServices *svc, BOOL remote, IWbemServices **out )
{
    struct proxy *p;
    HRESULT hr = proxy_create( PROXY_SERVICES, (IUnknown *)svc, remote, &p );

    *out = SUCCEEDED(hr) ? &p->IWbemServices_iface : NULL;
    return hr;
}

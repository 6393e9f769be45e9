/*
 * The server's asynchronous operations: the AsyncOperationTable of [MS-WMI]
 * 3.1.1.1.3, one per services object.
 *
 * Rules implemented (section numbers of [MS-WMI]):
 * - 3.1.1.1.3: a call that cannot start returns its error, keeps no reference to
 *   the sink and never calls it; one that starts gets an entry (sink, CallCancelled,
 *   SetStatusWithFinalResultCalled), returns WBEM_S_NO_ERROR one round trip later and
 *   runs as a work item of the process's thread pool (a pool, not a thread per call:
 *   the double's own cost must not dominate a benchmark); many may run at once on
 *   one services object.
 * - 3.2.4.1.1: objects go to Indicate in batches (testwmi.configure{ batch = n });
 *   one call at a time per operation (CallbackInProgress); never once CallCancelled
 *   is set; an Indicate that fails cancels the operation (final WBEM_E_CALL_CANCELLED).
 * - 3.2.4.1.2 and 3.1.4.2.2: WBEM_FLAG_SEND_STATUS gives WBEM_STATUS_PROGRESS calls
 *   (hResult = MAKELONG(objects sent, total)); exactly one final SetStatus, whose
 *   strParam is the operation's string result (PutInstance: the written path) and
 *   whose pObjParam is NULL on success, an extended error object on failure; then the
 *   sink is released and never called again. The final SetStatus is sent by another
 *   thread than the Indicates (one status thread for the server).
 * - 3.1.4.3.2 CancelAsyncCall: finds every entry started with exactly that sink
 *   pointer (else an error, WBEM_E_INVALID_PARAMETER), sets CallCancelled (no new
 *   Indicate or progress), sends the final WBEM_E_CALL_CANCELLED if no final status
 *   was sent, and does not wait for the client: an Indicate already running goes on
 *   and may reach the sink after CancelAsyncCall returned (configure{ late_indicate
 *   = true } holds a call's first Indicate until then, to show that race).
 * - ExecMethodAsync delivers the out-parameters object by Indicate, then the status
 *   (IWbemServices::ExecMethodAsync page; [MS-WMI] 3.1.4.3.23).
 * - 3.2.4.1.1: a "reject" host's callbacks into a sink that is not a stub of the
 *   (test) unsecured apartment fail (E_ACCESSDENIED, the sink never sees them), as
 *   a remote host's do into a client that did not lower its security: the first
 *   Indicate fails, so the server cancels, its final SetStatus fails too, and it
 *   releases the sink. The client sees its sink released with no call at all.
 * - A "vanish" host (the server, the network or Unsecapp.exe gone mid-call): once a
 *   call has sent configure{ vanish_after = n } Indicates, the sink is released
 *   without a final SetStatus, as COM releases it when its pings stop, and every
 *   later call on that services object fails 0x800706BA (testwmi_services.c).
 * - 3.1.4.3.5, .11, .13, .15, .17, .19, .21, .23 (each *Async method's lFlags table):
 *   "any other DWORD value ... MUST be treated as not valid": flags a method does
 *   not define fail the start with WBEM_E_INVALID_PARAMETER.
 * - What a server may do and a client must absorb (testwmi.configure): deliver a
 *   call's objects and status on the calling thread before the start returns
 *   (inline = "start") or before CancelAsyncCall returns (inline = "cancel": the
 *   call waits for its cancel, then completes inside it); end with a success code
 *   other than 0 (final_hr); fail with no error object or one of a subclass of
 *   __ExtendedStatus (error_object, 3.1.4.2.2 pObjParam); ignore
 *   WBEM_FLAG_SEND_STATUS (progress = false: 3.1.4.3.x "the server MAY make
 *   intermediate SetStatus calls"); write even when the write was cancelled
 *   (run_to_completion: the IWbemServices::CancelAsyncCall page, "the provider
 *   ... runs to completion").
 * - ExecNotificationQueryAsync never completes on its own: an event object every
 *   configure{ event_interval = ms }, numbered by its Sequence property, until
 *   cancelled (IWbemServices::ExecNotificationQueryAsync page).
 */
#include "testwmi.h"

#include <stdio.h>
#include <stdlib.h>
#include <wchar.h>

#ifndef WBEM_FLAG_OWNER_UPDATE
#define WBEM_FLAG_OWNER_UPDATE 0x10000     /* WBEM_CHANGE_FLAG_TYPE; MinGW's header lacks it */
#endif

struct op
{
    struct op *next;            /* in its table, under testwmi_cs */
    struct op *queued;          /* in the status thread's queue */
    struct op *cancelling;      /* in a CancelAsyncCall's list */
    LONG refs;
    struct services *svc;
    struct op_table *table;
    enum op_kind kind;
    BSTR a, b;
    LONG flags;
    IWbemClassObject *in;
    IWbemObjectSink *sink;
    LONG sink_refs;             /* the final status's, plus one per sink call under way */
    BOOL cancelled, final_sent; /* CallCancelled, SetStatusWithFinalResultCalled: under testwmi_cs */
    BOOL status_queued;         /* under testwmi_cs */
    BOOL direct;                /* inline: the status goes on the thread that finishes the call */
    BOOL deferred;              /* inline = "cancel": runs inside its CancelAsyncCall (under testwmi_cs) */
    BOOL rejected;              /* a "reject" host cannot call this sink back */
    HANDLE cancelled_event;     /* set with cancelled */
    HANDLE cancel_returned;     /* set as CancelAsyncCall returns */
    DWORD indicate_thread;      /* the thread that called Indicate last */
    LONG indicates;             /* Indicates sent */
    struct testwmi_config config;   /* as it was when the call started */
    HRESULT hr;                 /* the final status */
    BSTR param;
    IWbemClassObject *err;
};

static const WCHAR *const async_operation_names[] =
{
    L"ExecQuery", L"CreateInstanceEnum", L"CreateClassEnum", L"GetObject", L"ExecMethod", L"PutInstance",
    L"DeleteInstance", L"ExecNotificationQuery"
};

/* The status thread and its queue (under testwmi_cs). */
static struct
{
    HANDLE thread, wake;
    struct op *head, *tail;
} status;

static void async_release( struct op *op )
{
    if (InterlockedDecrement( &op->refs )) return;
    SysFreeString( op->a );
    SysFreeString( op->b );
    SysFreeString( op->param );
    if (op->in) IWbemClassObject_Release( op->in );
    if (op->err) IWbemClassObject_Release( op->err );
    CloseHandle( op->cancelled_event );
    CloseHandle( op->cancel_returned );
    services_release( op->svc );
    free( op );
    testwmi_count( STAT_CALLS, -1 );
}

/* A sink call may start: FALSE once cancelled or finished (CallbackInProgress rules). */
static BOOL async_sink_get( struct op *op )
{
    BOOL ok;
    EnterCriticalSection( &testwmi_cs );
    if ((ok = !op->cancelled && !op->final_sent)) InterlockedIncrement( &op->sink_refs );
    LeaveCriticalSection( &testwmi_cs );
    return ok;
}

/* The last user releases the sink: nothing calls it afterwards. */
static void async_sink_put( struct op *op )
{
    if (InterlockedDecrement( &op->sink_refs )) return;
    IWbemObjectSink_Release( op->sink );
    op->sink = NULL;
    testwmi_count( STAT_SINKS, -1 );
}

static void async_unlink( struct op *op )
{
    struct op **at;
    for (at = &op->table->head; *at && *at != op; at = &(*at)->next);
    if (*at) *at = op->next;
    op->next = NULL;
}

/* A hostile server (configure{ progress_flood, progress_text, final_statuses }): N
 * SetStatus calls of kind FLAGS, each with a text of progress_text bytes, whatever
 * the client asked for. */
static void async_hostile_statuses( struct op *op, LONG flags, LONG n )
{
    BSTR text;
    LONG i;

    if (n <= 0 || !(text = SysAllocStringLen( NULL, op->config.progress_text / sizeof(WCHAR) ))) return;
    for (i = 0; i < (LONG)SysStringLen( text ); i++) text[i] = L'a' + i % 26;
    for (i = 0; i < n; i++)
        IWbemObjectSink_SetStatus( op->sink, flags, flags == WBEM_STATUS_PROGRESS ? MAKELONG( i, n ) : S_OK,
                                   text, NULL );
    SysFreeString( text );
}

/* A "reject" host's call into a sink that is not a stub of the (test) unsecured
 * apartment: the client's COM refuses it, as a client that did not lower its
 * security refuses a remote host's callback; the sink never sees it. */
static BOOL async_rejected( struct op *op )
{
    if (op->rejected) testwmi_count( STAT_REJECTED, 1 );
    return op->rejected;
}

/* Whether SINK (or the client sink behind a proxy's) is the test apartment server's stub. */
static BOOL async_is_stub( IWbemObjectSink *sink )
{
    WCHAR path[MAX_PATH];
    HMODULE module;
    size_t n;

    sink = proxy_sink_client( sink );
    if (!GetModuleHandleExW( GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
                             (const WCHAR *)sink->lpVtbl, &module )
        || !(n = GetModuleFileNameW( module, path, ARRAYSIZE(path) )))
        return FALSE;
    return n >= 12 && !_wcsicmp( path + n - 12, L"\\testapt.dll" );
}

static void async_send_status( struct op *op )
{
    /* Apart from inline delivery, the status comes from another thread than the Indicates. */
    if (!op->direct && op->indicate_thread == GetCurrentThreadId()) testwmi_count( STAT_SAME_THREAD, 1 );
    if (!async_rejected( op ))
    {
        testwmi_count( STAT_STATUSES, 1 );
        IWbemObjectSink_SetStatus( op->sink, WBEM_STATUS_COMPLETE, op->hr, op->param, op->err );
        async_hostile_statuses( op, WBEM_STATUS_COMPLETE, op->config.final_statuses - 1 );
    }
    async_sink_put( op );
    async_release( op );
}

static DWORD WINAPI async_status_thread( void *arg )
{
    (void)arg;
    CoInitializeEx( NULL, COINIT_MULTITHREADED );
    for (;;)
    {
        struct op *op;

        EnterCriticalSection( &testwmi_cs );
        if ((op = status.head) && !(status.head = op->queued)) status.tail = NULL;
        LeaveCriticalSection( &testwmi_cs );
        if (!op)
        {
            WaitForSingleObject( status.wake, INFINITE );
            continue;
        }
        async_send_status( op );
    }
    return 0;
}

/* Queues OP's final status (OP's final_sent was set under the lock by the caller). */
static void async_queue_status( struct op *op )
{
    EnterCriticalSection( &testwmi_cs );
    if (op->status_queued)
    {
        testwmi_count( STAT_DOUBLE_STATUS, 1 );
        LeaveCriticalSection( &testwmi_cs );
        return;
    }
    op->status_queued = TRUE;
    testwmi_in_flight( -1 );
    InterlockedIncrement( &op->refs );
    if (op->direct)
    {
        LeaveCriticalSection( &testwmi_cs );
        async_send_status( op );
        return;
    }
    op->queued = NULL;
    if (status.tail) status.tail->queued = op;
    else status.head = op;
    status.tail = op;
    LeaveCriticalSection( &testwmi_cs );
    SetEvent( status.wake );
}

/* A "vanish" host is gone once the call sent its vanish_after Indicates (or another call
 * of its services found it gone): the sink is released without a final status. */
static BOOL async_gone( struct op *op )
{
    BOOL drop;

    if (services_host( op->svc )->kind != HOST_VANISH
        || (op->indicates < op->config.vanish_after && !services_vanished( op->svc )))
        return FALSE;
    services_vanish( op->svc );
    EnterCriticalSection( &testwmi_cs );
    if ((drop = !op->final_sent))
    {
        op->final_sent = op->cancelled = TRUE;
        async_unlink( op );
        SetEvent( op->cancelled_event );
    }
    LeaveCriticalSection( &testwmi_cs );
    if (drop)
    {
        testwmi_count( STAT_VANISHED, 1 );
        testwmi_in_flight( -1 );
        async_sink_put( op );
    }
    return TRUE;
}

/* The operation's own end: the final status, unless a cancel sent it. Takes PARAM and ERR. */
static void async_finish( struct op *op, HRESULT hr, BSTR param, IWbemClassObject *err )
{
    BOOL send;

    security_check( services_security( op->svc ) );
    if (async_gone( op ))
    {
        SysFreeString( param );
        if (err) IWbemClassObject_Release( err );
        return;
    }
    EnterCriticalSection( &testwmi_cs );
    if ((send = !op->final_sent))
    {
        op->final_sent = TRUE;
        async_unlink( op );
        op->hr = hr;
        op->param = param;
        op->err = err;
    }
    LeaveCriticalSection( &testwmi_cs );
    if (send) async_queue_status( op );
    else
    {
        SysFreeString( param );
        if (err) IWbemClassObject_Release( err );
    }
}

/* The call ends with HR (configure{ final_hr } when it succeeded); PARAM is taken. */
static void async_complete( struct op *op, HRESULT hr, BSTR param )
{
    IWbemClassObject *err = NULL;

    if (SUCCEEDED(hr)) hr = op->config.final_hr;
    if (FAILED(hr) && op->config.error_object != ERROR_NONE)
        err = bag_status( hr, async_operation_names[op->kind], op->a, op->config.error_object == ERROR_SUBCLASS );
    async_finish( op, hr, param, err );
}

/* The server cancels on its own (a sink call failed): as CancelAsyncCall would. */
static void async_abort( struct op *op )
{
    BOOL send;

    EnterCriticalSection( &testwmi_cs );
    op->cancelled = TRUE;
    SetEvent( op->cancelled_event );
    if ((send = !op->final_sent))
    {
        op->final_sent = TRUE;
        async_unlink( op );
        op->hr = WBEM_E_CALL_CANCELLED;
    }
    LeaveCriticalSection( &testwmi_cs );
    if (send) async_queue_status( op );
}

/* Waits MS, or less when the call is cancelled; FALSE when it was. */
static BOOL async_pause( struct op *op, DWORD ms )
{
    return WaitForSingleObject( op->cancelled_event, ms ) == WAIT_TIMEOUT;
}

static BOOL async_progress( struct op *op, ULONG current, ULONG total )
{
    HRESULT hr;

    if (!(op->flags & WBEM_FLAG_SEND_STATUS) || !op->config.progress || !async_sink_get( op )) return TRUE;
    if (async_rejected( op )) hr = E_ACCESSDENIED;
    else
    {
        hr = IWbemObjectSink_SetStatus( op->sink, WBEM_STATUS_PROGRESS, MAKELONG( current, total ), NULL, NULL );
        testwmi_count( STAT_PROGRESS, 1 );
    }
    async_sink_put( op );
    if (FAILED(hr)) async_abort( op );
    return SUCCEEDED(hr);
}

/* configure{ gate = true }: waits for testwmi.open_gate() or the cancel; FALSE once cancelled. */
static BOOL async_gate( struct op *op )
{
    if (op->config.gate)
    {
        HANDLE handles[2] = { testwmi_gate, op->cancelled_event };
        testwmi_count( STAT_GATED, 1 );
        WaitForMultipleObjects( 2, handles, FALSE, INFINITE );
        testwmi_count( STAT_GATED, -1 );
    }
    return WaitForSingleObject( op->cancelled_event, 0 ) == WAIT_TIMEOUT;
}

/* One Indicate of N objects (the caller holds a sink reference), counted when made. */
static HRESULT async_indicate( struct op *op, LONG n, IWbemClassObject **objs )
{
    HRESULT hr;

    op->indicates++;
    if (async_rejected( op )) return E_ACCESSDENIED;
    op->indicate_thread = GetCurrentThreadId();
    hr = IWbemObjectSink_Indicate( op->sink, n, objs );
    testwmi_count( STAT_INDICATES, 1 );
    testwmi_count( STAT_INDICATED, n );
    return hr;
}

/* Indicates LIST in batches; FALSE when the call ended meanwhile. */
static BOOL async_deliver( struct op *op, struct objects *list )
{
    ULONG sent = 0, n;
    HRESULT hr;

    async_gate( op );
    if (op->config.progress_flood && async_sink_get( op ))
    {
        async_hostile_statuses( op, WBEM_STATUS_PROGRESS, op->config.progress_flood );
        async_sink_put( op );
    }
    if (!async_progress( op, 0, list->count )) return FALSE;
    while (sent < list->count)
    {
        if (sent && op->config.batch_delay && !async_pause( op, op->config.batch_delay )) return FALSE;
        n = list->count - sent;
        if (n > (ULONG)op->config.batch) n = op->config.batch;
        if (async_gone( op ) || !async_sink_get( op )) return FALSE;
        if (!sent && op->config.late_indicate)
        {
            /* This Indicate is under way; it reaches the sink once CancelAsyncCall has
             * returned (bounded, should nobody cancel). */
            testwmi_count( STAT_HELD, 1 );
            if (WaitForSingleObject( op->cancel_returned, 10000 ) == WAIT_OBJECT_0)
            {
                Sleep( 20 );
                testwmi_count( STAT_LATE_INDICATES, 1 );
            }
            testwmi_count( STAT_HELD, -1 );
        }
        hr = async_indicate( op, n, list->objs + sent );
        async_sink_put( op );
        if (FAILED(hr))
        {
            async_abort( op );
            return FALSE;
        }
        sent += n;
        if (!async_progress( op, sent, list->count )) return FALSE;
    }
    return TRUE;
}

/* "SELECT * FROM Class ..." -> Class, in BUF; FALSE when the query names none. */
static BOOL async_event_class( const WCHAR *query, WCHAR *buf, size_t cap )
{
    const WCHAR *p;
    size_t n = 0;

    if (!query || _wcsnicmp( query, L"SELECT ", 7 )) return FALSE;
    for (p = query; *p; p++)
        if (!_wcsnicmp( p, L" FROM ", 6 )) break;
    if (!*p) return FALSE;
    for (p += 6; *p == ' '; p++);
    while (*p && *p != ' ' && n + 1 < cap) buf[n++] = *p++;
    buf[n] = 0;
    return n > 0;
}

static IWbemClassObject *async_event( const WCHAR *cls, ULONG sequence )
{
    struct bag_prop props[3];
    WCHAR time[32], signature[32];
    FILETIME ft;

    GetSystemTimeAsFileTime( &ft );
    _ui64tow( ((ULONGLONG)ft.dwHighDateTime << 32) | ft.dwLowDateTime, time, 10 );
    props[0].name = L"Sequence";
    props[0].type = CIM_UINT32;
    V_VT( &props[0].value ) = VT_I4;
    V_I4( &props[0].value ) = sequence;
    /* uint64 travels as a decimal string, as WMI sends it. */
    props[1].name = L"TIME_CREATED";
    props[1].type = CIM_UINT64;
    V_VT( &props[1].value ) = VT_BSTR;
    V_BSTR( &props[1].value ) = SysAllocString( time );
    /* A uint64 above 2^63-1 (2^64 - Sequence), which clients must show unsigned. */
    _ui64tow( 0 - (ULONGLONG)sequence, signature, 10 );
    props[2].name = L"Signature";
    props[2].type = CIM_UINT64;
    V_VT( &props[2].value ) = VT_BSTR;
    V_BSTR( &props[2].value ) = SysAllocString( signature );
    return bag_create( cls, props, ARRAYSIZE(props) );
}

static void async_events( struct op *op )
{
    WCHAR cls[128];
    ULONG sequence = 0;

    if (!async_event_class( op->a, cls, ARRAYSIZE(cls) ))
    {
        async_complete( op, WBEM_E_INVALID_QUERY, NULL );
        return;
    }
    while (async_pause( op, op->config.event_interval ))
    {
        IWbemClassObject *ev = async_event( cls, ++sequence );
        HRESULT hr;

        if (!ev || async_gone( op ) || !async_sink_get( op ))
        {
            if (ev) IWbemClassObject_Release( ev );
            break;
        }
        hr = async_indicate( op, 1, &ev );
        if (SUCCEEDED(hr)) testwmi_count( STAT_EVENTS, 1 );
        async_sink_put( op );
        IWbemClassObject_Release( ev );
        if (FAILED(hr))
        {
            async_abort( op );
            break;
        }
    }
}

/* The operation itself, on a server thread (or inline on the client's); drops the runner's reference. */
static void async_run( struct op *op )
{
    static const int collect[] = { COLLECT_QUERY, COLLECT_INSTANCES, COLLECT_CLASSES, COLLECT_GET, COLLECT_EXEC };
    BOOL write = op->kind == OP_PUT || op->kind == OP_DELETE;
    struct objects list = { NULL, 0, 0 };
    BSTR path = NULL;
    HRESULT hr;

    /* The result comes one round trip after the start returned; inline, it is there. */
    if (!op->direct && !async_pause( op, services_host( op->svc )->latency )
        && !(write && op->config.run_to_completion))
        goto done;
    switch (op->kind)
    {
    case OP_EVENTS:
        async_events( op );
        break;
    case OP_PUT:
    case OP_DELETE:
        /* A cancelled write is not undone, and with run_to_completion it still happens. */
        if (!async_gate( op ) && !op->config.run_to_completion) break;
        if (!async_progress( op, 0, 1 )) break;
        if (op->kind == OP_PUT) hr = services_put( op->svc, op->in, op->flags, &path );
        else hr = services_delete( op->svc, op->a );
        async_complete( op, hr, path );
        break;
    default:
        hr = services_collect( op->svc, collect[op->kind], op->a, op->b, op->flags, op->in, &list );
        if (SUCCEEDED(hr) && op->kind == OP_QUERY && services_host( op->svc )->kind == HOST_MIXED)
        {
            IWbemClassObject *node = bag_node();
            hr = node ? objects_add( &list, node ) : E_OUTOFMEMORY;
        }
        if (FAILED(hr)) async_complete( op, hr, NULL );
        else if (async_deliver( op, &list )) async_complete( op, WBEM_S_NO_ERROR, NULL );
        objects_free( &list );
        break;
    }
done:
    async_release( op );
}

/* A work item of the process's thread pool: the server serves its calls from a pool. */
static void CALLBACK async_work( PTP_CALLBACK_INSTANCE instance, void *arg )
{
    (void)instance;
    CoInitializeEx( NULL, COINIT_MULTITHREADED );
    async_run( arg );
    CoUninitialize();
}

/* The flags each method defines ([MS-WMI] 3.1.4.3.x, the lFlags tables; the values are
 * WBEM_GENERIC_FLAG_TYPE's and WBEM_CHANGE_FLAG_TYPE's). */
static const LONG async_flags[] =
{
    /* ExecQueryAsync, 3.1.4.3.19 */
    WBEM_FLAG_USE_AMENDED_QUALIFIERS | WBEM_FLAG_SEND_STATUS | WBEM_FLAG_ENSURE_LOCATABLE | WBEM_FLAG_PROTOTYPE
        | WBEM_FLAG_DIRECT_READ,
    /* CreateInstanceEnumAsync, 3.1.4.3.17 */
    WBEM_FLAG_USE_AMENDED_QUALIFIERS | WBEM_FLAG_SEND_STATUS | WBEM_FLAG_SHALLOW | WBEM_FLAG_DIRECT_READ,
    /* CreateClassEnumAsync, 3.1.4.3.11 */
    WBEM_FLAG_USE_AMENDED_QUALIFIERS | WBEM_FLAG_SEND_STATUS | WBEM_FLAG_SHALLOW,
    /* GetObjectAsync, 3.1.4.3.5 */
    WBEM_FLAG_USE_AMENDED_QUALIFIERS | WBEM_FLAG_SEND_STATUS | WBEM_FLAG_DIRECT_READ,
    /* ExecMethodAsync, 3.1.4.3.23 */
    WBEM_FLAG_SEND_STATUS,
    /* PutInstanceAsync, 3.1.4.3.13 */
    WBEM_FLAG_USE_AMENDED_QUALIFIERS | WBEM_FLAG_SEND_STATUS | WBEM_FLAG_UPDATE_ONLY | WBEM_FLAG_CREATE_ONLY
        | WBEM_FLAG_OWNER_UPDATE,
    /* DeleteInstanceAsync, 3.1.4.3.15 */
    WBEM_FLAG_SEND_STATUS | WBEM_FLAG_OWNER_UPDATE,
    /* ExecNotificationQueryAsync, 3.1.4.3.21 */
    WBEM_FLAG_USE_AMENDED_QUALIFIERS | WBEM_FLAG_SEND_STATUS,
};

HRESULT async_start( struct services *svc, struct op_table *table, enum op_kind kind, const WCHAR *a,
                     const WCHAR *b, LONG flags, IWbemClassObject *in, IWbemObjectSink *sink )
{
    struct op *op;
    BOOL linked;
    HRESULT hr;

    /* The start is a round trip: it returns once the server has queued the call. */
    if (FAILED(hr = services_trip( svc ))) return hr;
    /* [MS-WMI] 3.1.1.1.3: a call that does not start keeps no sink and never calls it. */
    if (!sink || (flags & ~async_flags[kind])) return WBEM_E_INVALID_PARAMETER;
    if ((kind == OP_GET || kind == OP_DELETE || kind == OP_EXEC || kind == OP_QUERY || kind == OP_EVENTS
         || kind == OP_INSTANCES) && !a)
        return WBEM_E_INVALID_PARAMETER;
    if ((kind == OP_EXEC && !b) || (kind == OP_PUT && !in)) return WBEM_E_INVALID_PARAMETER;
    if (!(op = calloc( 1, sizeof(*op) ))) return WBEM_E_OUT_OF_MEMORY;
    op->refs = 1;                       /* the runner's */
    op->svc = svc;
    services_addref( svc );
    op->table = table;
    op->kind = kind;
    op->flags = flags;
    if ((op->in = in)) IWbemClassObject_AddRef( in );
    if ((a && !(op->a = SysAllocString( a ))) || (b && !(op->b = SysAllocString( b )))) hr = WBEM_E_OUT_OF_MEMORY;
    if (!(op->cancelled_event = CreateEventW( NULL, TRUE, FALSE, NULL ))
        || !(op->cancel_returned = CreateEventW( NULL, TRUE, FALSE, NULL )))
        hr = WBEM_E_OUT_OF_MEMORY;
    testwmi_count( STAT_CALLS, 1 );
    if (FAILED(hr))
    {
        async_release( op );
        return hr;
    }
    op->sink = sink;
    op->rejected = services_host( svc )->kind == HOST_REJECT && !async_is_stub( sink );
    op->sink_refs = 1;
    IWbemObjectSink_AddRef( sink );
    testwmi_count( STAT_SINKS, 1 );

    EnterCriticalSection( &testwmi_cs );
    op->config = testwmi_config;
    if (!status.thread)
    {
        if (!status.wake) status.wake = CreateEventW( NULL, FALSE, FALSE, NULL );
        if (status.wake) status.thread = CreateThread( NULL, 0, async_status_thread, NULL, 0, NULL );
    }
    if ((linked = status.thread != NULL))
    {
        op->next = table->head;
        table->head = op;
        /* An event subscription never ends: it cannot run inline. */
        op->direct = op->config.inline_at == INLINE_START && kind != OP_EVENTS;
        op->deferred = op->config.inline_at == INLINE_CANCEL && kind != OP_EVENTS;
    }
    LeaveCriticalSection( &testwmi_cs );
    if (!linked)
    {
        async_sink_put( op );
        async_release( op );
        return WBEM_E_OUT_OF_MEMORY;
    }
    testwmi_count( STAT_STARTED, 1 );
    testwmi_in_flight( 1 );
    if (op->direct) async_run( op );
    else if (!op->deferred && !TrySubmitThreadpoolCallback( async_work, op, NULL ))
    {
        async_complete( op, WBEM_E_OUT_OF_MEMORY, NULL );
        async_release( op );
    }
    return WBEM_S_NO_ERROR;
}

HRESULT async_cancel( struct op_table *table, IWbemObjectSink *sink )
{
    struct op *list = NULL, *run = NULL, *op, *next;
    LONG matched = 0;

    if (!sink)
    {
        testwmi_count( STAT_CANCELS_UNMATCHED, 1 );
        return WBEM_E_INVALID_PARAMETER;
    }
    EnterCriticalSection( &testwmi_cs );
    for (op = table->head; op; op = next)
    {
        next = op->next;
        if (op->sink != sink) continue;
        matched++;
        if (op->deferred)
        {
            /* inline = "cancel": the call completes inside this cancel, on this thread. */
            op->deferred = FALSE;
            op->direct = TRUE;
            op->cancelling = run;
            run = op;
            continue;
        }
        /* First a reference: once cancelled_event is set, the operation's thread
         * may end and drop its own. */
        InterlockedIncrement( &op->refs );
        /* In the table, so final_sent is FALSE: this cancel sends the final status. */
        op->cancelled = TRUE;
        op->final_sent = TRUE;
        op->hr = WBEM_E_CALL_CANCELLED;
        async_unlink( op );
        SetEvent( op->cancelled_event );
        op->cancelling = list;
        list = op;
    }
    LeaveCriticalSection( &testwmi_cs );
    testwmi_count( matched ? STAT_CANCELS_MATCHED : STAT_CANCELS_UNMATCHED, 1 );
    for (op = run; op; op = next)
    {
        next = op->cancelling;
        async_run( op );
    }
    for (op = list; op; op = op->cancelling) async_queue_status( op );
    /* Not waiting for anything ([MS-WMI] 3.1.4.3.2): a held Indicate now goes. */
    for (op = list; op; op = next)
    {
        next = op->cancelling;
        SetEvent( op->cancel_returned );
        async_release( op );
    }
    return matched ? WBEM_S_NO_ERROR : WBEM_E_INVALID_PARAMETER;
}

/* Our IWbemObjectSink. WMI (or the unsecured apartment's stub) calls it on its own
 * threads: it only AddRefs what it is handed, appends to the Lua state's queue and
 * returns at once. It never touches a lua_State and never blocks.
 *
 * A server, a network or Unsecapp.exe can vanish mid-call: the sink is then
 * released without any SetStatus (on Windows by COM's garbage collection, after
 * about six minutes of missed pings). So the references COM holds (AddRef through
 * the vtable) are counted apart from the module's own, and their last Release
 * with no final status seen ends the call with RPC_E_DISCONNECTED, once. */
#include "luawmi.h"

static inline struct sink *impl_from_IWbemObjectSink(IWbemObjectSink *iface)
{
    return CONTAINING_RECORD(iface, struct sink, IWbemObjectSink_iface);
}

static HRESULT WINAPI sink_QueryInterface(IWbemObjectSink *iface, REFIID riid, void **ppv)
{
    if (!ppv) return E_POINTER;
    if (IsEqualGUID(riid, &IID_IUnknown) || IsEqualGUID(riid, &IID_IWbemObjectSink))
    {
        *ppv = iface;
        IWbemObjectSink_AddRef(iface);
        return S_OK;
    }
    *ppv = NULL;
    return E_NOINTERFACE;
}

/* COM's references together hold one of the module's. */
static ULONG WINAPI sink_AddRef(IWbemObjectSink *iface)
{
    struct sink *sink = impl_from_IWbemObjectSink(iface);
    LONG refs = InterlockedIncrement(&sink->com_refs);
    if (refs == 1) sink_addref(sink);
    return refs;
}

static ULONG WINAPI sink_Release(IWbemObjectSink *iface)
{
    struct sink *sink = impl_from_IWbemObjectSink(iface);
    LONG refs = InterlockedDecrement(&sink->com_refs);
    if (refs) return refs;
    if (sink->armed) sink_end(sink, RPC_E_DISCONNECTED);
    sink_release(sink);
    return 0;
}

/* The call's limits were reached: stop taking more, so that a subscription, a huge
 * query nobody dispatches or a server flooding statuses cannot grow without bound.
 * The call ends with this status (not counted: it must get through); the Lua thread
 * then cancels it with the provider. */
static void sink_overflow(struct sink *sink)
{
    WCHAR text[160];
    struct node *node;

    if (InterlockedExchange(&sink->closed, 1)) return;
    InterlockedExchange(&sink->overflowed, 1);
    InterlockedIncrement(&wmi_stats.overflows);
    if (!(node = queue_new_node(sink, NODE_STATUS))) return;
    node->hr = WBEM_E_QUEUE_OVERFLOW;
    swprintf(text, ARRAYSIZE(text), L"%ld callbacks (%ld bytes) waited for dispatch (queue_limit %ld, queue_bytes %ld); "
             L"the call was cancelled", sink->queued, sink->bytes, sink->limits.nodes, sink->limits.bytes);
    node->text = SysAllocString(text);
    queue_push(sink->queue, node);
}

/* Counts a node of BYTES against the call's limits (LIMITED: it may be refused,
 * and then the call overflows); FALSE when it does not fit. */
static BOOL sink_reserve(struct sink *sink, LONG bytes, BOOL limited)
{
    LONG n = InterlockedIncrement(&sink->queued);
    LONG b = InterlockedExchangeAdd(&sink->bytes, bytes) + bytes;
    if (!limited || ((!sink->limits.nodes || n <= sink->limits.nodes) && (!sink->limits.bytes || b <= sink->limits.bytes)))
        return TRUE;
    InterlockedDecrement(&sink->queued);
    InterlockedExchangeAdd(&sink->bytes, -bytes);
    sink_overflow(sink);
    return FALSE;
}

/* A counted node of SINK (see queue_free_node), or NULL: refused or out of memory. */
static struct node *sink_node(struct sink *sink, enum node_kind kind, LONG bytes, BOOL limited)
{
    struct node *node;
    bytes += sizeof(struct node);
    if (!sink_reserve(sink, bytes, limited)) return NULL;
    if (!(node = queue_new_node(sink, kind)))
    {
        InterlockedDecrement(&sink->queued);
        InterlockedExchangeAdd(&sink->bytes, -bytes);
        return NULL;
    }
    node->bytes = bytes;
    return node;
}

static HRESULT WINAPI sink_Indicate(IWbemObjectSink *iface, LONG count, IWbemClassObject **objs)
{
    struct sink *sink = impl_from_IWbemObjectSink(iface);
    LONG i;

    if (count < 0 || (count && !objs)) return WBEM_E_INVALID_PARAMETER;
    for (i = 0; i < count && !sink->closed; i++)
    {
        struct node *node = sink_node(sink, NODE_INDICATE, 0, TRUE);
        if (!node) return sink->closed ? WBEM_S_NO_ERROR : WBEM_E_OUT_OF_MEMORY;
        node->obj = objs[i];
        if (node->obj) IWbemClassObject_AddRef(node->obj);
        queue_push_open(sink->queue, node, &sink->closed);
    }
    return WBEM_S_NO_ERROR;
}

static HRESULT WINAPI sink_SetStatus(IWbemObjectSink *iface, LONG flags, HRESULT hr, BSTR text,
                                     IWbemClassObject *obj)
{
    struct sink *sink = impl_from_IWbemObjectSink(iface);
    UINT len = text ? SysStringLen(text) : 0;
    struct node *node;
    enum node_kind kind;

    if (len > SINK_TEXT_MAX) len = SINK_TEXT_MAX;
    if (flags == WBEM_STATUS_COMPLETE)
    {
        /* One final status: a server sending more gets them dropped. */
        if (InterlockedExchange(&sink->completed, 1)) return WBEM_S_NO_ERROR;
        kind = NODE_STATUS;
    }
    else if (flags == WBEM_STATUS_PROGRESS && sink->limits.progress) kind = NODE_PROGRESS;
    else return WBEM_S_NO_ERROR; /* progress nobody asked for, WBEM_STATUS_REQUIREMENTS: nothing for Lua */
    if (sink->closed) return WBEM_S_NO_ERROR;

    /* The final status is counted, never refused: the call must end. */
    if (!(node = sink_node(sink, kind, text ? (LONG)((len + 3) * sizeof(WCHAR)) : 0, kind != NODE_STATUS)))
        return sink->closed ? WBEM_S_NO_ERROR : WBEM_E_OUT_OF_MEMORY;
    node->hr = hr;  /* for progress, the counts */
    if (text && !(node->text = SysAllocStringLen(text, len)))
    {
        queue_free_node(node);
        return WBEM_E_OUT_OF_MEMORY;
    }
    node->obj = obj;
    if (obj) IWbemClassObject_AddRef(obj);
    queue_push_open(sink->queue, node, &sink->closed);
    return WBEM_S_NO_ERROR;
}

static IWbemObjectSinkVtbl sink_vtbl =
{
    sink_QueryInterface,
    sink_AddRef,
    sink_Release,
    sink_Indicate,
    sink_SetStatus,
};

HRESULT sink_create(struct queue *q, struct sink **out)
{
    struct sink *sink;
    core_pin_module();     /* a provider may call a sink after lua_close */
    if (!(sink = calloc(1, sizeof(*sink)))) return E_OUTOFMEMORY;
    sink->IWbemObjectSink_iface.lpVtbl = &sink_vtbl;
    sink->refs = 1;             /* the caller's, a module reference */
    sink->queue = q;
    queue_addref(q);
    InterlockedIncrement(&wmi_stats.stubs);
    *out = sink;
    return S_OK;
}

void sink_addref(struct sink *s)
{
    InterlockedIncrement(&s->refs);
}

void sink_release(struct sink *s)
{
    if (InterlockedDecrement(&s->refs)) return;
    queue_release(s->queue);
    free(s);
    InterlockedDecrement(&wmi_stats.stubs);
}

IWbemObjectSink *sink_iface(struct sink *s)
{
    return &s->IWbemObjectSink_iface;
}

BOOL sink_end(struct sink *s, HRESULT hr)
{
    struct node *node;
    if (InterlockedExchange(&s->completed, 1) || s->closed) return TRUE;
    if (!(node = queue_new_node(s, NODE_STATUS))) return FALSE;
    node->hr = hr;
    queue_push(s->queue, node);
    return TRUE;
}

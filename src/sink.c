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

/* LIMIT objects wait undispatched: stop taking more, so that a subscription or a
 * huge query nobody dispatches cannot grow without bound. The call ends with this
 * status; the Lua thread then cancels it with the provider. */
static void sink_overflow(struct sink *sink)
{
    WCHAR text[80];
    struct node *node;

    if (InterlockedExchange(&sink->closed, 1)) return;
    InterlockedExchange(&sink->overflowed, 1);
    InterlockedIncrement(&wmi_stats.overflows);
    if (!(node = queue_new_node(sink, NODE_STATUS))) return;
    node->hr = WBEM_E_QUEUE_OVERFLOW;
    swprintf(text, ARRAYSIZE(text), L"%ld objects waited for dispatch; the call was cancelled", sink->limit);
    node->text = SysAllocString(text);
    queue_push(sink->queue, node);
}

static HRESULT WINAPI sink_Indicate(IWbemObjectSink *iface, LONG count, IWbemClassObject **objs)
{
    struct sink *sink = impl_from_IWbemObjectSink(iface);
    LONG i;

    if (count < 0 || (count && !objs)) return WBEM_E_INVALID_PARAMETER;
    for (i = 0; i < count && !sink->closed; i++)
    {
        struct node *node;
        if (InterlockedIncrement(&sink->queued) > sink->limit && sink->limit)
        {
            InterlockedDecrement(&sink->queued);
            sink_overflow(sink);
            break;
        }
        if (!(node = queue_new_node(sink, NODE_INDICATE)))
        {
            InterlockedDecrement(&sink->queued);
            return WBEM_E_OUT_OF_MEMORY;
        }
        node->obj = objs[i];
        if (node->obj) IWbemClassObject_AddRef(node->obj);
        queue_push(sink->queue, node);
    }
    return WBEM_S_NO_ERROR;
}

static HRESULT WINAPI sink_SetStatus(IWbemObjectSink *iface, LONG flags, HRESULT hr, BSTR text,
                                     IWbemClassObject *obj)
{
    struct sink *sink = impl_from_IWbemObjectSink(iface);
    struct node *node;
    enum node_kind kind;

    if (flags == WBEM_STATUS_COMPLETE)
    {
        kind = NODE_STATUS;
        if (InterlockedExchange(&sink->completed, 1)) return WBEM_S_NO_ERROR;  /* one final status */
    }
    else if (flags == WBEM_STATUS_PROGRESS) kind = NODE_PROGRESS;
    else return WBEM_S_NO_ERROR; /* e.g. WBEM_STATUS_REQUIREMENTS: nothing for Lua */
    if (sink->closed) return WBEM_S_NO_ERROR;

    if (!(node = queue_new_node(sink, kind))) return WBEM_E_OUT_OF_MEMORY;
    node->hr = hr;  /* for progress, the counts */
    if (text && !(node->text = SysAllocStringLen(text, SysStringLen(text))))
    {
        queue_free_node(node);
        return WBEM_E_OUT_OF_MEMORY;
    }
    node->obj = obj;
    if (obj) IWbemClassObject_AddRef(obj);
    queue_push(sink->queue, node);
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

/* Our IWbemObjectSink. WMI (or the unsecured apartment's stub) calls it on its own
 * threads: it only AddRefs what it is handed, appends to the Lua state's queue and
 * returns at once. It never touches a lua_State and never blocks. */
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

static ULONG WINAPI sink_AddRef(IWbemObjectSink *iface)
{
    return InterlockedIncrement(&impl_from_IWbemObjectSink(iface)->refs);
}

static ULONG WINAPI sink_Release(IWbemObjectSink *iface)
{
    struct sink *sink = impl_from_IWbemObjectSink(iface);
    LONG refs = InterlockedDecrement(&sink->refs);
    if (!refs)
    {
        queue_release(sink->queue);
        free(sink);
        InterlockedDecrement(&wmi_stats.stubs);
    }
    return refs;
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
        InterlockedExchange(&sink->completed, 1);
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
    sink->refs = 1;
    sink->queue = q;
    queue_addref(q);
    InterlockedIncrement(&wmi_stats.stubs);
    *out = sink;
    return S_OK;
}

void sink_addref(struct sink *s)
{
    sink_AddRef(&s->IWbemObjectSink_iface);
}

void sink_release(struct sink *s)
{
    sink_Release(&s->IWbemObjectSink_iface);
}

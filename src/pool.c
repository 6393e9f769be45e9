/* Work on the Windows thread pool whose result reaches the Lua thread through the
 * dispatch queue, like a sink's callbacks: wmi.connect_async (ConnectServer and the
 * proxy blanket on a pool thread) and the one-shot timers of the Lua layer (the
 * fan-out's per-host time limits fire inside wmi.dispatch, wmi.run or any wait).
 *
 * A pool thread never touches a lua_State: it fills the job and queues the node
 * made for it on the Lua thread, so it never allocates and never blocks on Lua.
 * Everything else runs on the Lua thread. A running job is anchored in the
 * registry and counted by wmi.pending(), as a call in flight is. */
#include "luawmi.h"

#define POOL_CONNECT "wmi.Connect"
#define POOL_TIMER   "wmi.Timer"

enum pool_kind { POOL_KIND_CONNECT, POOL_KIND_TIMER };

/* The Lua side's view; every transition is in pool_set_state. */
enum pool_state
{
    POOL_RUNNING,       /* submitted or armed: anchored, pending */
    POOL_CANCELLING,    /* connect: its cancellation status is queued (still pending) */
    POOL_DONE,          /* its result was delivered (or it was cancelled) */
    POOL_CLOSED,        /* closed: nothing reaches Lua any more */
};

/* User values of the userdata. */
enum { POOL_UV_HANDLER = 1, POOL_UV_APARTMENT, POOL_UV_SERVICES, POOL_UVS = POOL_UV_SERVICES };

struct job
{
    LONG refs;                  /* the userdata's, a pool thread's, one per queued node */
    enum pool_kind kind;
    enum pool_state state;      /* Lua thread only */
    struct queue *queue;
    int anchor;                 /* registry reference to the userdata while pending */
    struct node *node;          /* made on the Lua thread; taken by whoever queues it */
    volatile LONG abandoned;    /* the result is unwanted: a pool thread drops it */
    HRESULT hr;                 /* the pool thread's, written before its node is queued */
    HRESULT status;             /* Lua thread: what the handler got (result()) */
    /* connect */
    struct connect_args args;   /* read on the Lua thread, used by the pool thread */
    BOOL sta;                   /* the Lua thread is an STA: hand the services over marshalled */
    IWbemServices *svc;         /* the result (MTA), */
    IStream *stream;            /* or it, marshalled for the STA */
    struct identity *identity;
    /* timer */
    PTP_TIMER timer;
};

static void pool_addref(struct job *job)
{
    InterlockedIncrement(&job->refs);
}

/* The services a connect made and nobody took: released unseen. */
static void pool_drop_result(struct job *job)
{
    if (job->stream)
    {
        CoReleaseMarshalData(job->stream);
        IStream_Release(job->stream);
        job->stream = NULL;
    }
    if (job->svc) IWbemServices_Release(job->svc);
    job->svc = NULL;
    identity_release(job->identity);
    job->identity = NULL;
}

struct queue *pool_queue(struct job *job)
{
    return job->queue;
}

void pool_release(struct job *job)
{
    if (InterlockedDecrement(&job->refs)) return;
    pool_drop_result(job);
    connect_args_free(&job->args);
    free(job->node);            /* never queued */
    queue_release(job->queue);
    InterlockedDecrement(job->kind == POOL_KIND_CONNECT ? &wmi_stats.connects : &wmi_stats.timers);
    free(job);
}

/* Any thread: queues the job's own node, at most once. */
static void pool_post(struct job *job)
{
    struct node *node = InterlockedExchangePointer((void **)&job->node, NULL);
    if (!node) return;
    node->kind = NODE_STATUS;
    node->job = job;
    node->hr = S_OK;
    pool_addref(job);
    InterlockedIncrement(&wmi_stats.queued);    /* as queue_new_node counts a sink's */
    queue_push(job->queue, node);
}

/* --- the pool threads ------------------------------------------------------------ */

/* Every work item the module gives the pool is counted (wmi.stats().pool) from its
 * submission to the end of its callback: a process that exits while one runs kills
 * that thread wherever it is, perhaps holding a heap or loader lock its exit then
 * waits for (Wine hangs so; wmiq waits for the count to reach 0 first). */
static BOOL pool_submit(PTP_SIMPLE_CALLBACK work, void *context)
{
    InterlockedIncrement(&wmi_stats.pool);
    if (TrySubmitThreadpoolCallback(work, context, NULL)) return TRUE;
    InterlockedDecrement(&wmi_stats.pool);
    return FALSE;
}

static void pool_work_done(void)
{
    InterlockedDecrement(&wmi_stats.pool);
}

static void CALLBACK pool_connect_work(PTP_CALLBACK_INSTANCE instance, void *context)
{
    struct job *job = context;
    IWbemServices *svc = NULL;
    struct identity *id = NULL;
    HRESULT init, hr;

    /* ConnectServer blocks for as long as the host takes: let the pool add threads. */
    CallbackMayRunLong(instance);
    init = CoInitializeEx(NULL, COINIT_MULTITHREADED);
    hr = FAILED(init) ? init : connect_server(&job->args, &svc, &id);
    if (SUCCEEDED(hr) && job->sta && !job->abandoned)
    {
        /* An STA may only use what was marshalled into it. */
        hr = CoMarshalInterThreadInterfaceInStream(&IID_IWbemServices, (IUnknown *)svc, &job->stream);
        IWbemServices_Release(svc);
        svc = NULL;
    }
    job->svc = svc;
    job->identity = id;
    job->hr = hr;
    if (job->abandoned) pool_drop_result(job);
    else pool_post(job);
    pool_release(job);      /* before CoUninitialize: the last reference may release COM objects */
    if (SUCCEEDED(init)) CoUninitialize();
    pool_work_done();
}

static void CALLBACK pool_timer_fire(PTP_CALLBACK_INSTANCE instance, void *context, PTP_TIMER timer)
{
    (void)instance;
    (void)timer;
    pool_post(context);
}

/* --- a remote call's round trips ------------------------------------------------------
 * On another host every IWbemServices method is a synchronous DCOM round trip, the
 * *Async starts and CancelAsyncCall included, and so is the last Release of a proxy
 * (RemRelease); a host that accepted the connection and then stalls blocks each of
 * them. So they run here, never on the Lua thread. A flight is one call's share of
 * that work: its start, at most one cancel, then the release of what it holds, in
 * that order (the lock orders the start's round trip before the cancel's), each on a
 * pool thread (an MTA). A start that fails ends the call through its sink's status,
 * as SetStatus would: same message and HRESULT as a local start's return values. */

enum flight_phase { FLIGHT_QUEUED, FLIGHT_STARTED, FLIGHT_FAILED, FLIGHT_CANCELLED };

struct flight
{
    LONG refs;                  /* the call's, and one per work item submitted */
    CRITICAL_SECTION lock;
    enum flight_phase phase;    /* under the lock */
    struct call_args args;
    IWbemServices *svc;         /* usable in the MTA */
    IWbemObjectSink *target;    /* the pointer the call starts and cancels with */
    IStream *svc_stream;        /* STA: the Services' proxy, marshalled on the Lua thread */
    IStream *target_stream;     /* STA: an apartment's stub, marshalled on the Lua thread */
    struct sink *sink;          /* ours */
    struct identity *identity;
};

static void flight_release(struct flight *f)
{
    IStream **streams[2] = { &f->svc_stream, &f->target_stream };
    int i;
    if (InterlockedDecrement(&f->refs)) return;
    for (i = 0; i < 2; i++)
    {
        if (!*streams[i]) continue;
        CoReleaseMarshalData(*streams[i]);
        IStream_Release(*streams[i]);
    }
    if (f->svc) IWbemServices_Release(f->svc);
    if (f->target && f->target != sink_iface(f->sink)) IWbemObjectSink_Release(f->target);
    call_free_args(&f->args);
    identity_release(f->identity);
    sink_release(f->sink);
    DeleteCriticalSection(&f->lock);
    free(f);
}

/* STA: what was marshalled on the Lua thread, unmarshalled here. An unmarshalled
 * proxy starts with the default blanket: the connection's is set again. */
static HRESULT flight_unmarshal(struct flight *f)
{
    HRESULT hr = S_OK;
    if (f->svc_stream)
    {
        hr = CoGetInterfaceAndReleaseStream(f->svc_stream, &IID_IWbemServices, (void **)&f->svc);
        f->svc_stream = NULL;
        if (SUCCEEDED(hr)) hr = identity_blanket(f->identity, (IUnknown *)f->svc);
    }
    if (SUCCEEDED(hr) && f->target_stream)
    {
        hr = CoGetInterfaceAndReleaseStream(f->target_stream, &IID_IWbemObjectSink, (void **)&f->target);
        f->target_stream = NULL;
    }
    return hr;
}

static void CALLBACK flight_start_work(PTP_CALLBACK_INSTANCE instance, void *context)
{
    struct flight *f = context;
    IWbemObjectSink *own = sink_iface(f->sink);
    HRESULT init, hr;

    if (instance) CallbackMayRunLong(instance);
    init = CoInitializeEx(NULL, COINIT_MULTITHREADED);
    EnterCriticalSection(&f->lock);
    if (f->phase == FLIGHT_QUEUED)      /* else cancelled before it started */
    {
        /* Held across the start: a provider that takes the sink and lets it go
         * before the start returns is no vanished server (the start's result says). */
        IWbemObjectSink_AddRef(own);
        hr = FAILED(init) ? init : flight_unmarshal(f);
        if (SUCCEEDED(hr)) hr = call_issue(f->svc, &f->args, f->target);
        f->phase = SUCCEEDED(hr) ? FLIGHT_STARTED : FLIGHT_FAILED;
        if (FAILED(hr)) sink_end(f->sink, hr);
        IWbemObjectSink_Release(own);
    }
    LeaveCriticalSection(&f->lock);
    flight_release(f);      /* before CoUninitialize: it may release proxies */
    if (SUCCEEDED(init)) CoUninitialize();
    pool_work_done();
}

static void CALLBACK flight_cancel_work(PTP_CALLBACK_INSTANCE instance, void *context)
{
    struct flight *f = context;
    HRESULT init;

    if (instance) CallbackMayRunLong(instance);
    init = CoInitializeEx(NULL, COINIT_MULTITHREADED);
    EnterCriticalSection(&f->lock);
    /* The same pointer that started the call; none for a call that never started,
     * or whose provider has sent its final status (nothing left to stop). */
    if (f->phase == FLIGHT_QUEUED) f->phase = FLIGHT_CANCELLED;
    else if (f->phase == FLIGHT_STARTED && !f->sink->completed && SUCCEEDED(init))
        IWbemServices_CancelAsyncCall(f->svc, f->target);
    LeaveCriticalSection(&f->lock);
    flight_release(f);
    if (SUCCEEDED(init)) CoUninitialize();
    pool_work_done();
}

static void CALLBACK flight_release_work(PTP_CALLBACK_INSTANCE instance, void *context)
{
    HRESULT init;
    if (instance) CallbackMayRunLong(instance);
    init = CoInitializeEx(NULL, COINIT_MULTITHREADED);
    flight_release(context);
    if (SUCCEEDED(init)) CoUninitialize();
    pool_work_done();
}

/* Runs WORK with a reference of F's on a pool thread; where the pool refuses it,
 * on this thread: the round trip is then waited for, never skipped. */
static void flight_submit(struct flight *f, PTP_SIMPLE_CALLBACK work)
{
    InterlockedIncrement(&f->refs);
    if (pool_submit(work, f)) return;
    InterlockedIncrement(&wmi_stats.pool);      /* the work ends by counting itself done */
    work(NULL, f);
}

HRESULT pool_flight_start(struct queue *q, IWbemServices *svc, struct identity *id, struct stub *stub,
                          struct call_args *x, struct flight **out)
{
    struct flight *f = calloc(1, sizeof(*f));
    HRESULT hr = S_OK;

    *out = NULL;
    if (!f)
    {
        call_free_args(x);
        return E_OUTOFMEMORY;
    }
    f->refs = 1;
    InitializeCriticalSection(&f->lock);
    f->args = *x;
    f->sink = stub->sink;
    sink_addref(f->sink);
    f->identity = id;
    identity_addref(id);
    if (!queue_is_sta(q))
    {
        f->svc = svc;
        IWbemServices_AddRef(svc);
        f->target = stub_target(stub);
        if (stub->wrapped) IWbemObjectSink_AddRef(f->target);
    }
    else
    {
        /* An STA's proxies are the STA's: the pool gets its own. Our sink is
         * free-threaded and in this process: it needs no marshalling. */
        hr = CoMarshalInterThreadInterfaceInStream(&IID_IWbemServices, (IUnknown *)svc, &f->svc_stream);
        if (SUCCEEDED(hr) && stub->wrapped)
            hr = CoMarshalInterThreadInterfaceInStream(&IID_IWbemObjectSink, (IUnknown *)stub->wrapped,
                                                       &f->target_stream);
        if (!stub->wrapped) f->target = sink_iface(f->sink);
    }
    if (FAILED(hr))
    {
        flight_release(f);
        return hr;
    }
    InterlockedExchange(&f->sink->armed, 1);
    flight_submit(f, flight_start_work);
    *out = f;
    return S_OK;
}

void pool_flight_cancel(struct flight *f)
{
    flight_submit(f, flight_cancel_work);
}

void pool_flight_release(struct flight *f)
{
    if (!f) return;
    if (pool_submit(flight_release_work, f)) return;
    flight_release(f);
}

struct pool_proxy
{
    IUnknown *proxy;
    struct identity *id;        /* its blanket points into it: kept until released */
};

static void CALLBACK pool_release_work(PTP_CALLBACK_INSTANCE instance, void *context)
{
    struct pool_proxy *p = context;
    HRESULT init;
    CallbackMayRunLong(instance);
    init = CoInitializeEx(NULL, COINIT_MULTITHREADED);
    IUnknown_Release(p->proxy);
    identity_release(p->id);
    free(p);
    if (SUCCEEDED(init)) CoUninitialize();
    pool_work_done();
}

void pool_release_proxy(lua_State *L, IUnknown *proxy, struct identity *id)
{
    struct queue *q = queue_get(L);
    struct pool_proxy *p;
    /* An STA's proxy is released in the STA: pool threads are not its apartment. */
    if (id && id->remote && q && !queue_is_sta(q) && (p = malloc(sizeof(*p))))
    {
        core_pin_module();      /* the pool thread may outlive lua_close */
        p->proxy = proxy;
        p->id = id;
        identity_addref(id);
        if (pool_submit(pool_release_work, p)) return;
        identity_release(id);
        free(p);
    }
    IUnknown_Release(proxy);
}

/* --- the Lua objects ------------------------------------------------------------- */

static struct job **pool_box(lua_State *L, int arg)
{
    struct job **box = luaL_testudata(L, arg, POOL_CONNECT);
    if (!box && !(box = luaL_testudata(L, arg, POOL_TIMER))) luaL_typeerror(L, arg, POOL_CONNECT);
    return box;
}

static struct job *pool_check(lua_State *L, int arg)
{
    struct job *job = *pool_box(L, arg);
    if (!job) core_closed_error(L, luaL_testudata(L, arg, POOL_CONNECT) ? POOL_CONNECT : POOL_TIMER);
    return job;
}

/* The one place a job changes state. Leaving the pending states unanchors it. */
static void pool_set_state(lua_State *L, struct job *job, enum pool_state state)
{
    BOOL was_pending = job->state == POOL_RUNNING || job->state == POOL_CANCELLING;
    BOOL pending = state == POOL_RUNNING || state == POOL_CANCELLING;
    job->state = state;
    if (state != POOL_RUNNING) InterlockedExchange(&job->abandoned, 1);
    if (was_pending && !pending)
    {
        luaL_unref(L, LUA_REGISTRYINDEX, job->anchor);
        job->anchor = LUA_NOREF;
        queue_add_pending(job->queue, -1);
    }
}

/* Stops a timer for good: after this no callback runs or will run. */
static void pool_stop_timer(struct job *job)
{
    if (!job->timer) return;
    SetThreadpoolTimer(job->timer, NULL, 0, 0);
    WaitForThreadpoolTimerCallbacks(job->timer, TRUE);
    CloseThreadpoolTimer(job->timer);
    job->timer = NULL;
}

/*** A connection attempt, from `connect_async`, with a call's interface; `c.done` says whether its handler has run.
 * @type Connect
 */
/*** A timer of the Lua layer (`fanout`'s per-host timeouts).
 * @type Timer
 */
/*** Nothing more reaches Lua; a connection that completes later is released unseen.
 * @function Connect:close
 */
/*** Stops the timer.
 * @function Timer:close
 */
/* close, __close and __gc: nothing more reaches Lua; a connection that completes
 * later is released unseen. A delivered services belongs to the script. */
static int pool_close(lua_State *L)
{
    struct job **box = pool_box(L, 1), *job = *box;
    *box = NULL;
    if (!job) return 0;
    pool_stop_timer(job);
    if (job->state != POOL_CLOSED) pool_set_state(L, job, POOL_CLOSED);
    queue_purge_job(job->queue, job);
    pool_release(job);
    return 0;
}

/*** Abandons the attempt: the handler hears WBEM_E_CALL_CANCELLED. Idempotent.
 * @function Connect:cancel
 */
/* c:cancel(): the handler then receives WBEM_E_CALL_CANCELLED at the next dispatch,
 * and the connection, whenever it completes, is released unseen. Idempotent. */
static int pool_cancel(lua_State *L)
{
    struct job *job = pool_check(L, 1);
    struct node *node;
    if (job->state != POOL_RUNNING) return 0;
    job->status = WBEM_E_CALL_CANCELLED;
    pool_set_state(L, job, POOL_CANCELLING);
    queue_purge_job(job->queue, job);
    if (!(node = calloc(1, sizeof(*node))))
    {
        pool_set_state(L, job, POOL_DONE);     /* ends silently, as a call does */
        return 0;
    }
    node->kind = NODE_STATUS;
    node->job = job;
    node->hr = WBEM_E_CALL_CANCELLED;
    pool_addref(job);
    InterlockedIncrement(&wmi_stats.queued);
    queue_push(job->queue, node);
    return 0;
}

static BOOL pool_is_done(void *arg)
{
    struct job *job = *(struct job **)arg;
    return !job || job->state == POOL_DONE || job->state == POOL_CLOSED;
}

/*** Waits for the handler to have run, delivering callbacks meanwhile.
 * @function Connect:wait
 * @tparam[opt] integer ms
 * @treturn boolean true once done, false on timeout
 */
/* c:wait([ms]) --> true once the handler has run, delivering callbacks meanwhile */
static int pool_wait(lua_State *L)
{
    pool_check(L, 1);
    return queue_wait_method(L, pool_is_done, pool_box(L, 1));
}

/*** The connection, once done.
 * @function Connect:result
 * @treturn Services
 * @return nil, message, hresult
 */
/* c:result() --> the services | nil, message, hresult (once done) */
static int pool_result(lua_State *L)
{
    struct job *job = pool_check(L, 1);
    if (job->state != POOL_DONE) return luaL_error(L, "the connection has not finished (use wait())");
    if (FAILED(job->status)) return hresult_fail(L, job->status);
    lua_getiuservalue(L, 1, POOL_UV_SERVICES);
    return 1;
}

static int pool_index(lua_State *L)
{
    struct job *job = *pool_box(L, 1);
    const char *key = luaL_checkstring(L, 2);
    if (strcmp(key, "done")) return core_push_method(L, key);
    if (!job) return core_closed_error(L, lua_tostring(L, lua_upvalueindex(1)));
    lua_pushboolean(L, job->state == POOL_DONE);
    return 1;
}

static int pool_tostring(lua_State *L)
{
    static const char *const names[] = { "running", "cancelling", "done", "closed" };
    struct job *job = *pool_box(L, 1);
    const char *meta = luaL_testudata(L, 1, POOL_CONNECT) ? POOL_CONNECT : POOL_TIMER;
    if (!job) lua_pushfstring(L, "%s (closed)", meta);
    else if (job->state == POOL_DONE && FAILED(job->status)) lua_pushfstring(L, "%s (failed)", meta);
    else lua_pushfstring(L, "%s (%s)", meta, names[job->state]);
    return 1;
}

/* --- delivering on the Lua thread -------------------------------------------------- */

/* The connect's result as handler arguments: services, nil, 0 or nil, message,
 * hresult. The services userdata (at SVC) is made before anything is taken out of
 * the job: only then can nothing raise while a COM pointer is held in C alone. */
static void pool_push_result(lua_State *L, struct job *job, int ud, int svc_box)
{
    IWbemServices *svc = job->svc;
    struct identity *id = job->identity;
    IStream *stream = job->stream;
    HRESULT hr = job->hr;
    int apt;

    job->svc = NULL;
    job->identity = NULL;
    job->stream = NULL;
    if (SUCCEEDED(hr) && stream)
    {
        hr = CoGetInterfaceAndReleaseStream(stream, &IID_IWbemServices, (void **)&svc);
        /* A blanket is a proxy's own: the unmarshalled one needs it again. */
        if (SUCCEEDED(hr) && FAILED(hr = identity_blanket(id, (IUnknown *)svc)))
        {
            IWbemServices_Release(svc);
            svc = NULL;
        }
    }
    lua_getiuservalue(L, ud, POOL_UV_APARTMENT);
    apt = lua_isnil(L, -1) ? 0 : lua_gettop(L);
    /* services_open takes svc and id, whatever it returns. */
    if (SUCCEEDED(hr)) hr = services_open(L, svc_box, svc, id, job->args.label, apt);
    else
    {
        /* Failed before: in the pool (marshalling into the STA) or unmarshalling. */
        if (svc) IWbemServices_Release(svc);
        identity_release(id);
    }
    lua_pop(L, 1);
    job->status = job->hr = hr;     /* what was taken out: a raise below retries with HR */
    if (FAILED(hr))
    {
        lua_pushnil(L);
        hresult_push_message(L, hr);
        lua_pushinteger(L, (lua_Integer)(DWORD)hr);
        return;
    }
    lua_pushvalue(L, svc_box);
    lua_setiuservalue(L, ud, POOL_UV_SERVICES);
    lua_pushvalue(L, svc_box);
    lua_pushnil(L);
    lua_pushinteger(L, 0);
}

/* Takes NODE (queue_drop); returns 1 when a handler ran. What allocates (and so
 * may raise, or run a finalizer) comes before the node is dropped and the state
 * changes, the handler's arguments included (a failed connect's message): a raise
 * puts the node back for the next dispatch. */
int pool_deliver(lua_State *L, struct node *node)
{
    struct job *job = node->job;
    BOOL cancellation = node->hr == (HRESULT)WBEM_E_CALL_CANCELLED;
    BOOL result = job->kind == POOL_KIND_CONNECT && !cancellation;
    int base = lua_gettop(L), ud, msgh, nargs = job->kind == POOL_KIND_TIMER ? 0 : 3;

    /* After cancel only the cancellation status gets through: the pool's result is
     * released unseen (when the job goes). */
    if (job->state != (cancellation ? POOL_CANCELLING : POOL_RUNNING))
    {
        queue_drop(node);
        return 0;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, job->anchor);
    ud = lua_gettop(L);
    if (result) services_push_closed(L);
    lua_pushcfunction(L, core_traceback);
    msgh = lua_gettop(L);
    if (cancellation)
    {
        lua_pushnil(L);
        hresult_push_message(L, job->status);
        lua_pushinteger(L, (lua_Integer)(DWORD)job->status);
    }
    else if (result) pool_push_result(L, job, ud, ud + 1);
    core_reserve_call(L);
    if (!*(struct job **)lua_touserdata(L, ud))    /* a finalizer closed it meanwhile */
    {
        lua_settop(L, base);
        queue_drop(node);
        return 0;
    }
    pool_addref(job);
    queue_drop(node);
    pool_set_state(L, job, POOL_DONE);
    lua_getiuservalue(L, ud, POOL_UV_HANDLER);
    lua_insert(L, msgh + 1);
    lua_pushvalue(L, ud);
    if (!*(struct job **)lua_touserdata(L, ud))
    {
        lua_settop(L, base);
        pool_release(job);
        return 0;
    }
    pool_release(job);
    if (lua_pcall(L, nargs + 1, 0, msgh))
    {
        lua_replace(L, base + 1);
        lua_settop(L, base + 1);
        lua_error(L);
    }
    lua_settop(L, base);
    return 1;
}

/* --- starting ---------------------------------------------------------------------- */

/* Pushes a closed userdata of META with the handler at ARG, and makes its job
 * (with the node it will queue); nothing is anchored or counted yet. */
static struct job *pool_new(lua_State *L, const char *meta, int arg, enum pool_kind kind)
{
    struct queue *q = queue_get(L);
    struct job **box, *job;
    if (!q) luaL_error(L, "the module is closing");
    box = lua_newuserdatauv(L, sizeof(*box), POOL_UVS);
    *box = NULL;
    luaL_setmetatable(L, meta);
    lua_pushvalue(L, arg);
    lua_setiuservalue(L, -2, POOL_UV_HANDLER);
    if (!(job = calloc(1, sizeof(*job))) || !(job->node = calloc(1, sizeof(*job->node))))
    {
        free(job);
        return NULL;
    }
    core_pin_module();     /* a pool thread may outlive lua_close */
    job->refs = 1;
    job->kind = kind;
    job->state = POOL_CLOSED;
    job->anchor = LUA_NOREF;
    job->queue = q;
    queue_addref(q);
    InterlockedIncrement(kind == POOL_KIND_CONNECT ? &wmi_stats.connects : &wmi_stats.timers);
    *box = job;
    return job;
}

/* The job at the top of the stack runs: anchored and pending. */
static void pool_start(lua_State *L, struct job *job)
{
    job->state = POOL_RUNNING;
    lua_pushvalue(L, -1);
    job->anchor = luaL_ref(L, LUA_REGISTRYINDEX);
    queue_add_pending(job->queue, 1);
}

/*** Connects without blocking the Lua thread.
 * ConnectServer and the proxy blanket run on the Windows thread pool; the handler runs
 * on the Lua thread inside a dispatch. Counts in `pending`.
 * @function connect_async
 * @tparam table opts `connect`'s options
 * @tparam function handler `handler(svc, nil, 0, c)` or `handler(nil, message, hresult, c)`
 * @treturn Connect the attempt
 * @return nil, message, hresult
 */
/* wmi.connect_async(opts, handler) --> a wmi.Connect | nil, message, hresult.
 * OPTS as wmi.connect's; handler(svc, nil, 0, c) or handler(nil, message, hresult, c). */
int pool_connect_async(lua_State *L)
{
    struct job *job;
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    if (!(job = pool_new(L, POOL_CONNECT, 2, POOL_KIND_CONNECT))) return luaL_error(L, "not enough memory");
    /* Raises on misuse; the userdata (at 3) then frees the job when collected. */
    connect_args_read(L, 1, "connect_async", &job->args);
    job->sta = queue_is_sta(job->queue);
    if (core_opt_field(L, 1, "apartment") != LUA_TNIL) lua_setiuservalue(L, 3, POOL_UV_APARTMENT);
    else lua_pop(L, 1);
    pool_addref(job);       /* the pool thread's */
    if (!pool_submit(pool_connect_work, job))
    {
        HRESULT hr = HRESULT_FROM_WIN32(GetLastError());
        pool_release(job);
        return hresult_fail(L, hr);
    }
    pool_start(L, job);
    return 1;
}

/* core.timer(ms, handler) --> a wmi.Timer: handler(t) runs once, inside a dispatch,
 * after MS milliseconds; pending until then. t:close() stops it. For the Lua layer. */
int pool_timer(lua_State *L)
{
    DWORD ms = queue_check_ms(L, 1, 0);
    struct job *job;
    FILETIME due;
    ULARGE_INTEGER t;
    luaL_checktype(L, 2, LUA_TFUNCTION);
    luaL_argcheck(L, ms != INFINITE, 1, "finite milliseconds expected");
    if (!(job = pool_new(L, POOL_TIMER, 2, POOL_KIND_TIMER))) return luaL_error(L, "not enough memory");
    if (!(job->timer = CreateThreadpoolTimer(pool_timer_fire, job, NULL)))
    {
        HRESULT hr = HRESULT_FROM_WIN32(GetLastError());
        lua_pushcfunction(L, pool_close);
        lua_insert(L, -2);
        lua_call(L, 1, 0);
        return hresult_fail(L, hr);
    }
    pool_start(L, job);
    t.QuadPart = (ULONGLONG)(-(LONGLONG)ms * 10000);   /* relative, in 100 ns */
    due.dwLowDateTime = t.LowPart;
    due.dwHighDateTime = t.HighPart;
    SetThreadpoolTimer(job->timer, &due, 0, 0);
    return 1;
}

void pool_register(lua_State *L)
{
    static const luaL_Reg connect_methods[] = {
        { "cancel", pool_cancel },
        { "wait", pool_wait },
        { "result", pool_result },
        { "close", pool_close },
        { NULL, NULL }
    };
    static const luaL_Reg timer_methods[] = {
        { "close", pool_close },
        { NULL, NULL }
    };
    static const luaL_Reg meta[] = {
        { "__gc", pool_close },
        { "__close", pool_close },
        { "__tostring", pool_tostring },
        { NULL, NULL }
    };
    static const struct { const char *name; const luaL_Reg *methods; } types[] = {
        { POOL_CONNECT, connect_methods }, { POOL_TIMER, timer_methods },
    };
    size_t i;
    for (i = 0; i < ARRAYSIZE(types); i++)
    {
        core_new_class(L, types[i].name, NULL, meta);
        lua_pushstring(L, types[i].name);
        lua_pushcclosure(L, pool_index, 1);
        lua_setfield(L, -2, "__index");
        lua_newtable(L);
        luaL_setfuncs(L, types[i].methods, 0);
        lua_setfield(L, -2, "methods");
        lua_pop(L, 1);
    }
}

/* wmi.Call: one asynchronous WMI call, and the *_async methods of wmi.Services
 * that start one. Everything here runs on the Lua thread: COM threads only reach
 * the sink, which queues; call_deliver hands the queue's nodes to the handlers.
 *
 * Lifetime: a call in flight is anchored in the registry, so dropping it still
 * delivers. When its final status is delivered (or it is closed) the module
 * releases the stub and the handlers: no stub/sink cycle can outlive the call.
 *
 * Another host's call never makes the Lua thread wait on the network: its start,
 * its cancel and its release of the proxies are round trips, run on the thread
 * pool (pool.c's flights); the call is returned at once, STARTING, and a start
 * that fails ends it through its status, with the message and HRESULT a local
 * start returns. A local call starts here, directly (nothing to wait for but the
 * provider), and a refused start returns nil, message, hresult. Exactly one
 * status reaches Lua either way: the provider's (SetStatus), the module's own
 * cancellation, a failed start's, or RPC_E_DISCONNECTED when the provider let
 * the sink go without one (sink.c). */
#include "luawmi.h"
#include <string.h>

/* A call's life. Every change of state is made by call_set_state, which does
 * what the change means; nothing else writes c->state.
 *   NEW -> STARTING          the start is issued: on the Lua thread for a local
 *                            connection, handed to the pool for another host's
 *                            (call:... returns at once); anchored, in its lists,
 *                            counted pending, its stub in use
 *   STARTING -> RUNNING      the provider took the call: a local start returned, or
 *                            a remote call's first callback arrived
 *   STARTING -> COMPLETED    a local start refused (the stub is free for another
 *                            call), or a remote call's status (a failed start's too)
 *   STARTING/RUNNING -> CANCELLING  call:cancel(): the provider is stopped; only the
 *                            module's own cancellation status is still to come
 *   any -> COMPLETED         its status was delivered, or it ended unheard (its
 *                            Services, apartment or stub closed, or it did): the
 *                            stub, the handlers and the anchor are released
 * CLOSED is no state: call_close frees the struct and empties the userdata box. */
enum call_state { CALL_NEW, CALL_STARTING, CALL_RUNNING, CALL_CANCELLING, CALL_COMPLETED };

struct call
{
    enum call_state state;
    struct stub *stub;              /* until COMPLETED */
    IWbemServices *svc;             /* until COMPLETED, local: for CancelAsyncCall */
    struct flight *flight;          /* until COMPLETED, remote: its round trips on the pool */
    struct identity *identity;      /* until COMPLETED: what the proxy's blanket refers to */
    struct call_link links[2];      /* in the services' and the apartment's lists, while running */
    struct call_list *lists[2];
    int anchor;                     /* registry reference, from STARTING until COMPLETED */
    lua_Integer count;              /* objects delivered */
    HRESULT hr;                     /* once COMPLETED */
    HRESULT cancel_hr;              /* the status a cancel ends it with */
    int message;                    /* registry reference to the failure message */
    BOOL buffered;                  /* started without an indicate handler: call:next's */
    struct node *first, *last;      /* its objects, delivered and not yet taken by call:next */
};

static struct call **call_box(lua_State *L, int arg)
{
    return luaL_checkudata(L, arg, WMI_CALL);
}

static struct call *call_check(lua_State *L, int arg)
{
    struct call *c = *call_box(L, arg);
    if (!c) core_closed_error(L, WMI_CALL);
    return c;
}

/* --- lists of calls (a services' or an apartment's) ----------------------------- */

static void call_link(struct call *c, int i, struct call_list *list)
{
    c->lists[i] = list;
    c->links[i].prev = NULL;
    c->links[i].next = list->head;
    if (list->head) list->head->links[i].prev = c;
    list->head = c;
}

static void call_unlink(struct call *c)
{
    int i;
    for (i = 0; i < 2; i++)
    {
        struct call_link *l = &c->links[i];
        if (!c->lists[i]) continue;
        if (l->prev) l->prev->links[i].next = l->next;
        else c->lists[i]->head = l->next;
        if (l->next) l->next->links[i].prev = l->prev;
        c->lists[i] = NULL;
    }
}

/* --- one async call per IWbemServices (Wine) ----------------------------------------
 * Wine's provider runs one async call per IWbemServices and frees that slot only
 * in CancelAsyncCall, even after the call completed, whatever sink it is given
 * (it refuses the next call with WBEM_E_FAILED meanwhile). Windows has no such
 * slot, so nothing is paid for it there: a refused call is retried once, after one
 * CancelAsyncCall, only when every call of that Services has completed with the
 * provider (so that cancel can stop none of them) and only when the call has no
 * side effect (Wine has no async method that has). */

static BOOL call_may_retry(enum call_kind kind)
{
    return kind != CALL_EXEC && kind != CALL_PUT && kind != CALL_DELETE;
}

static BOOL call_slot_free(struct services *s, IWbemObjectSink *any)
{
    struct call *c;
    for (c = services_calls(s)->head; c; c = c->links[0].next)
        if (c->state == CALL_RUNNING && !c->stub->sink->completed) return FALSE;
    IWbemServices_CancelAsyncCall(services_iface(s), any);
    return TRUE;
}

/* --- the state ----------------------------------------------------------------- */

/* Nothing more of the provider's reaches Lua. CancelAsyncCall gets the stub that
 * started the call, and only while the provider has not completed the call: a
 * completed call's cancel could stop whatever holds Wine's slot by now. A local
 * one runs here (never from a COM callback: it can deadlock), a remote one on the
 * pool after its start's round trip. */
static void call_stop_provider(struct call *c)
{
    struct sink *sink = c->stub->sink;
    InterlockedExchange(&sink->closed, 1);
    queue_purge(sink->queue, sink);
    if (c->flight) pool_flight_cancel(c->flight);
    else if (!sink->completed && c->svc) IWbemServices_CancelAsyncCall(c->svc, stub_target(c->stub));
}

/* The call has ended: the objects it still holds no longer need its sink's
 * limits (nothing more arrives), nor the sink itself, which goes with the stub. */
static void call_detach_buffer(struct call *c)
{
    struct node *node;
    for (node = c->first; node; node = node->next)
    {
        if (node->bytes)
        {
            InterlockedDecrement(&node->sink->queued);
            InterlockedExchangeAdd(&node->sink->bytes, -node->bytes);
            node->bytes = 0;
        }
        sink_release(node->sink);
        node->sink = NULL;
    }
}

static void call_set_state(lua_State *L, struct call *c, enum call_state to)
{
    enum call_state from = c->state;
    struct stub *stub = c->stub;
    struct queue *q = stub ? stub->sink->queue : NULL;
    struct node *node;
    BOOL refused;

    if (from == CALL_COMPLETED || from == to) return;
    c->state = to;
    switch (to)
    {
    case CALL_NEW:
        break;
    case CALL_STARTING:
        stub->used = TRUE;
        queue_add_pending(q, 1);
        break;
    case CALL_RUNNING:
        break;
    case CALL_CANCELLING:
        call_stop_provider(c);
        /* The sink is closed to WMI now: this status is the only node left. */
        if ((node = queue_new_node(stub->sink, NODE_STATUS)))
        {
            node->hr = c->cancel_hr;
            queue_push(q, node);
            break;
        }
        c->hr = c->cancel_hr;
        call_set_state(L, c, CALL_COMPLETED);   /* no memory for it: ended unheard */
        break;
    case CALL_COMPLETED:
        /* A local start the provider refused: it never had the stub. */
        refused = from == CALL_STARTING && !c->flight;
        if (from == CALL_RUNNING || (from == CALL_STARTING && c->flight)) call_stop_provider(c);
        else queue_purge(q, stub->sink);    /* what a refused call may have queued too */
        call_unlink(c);
        if (from != CALL_NEW) queue_add_pending(q, -1);
        if (lua_rawgeti(L, LUA_REGISTRYINDEX, c->anchor) == LUA_TUSERDATA)
        {
            lua_pushnil(L);
            lua_setiuservalue(L, -2, 2);    /* a finished call lets go of its Services */
        }
        lua_pop(L, 1);
        luaL_unref(L, LUA_REGISTRYINDEX, c->anchor);
        c->anchor = LUA_NOREF;
        call_detach_buffer(c);
        stub->call = NULL;
        c->stub = NULL;
        /* A refused call leaves its stub free to serve another; a finished one
         * lets go of it at once, on every provider. */
        if (refused) stub->used = FALSE;
        else stub_release(L, stub);
        pool_flight_release(c->flight);
        c->flight = NULL;
        if (c->svc) IWbemServices_Release(c->svc);
        c->svc = NULL;
        identity_release(c->identity);
        c->identity = NULL;
        break;
    }
}

/* Ends C unheard (no status handler): its services, apartment or stub is closing,
 * or it is. Its result then reads cancelled (the message is made when asked: this
 * allocates nothing, so a close never stops half-way). */
static void call_abort(lua_State *L, struct call *c)
{
    if (c->state == CALL_COMPLETED) return;
    c->hr = WBEM_E_CALL_CANCELLED;
    call_set_state(L, c, CALL_COMPLETED);
}

/* Cancels C, whose status handler then receives HR at the next dispatch. */
static void call_cancel_with(lua_State *L, struct call *c, HRESULT hr)
{
    if (c->state != CALL_RUNNING && c->state != CALL_STARTING) return;
    c->cancel_hr = hr;
    call_set_state(L, c, CALL_CANCELLING);
}

/*** An asynchronous call, from the `_async` methods and `Services:subscribe`.
 * Its callbacks run on the Lua thread in `dispatch`, `run` or a wait. `call.done` says
 * whether it has ended, `call.count` how many objects it delivered.
 * A call in flight keeps its Services, stub and handlers alive.
 * @type Call
 */
/*** Cancels the call: the status handler then hears WBEM_E_CALL_CANCELLED.
 * Idempotent. Cancel is no rollback: a provider may still complete a write.
 * @function Call:cancel
 */
/* call:cancel(): the status handler then receives WBEM_E_CALL_CANCELLED, at the
 * next dispatch. Idempotent, and harmless after completion. */
static int call_cancel(lua_State *L)
{
    call_cancel_with(L, call_check(L, 1), WBEM_E_CALL_CANCELLED);
    return 0;
}

void call_cancel_list(lua_State *L, struct call_list *list)
{
    while (list->head) call_abort(L, list->head);
}

void call_detach_stub(lua_State *L, struct call *c)
{
    call_abort(L, c);
}

/* The objects C holds for call:next go: they stay counted against the call's
 * limits until then (sink.c), so a buffering call is bounded as a handler's is. */
static void call_free_buffer(struct call *c)
{
    struct node *node;
    while ((node = c->first))
    {
        c->first = node->next;
        queue_free_node(node);
    }
    c->last = NULL;
}

/* Closes the call in BOX: cancel if still running, drop the handlers unheard. */
static void call_destroy(lua_State *L, struct call **box)
{
    struct call *c = *box;
    *box = NULL;
    if (!c) return;
    call_abort(L, c);
    call_free_buffer(c);
    luaL_unref(L, LUA_REGISTRYINDEX, c->message);
    free(c);
    InterlockedDecrement(&wmi_stats.calls);
}

/*** Cancels the call if it runs and drops its handlers unheard (also `__close`, `__gc`).
 * @function Call:close
 */
static int call_close(lua_State *L)
{
    call_destroy(L, call_box(L, 1));
    return 0;
}

void call_end_stream(lua_State *L, int arg, BOOL owned)
{
    struct call **box = luaL_testudata(L, arg, WMI_CALL);
    if (!box || !*box) return;
    if (owned || (*box)->state != CALL_COMPLETED) call_destroy(L, box);
    else call_free_buffer(*box);
}

/* --- delivering ---------------------------------------------------------------- */

/* Runs the handler and its NARGS arguments on the stack; rethrows its error with
 * a traceback after the caller released everything it held. */
static void call_run_handler(lua_State *L, int nargs)
{
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, core_traceback);
    lua_insert(L, base);
    if (lua_pcall(L, nargs, 0, base))
    {
        lua_remove(L, base);
        lua_error(L);
    }
    lua_remove(L, base);
}

static void call_push_status_message(lua_State *L, HRESULT hr, const WCHAR *text)
{
    hresult_push_message(L, hr);
    if (text && *text)
    {
        lua_pushliteral(L, " (");
        str_push_wide(L, text, -1);
        lua_pushliteral(L, ")");
        lua_concat(L, 4);
    }
}

/* Drops NODE when its call ended while the handler's arguments were pushed: an
 * allocation may run a finalizer (that closes the call, freeing C, or its
 * Services). The call's userdata, at BASE + 1, says which. */
static BOOL call_ended_meanwhile(lua_State *L, struct call *c, int base, struct node *node)
{
    if (*(struct call **)lua_touserdata(L, base + 1) == c && c->state != CALL_COMPLETED) return FALSE;
    lua_settop(L, base);
    queue_drop(node);
    return TRUE;
}

/* Takes NODE (queue_drop); returns 1 when a callback was delivered. A raise
 * while the arguments are made (out of memory) leaves NODE with the queue. */
int call_deliver(lua_State *L, struct node *node)
{
    struct stub *stub = node->sink->stub;
    struct call *c = stub ? stub->call : NULL;
    int base = lua_gettop(L), handler, message = LUA_NOREF;

    /* After cancel only the module's own cancellation status gets through: a
     * COM thread may have queued a little after the purge. */
    if (!c || c->state == CALL_COMPLETED || c->state == CALL_NEW
        || (c->state == CALL_CANCELLING && (node->kind != NODE_STATUS || node->hr != c->cancel_hr)))
    {
        queue_drop(node);
        return 0;
    }
    /* A remote call's first callback: its provider has it. */
    if (node->kind != NODE_STATUS) call_set_state(L, c, CALL_RUNNING);
    /* First the call itself (no allocation): on the stack it stays reachable,
     * and with it its stub, whatever a finalizer does meanwhile. */
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->anchor);
    switch (node->kind)
    {
    case NODE_INDICATE:
        handler = stub->handlers[STUB_INDICATE];
        if (handler == LUA_NOREF) break;
        lua_rawgeti(L, LUA_REGISTRYINDEX, handler);
        if (node->obj) object_push(L, node->obj);
        else lua_pushnil(L);
        core_reserve_call(L);
        if (call_ended_meanwhile(L, c, base, node)) return 0;
        c->count++;
        lua_rotate(L, base + 1, -1);    /* handler, obj, call */
        queue_drop(node);
        call_run_handler(L, 2);
        lua_settop(L, base);
        return 1;
    case NODE_PROGRESS:
        handler = stub->handlers[STUB_PROGRESS];
        if (handler == LUA_NOREF) break;
        lua_rawgeti(L, LUA_REGISTRYINDEX, handler);
        lua_pushinteger(L, LOWORD(node->hr));
        lua_pushinteger(L, HIWORD(node->hr));
        if (node->text) str_push_wide(L, node->text, -1);
        else lua_pushnil(L);
        core_reserve_call(L);
        if (call_ended_meanwhile(L, c, base, node)) return 0;
        lua_rotate(L, base + 1, -1);    /* handler, current, total, text, call */
        queue_drop(node);
        call_run_handler(L, 4);
        lua_settop(L, base);
        return 1;
    case NODE_STATUS:
        handler = stub->handlers[STUB_STATUS];
        if (handler != LUA_NOREF) lua_rawgeti(L, LUA_REGISTRYINDEX, handler);
        lua_pushboolean(L, SUCCEEDED(node->hr));
        /* Success carries SetStatus's string: put_async's is the written path. */
        if (FAILED(node->hr)) call_push_status_message(L, node->hr, node->text);
        else if (node->text) str_push_wide(L, node->text, -1);
        else lua_pushnil(L);
        lua_pushinteger(L, (lua_Integer)(DWORD)node->hr);
        if (node->obj) object_push(L, node->obj);
        else lua_pushnil(L);
        core_reserve_call(L);
        if (FAILED(node->hr))
        {
            lua_pushvalue(L, -3);
            message = luaL_ref(L, LUA_REGISTRYINDEX);   /* allocates: before the check */
        }
        if (call_ended_meanwhile(L, c, base, node))
        {
            luaL_unref(L, LUA_REGISTRYINDEX, message);
            return 0;
        }
        c->hr = node->hr;
        c->message = message;
        queue_drop(node);
        /* Release first: the handler may raise, start calls, or drop this one. */
        call_set_state(L, c, CALL_COMPLETED);
        if (handler == LUA_NOREF)
        {
            lua_settop(L, base);
            return 1;
        }
        lua_rotate(L, base + 1, -1);    /* handler, ok, message, hresult, obj, call */
        call_run_handler(L, 5);
        lua_settop(L, base);
        return 1;
    }
    lua_settop(L, base);
    if (node->kind == NODE_INDICATE)
    {
        c->count++;
        /* No indicate handler: the call keeps the object for call:next. */
        if (node->obj)
        {
            queue_take(node);
            node->next = NULL;
            if (c->last) c->last->next = node;
            else c->first = node;
            c->last = node;
            return 1;
        }
    }
    queue_drop(node);
    return 1;
}

/* --- the Lua object ------------------------------------------------------------ */

/* Reads the call through its userdata box: a handler run by the wait may close
 * the call (then it has finished, silently). */
static BOOL call_is_done(void *arg)
{
    struct call *c = *(struct call **)arg;
    return !c || c->state == CALL_COMPLETED;
}

/*** Waits for the call's end, delivering callbacks meanwhile.
 * @function Call:wait
 * @tparam[opt] integer ms at most this long (not negative)
 * @treturn boolean true when it ended, false on timeout
 */
/* call:wait([ms]) --> true when finished (delivering callbacks meanwhile), false on timeout */
static int call_wait(lua_State *L)
{
    call_check(L, 1);
    return queue_wait_method(L, call_is_done, call_box(L, 1));
}

/* Pushes nil, message, hresult of the finished, failed call C. */
static int call_push_failure(lua_State *L, struct call *c)
{
    lua_pushnil(L);
    if (c->message == LUA_NOREF) hresult_push_message(L, c->hr);
    else lua_rawgeti(L, LUA_REGISTRYINDEX, c->message);
    lua_pushinteger(L, (lua_Integer)(DWORD)c->hr);
    return 3;
}

/*** How the call ended.
 * @function Call:result
 * @treturn boolean true
 * @return nil, message, hresult
 */
static int call_result(lua_State *L)
{
    struct call *c = call_check(L, 1);
    if (c->state != CALL_COMPLETED) return luaL_error(L, "the call has not finished (use call:wait())");
    if (FAILED(c->hr)) return call_push_failure(L, c);
    lua_pushboolean(L, 1);
    return 1;
}

struct call *call_check_buffered(lua_State *L, int arg)
{
    struct call *c = call_check(L, arg);
    if (!c->buffered)
        luaL_argerror(L, arg, lua_pushfstring(L, "%s started without an indicate handler expected, got %s",
                                              WMI_CALL, luaL_tolstring(L, arg, NULL)));
    return c;
}

/* Through the box, as call_is_done: a handler run by the wait may close the call. */
static BOOL call_has_next(void *arg)
{
    struct call *c = *(struct call **)arg;
    return !c || c->first || c->state == CALL_COMPLETED;
}

int call_next_push(lua_State *L, int arg, DWORD ms)
{
    struct call **box = call_box(L, arg), *c = call_check_buffered(L, arg);
    DWORD start = GetTickCount(), spent;
    struct object *o;
    struct node *node;

    for (;;)
    {
        if (!c->first && c->state != CALL_COMPLETED)
        {
            spent = GetTickCount() - start;
            if (ms != INFINITE && spent >= ms) spent = ms;
            if (!queue_wait_until(L, call_has_next, box, ms == INFINITE ? INFINITE : ms - spent)
                && !call_has_next(box))
            {
                lua_pushboolean(L, 0);
                return 1;
            }
            c = call_check(L, arg);
        }
        if (!c->first)  /* then it has ended: call_has_next said so */
        {
            if (FAILED(c->hr)) return call_push_failure(L, c);
            lua_pushnil(L);
            return 1;
        }
        /* The userdata first (luawmi.h): a finalizer may close the call or take
         * the object meanwhile. */
        o = object_new(L);
        c = call_check(L, arg);
        if (!(node = c->first))
        {
            lua_pop(L, 1);
            continue;
        }
        if (!(c->first = node->next)) c->last = NULL;
        object_fill(o, node->obj);
        node->obj = NULL;
        queue_free_node(node);
        return 1;
    }
}

/*** The next object of a call started without an indicate handler.
 * Such a call keeps the objects it is delivered in its own queue, in arrival
 * order, counted against its queue_limit and queue_bytes until taken; this takes
 * the first, waiting up to ms for one (delivering every call's callbacks
 * meanwhile, as call:wait does).
 * @function Call:next
 * @tparam[opt] number ms milliseconds to wait at most (default: no limit)
 * @treturn wmi.Object|false|nil the next object; false when ms elapsed first with
 * the call still running; nil when the call has ended and every object was taken:
 * then, if it failed (cancelled, WBEM_E_QUEUE_OVERFLOW, the provider's error),
 * also the message and HRESULT of call:result().
 */
static int call_next(lua_State *L)
{
    call_check_buffered(L, 1);
    return call_next_push(L, 1, queue_check_ms(L, 2, INFINITE));
}

/*** Whether the call has ended.
 * @field Call.done
 */
/*** The number of objects delivered so far.
 * @field Call.count
 */
/* Fields need an open call; methods do not: closing twice is harmless. */
static int call_index(lua_State *L)
{
    struct call *c = *call_box(L, 1);
    const char *key = luaL_checkstring(L, 2);
    if ((!strcmp(key, "done") || !strcmp(key, "count")) && !c) return core_closed_error(L, WMI_CALL);
    if (!strcmp(key, "done")) lua_pushboolean(L, c->state == CALL_COMPLETED);
    else if (!strcmp(key, "count")) lua_pushinteger(L, c->count);
    else return core_push_method(L, key);
    return 1;
}

static int call_tostring(lua_State *L)
{
    static const char *const names[] = { "new", "starting", "running", "cancelling", "done" };
    struct call *c = *call_box(L, 1);
    if (!c) lua_pushfstring(L, "%s (closed)", WMI_CALL);
    else lua_pushfstring(L, "%s (%s, %I objects)", WMI_CALL,
                         c->state == CALL_COMPLETED && FAILED(c->hr) ? "failed" : names[c->state], c->count);
    return 1;
}

/* --- starting calls ------------------------------------------------------------ */

/* Finds or makes the stub for the sink argument ARG and pushes a closed call
 * userdata whose user values are the stub and the Services (at 1: a call in
 * flight is anchored, and so keeps its Services from the collector). Returns the stub, or NULL with nil,
 * message, hresult pushed (the apartment could not make a stub). Callers run it
 * before they acquire anything: it may raise. The stub returned is only a yes:
 * call_start reads it again after its last allocation (luawmi.h). */
static struct stub *call_prepare(lua_State *L, int arg)
{
    struct stub *stub = stub_test(L, arg);
    struct call **box;

    if (stub)
    {
        if (stub->used) luaL_argerror(L, arg, "stub already used (a stub serves one call)");
        if (!*stub->apartment) luaL_argerror(L, arg, "the stub's apartment is closed");
        lua_pushvalue(L, arg);
    }
    else
    {
        int t = lua_type(L, arg);
        luaL_argexpected(L, t == LUA_TFUNCTION || t == LUA_TTABLE, arg, "wmi.Stub, function or table of handlers");
        if (services_push_apartment(L, 1) != 1 || stub_push(L, lua_gettop(L), arg) != 1) return NULL;
        lua_remove(L, -2);
        stub = stub_test(L, -1);
    }
    box = lua_newuserdatauv(L, sizeof(*box), 2);
    *box = NULL;
    luaL_setmetatable(L, WMI_CALL);
    lua_insert(L, -2);
    lua_setiuservalue(L, -2, 1);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 2);
    return stub;
}

/* Option NAME: a positive integer, false (0: no limit) or absent (DEF). */
static LONG call_limit(lua_State *L, int opts, const char *name, LONG def)
{
    int t = core_opt_field(L, opts, name);
    LONG limit = def;
    if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1)) limit = 0;
    else if (t != LUA_TNIL)
    {
        lua_Integer n = lua_tointeger(L, -1);
        if (!lua_isinteger(L, -1) || n < 1 || n > LONG_MAX)
            luaL_error(L, "bad option '%s' (positive integer or false expected)", name);
        limit = (LONG)n;
    }
    lua_pop(L, 1);
    return limit;
}

/* opts: progress = true (WBEM_FLAG_SEND_STATUS); queue_limit = nodes (objects,
 * statuses, progress) and queue_bytes = their bytes that may wait undispatched
 * before the call is cancelled (false: no limit). */
static LONG call_flags(lua_State *L, int opts, const char *func, const char *extra, struct sink_limits *limits)
{
    static const char *const options[] = { "progress", "queue_limit", "queue_bytes", "context", NULL };
    const char *known[ARRAYSIZE(options) + 1];
    LONG flags = 0;
    size_t i;
    /* EXTRA: one more option the caller reads (stream's subscribe). */
    for (i = 0; options[i]; i++) known[i] = options[i];
    known[i] = extra;
    known[i + (extra != NULL)] = NULL;
    if (!lua_isnoneornil(L, opts)) luaL_checktype(L, opts, LUA_TTABLE);
    core_opt_check(L, opts, func, "option", known);
    core_opt_field(L, opts, "progress");
    if ((limits->progress = lua_toboolean(L, -1))) flags |= WBEM_FLAG_SEND_STATUS;
    lua_pop(L, 1);
    limits->nodes = call_limit(L, opts, "queue_limit", CALL_QUEUE_LIMIT);
    limits->bytes = call_limit(L, opts, "queue_bytes", CALL_QUEUE_BYTES);
    return flags;
}


void call_free_args(struct call_args *x)
{
    SysFreeString(x->a);
    SysFreeString(x->b);
    if (x->obj) IWbemClassObject_Release(x->obj);
    context_release(x->context);
}

static HRESULT call_issue_with(IWbemServices *svc, const struct call_args *x, IWbemContext *ctx,
                               IWbemObjectSink *sink)
{
    static const WCHAR wql[] = L"WQL";
    BSTR lang;
    HRESULT hr;
    switch (x->kind)
    {
    case CALL_QUERY:
    case CALL_SUBSCRIBE:
        if (!(lang = SysAllocString(wql))) return E_OUTOFMEMORY;
        hr = x->kind == CALL_QUERY
            ? IWbemServices_ExecQueryAsync(svc, lang, x->a, x->flags, ctx, sink)
            : IWbemServices_ExecNotificationQueryAsync(svc, lang, x->a, x->flags, ctx, sink);
        SysFreeString(lang);
        return hr;
    case CALL_INSTANCES: return IWbemServices_CreateInstanceEnumAsync(svc, x->a, x->flags, ctx, sink);
    case CALL_CLASSES: return IWbemServices_CreateClassEnumAsync(svc, x->a, x->flags | WBEM_FLAG_DEEP, ctx, sink);
    case CALL_GET: return IWbemServices_GetObjectAsync(svc, x->a, x->flags, ctx, sink);
    case CALL_EXEC: return IWbemServices_ExecMethodAsync(svc, x->a, x->b, x->flags, ctx, x->obj, sink);
    case CALL_PUT:
        if (classdef_is_class(x->obj)) return IWbemServices_PutClassAsync(svc, x->obj, x->flags, ctx, sink);
        return IWbemServices_PutInstanceAsync(svc, x->obj, x->flags, ctx, sink);
    case CALL_DELETE:
        if (classdef_is_class_path(x->a)) return IWbemServices_DeleteClassAsync(svc, x->a, x->flags, ctx, sink);
        return IWbemServices_DeleteInstanceAsync(svc, x->a, x->flags, ctx, sink);
    }
    return E_UNEXPECTED;
}

HRESULT call_issue(IWbemServices *svc, const struct call_args *x, IWbemObjectSink *sink)
{
    IWbemContext *ctx;
    HRESULT hr = context_make(x->context, &ctx);
    if (FAILED(hr)) return hr;
    hr = call_issue_with(svc, x, ctx, sink);
    if (ctx) IWbemContext_Release(ctx);
    return hr;
}

static int call_ref(lua_State *L)
{
    lua_pushvalue(L, 1);
    lua_pushinteger(L, luaL_ref(L, LUA_REGISTRYINDEX));
    return 1;
}

/* Starts the call described by X (whose resources it frees) with the call
 * userdata at BOX and its stub, both from call_prepare. It raises only once X is freed. */
static int call_start(lua_State *L, struct call_args *x, int box)
{
    struct services *s;
    struct stub *stub;
    struct call *c = NULL;
    struct privilege_scope ps = { NULL, FALSE, "" };
    HRESULT hr;
    int anchor = LUA_NOREF;

    /* The anchor first (protected: X is to free on a raise), for once the
     * provider has the call nothing may fail. */
    lua_pushcfunction(L, call_ref);
    lua_pushvalue(L, box);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK)
    {
        call_free_args(x);
        return lua_error(L);
    }
    anchor = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    /* Read after the last allocation (luawmi.h): a finalizer may have closed the
     * Services, the stub or its apartment, or started a call with the stub. */
    s = *(struct services **)lua_touserdata(L, 1);
    lua_getiuservalue(L, box, 1);
    stub = *(struct stub **)lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!s || !stub || stub->used || stub->call || !*stub->apartment || !(c = calloc(1, sizeof(*c))))
    {
        luaL_unref(L, LUA_REGISTRYINDEX, anchor);
        call_free_args(x);
        if (!s) return core_closed_error(L, WMI_SERVICES);
        if (!stub) return core_closed_error(L, WMI_STUB);
        if (stub->used || stub->call) return luaL_error(L, "stub already used (a stub serves one call)");
        if (!*stub->apartment) return luaL_error(L, "the stub's apartment is closed");
        return luaL_error(L, "not enough memory");
    }
    c->state = CALL_NEW;
    c->anchor = anchor;
    c->message = LUA_NOREF;
    c->identity = services_identity(s);
    identity_addref(c->identity);
    c->stub = stub;
    c->buffered = stub->handlers[STUB_INDICATE] == LUA_NOREF;
    stub->call = c;
    *(struct call **)lua_touserdata(L, box) = c;
    InterlockedIncrement(&wmi_stats.calls);
    stub->sink->limits = x->limits;
    call_link(c, 0, services_calls(s));
    call_link(c, 1, apartment_calls(*stub->apartment));

    if (c->identity && c->identity->remote)
    {
        /* Another host: the start's round trip is the pool's, and so is its failure. */
        call_set_state(L, c, CALL_STARTING);
        hr = pool_flight_start(queue_get(L), services_iface(s), c->identity, stub, x, &c->flight);
        if (FAILED(hr) && !sink_end(stub->sink, hr)) hr = E_OUTOFMEMORY;
        else hr = S_OK;
    }
    else
    {
        c->svc = services_iface(s);
        IWbemServices_AddRef(c->svc);
        call_set_state(L, c, CALL_STARTING);
        /* Held across the start: a provider that lets the sink go before the start
         * returns has not vanished (the start's result says how it went). */
        IWbemObjectSink_AddRef(sink_iface(stub->sink));
        /* On this thread: the one that makes the call (privilege.c). */
        if (SUCCEEDED(hr = privileges_enter(c->identity ? c->identity->privileges : NULL, &ps)))
        {
            hr = call_issue(c->svc, x, stub_target(stub));
            if (hr == (HRESULT)WBEM_E_FAILED && call_may_retry(x->kind) && call_slot_free(s, stub_target(stub)))
                hr = call_issue(c->svc, x, stub_target(stub));
            privileges_leave(&ps);
        }
        call_free_args(x);
        if (SUCCEEDED(hr)) InterlockedExchange(&stub->sink->armed, 1);
        IWbemObjectSink_Release(sink_iface(stub->sink));
    }
    if (FAILED(hr))
    {
        c->hr = hr;
        call_set_state(L, c, CALL_COMPLETED);
        return privileges_fail(L, &ps, hr);
    }
    if (!c->flight) call_set_state(L, c, CALL_RUNNING);
    lua_pushvalue(L, box);
    return 1;
}

/* Methods of the form svc:xxx_async(string, sink [, opts]). Arguments are checked
 * and the stub made before anything is converted: those may raise. */
static int call_start_string(lua_State *L, enum call_kind kind, const char *func, BOOL optional)
{
    struct call_args x = { kind, NULL, NULL, NULL, 0, { 0, 0, FALSE }, NULL };
    BOOL none = optional && lua_isnoneornil(L, 2);
    struct context *ctx;
    struct stub *stub;
    int box;
    services_check(L, 1);
    if (kind == CALL_QUERY || kind == CALL_SUBSCRIBE) query_check(L, 2);
    if (kind == CALL_GET || kind == CALL_DELETE) services_check_path(L, 2);
    else if (!none) luaL_checkstring(L, 2);
    x.flags = call_flags(L, 4, func, NULL, &x.limits);
    if (!(stub = call_prepare(L, 3))) return 3;
    box = lua_gettop(L);
    ctx = context_push(L, 4, func);
    if (!none) x.a = core_check_bstr(L, 2);
    context_addref(x.context = ctx);    /* from here on call_start frees what X holds */
    return call_start(L, &x, box);
}

int call_start_stream(lua_State *L)
{
    struct call_args x = { CALL_QUERY, NULL, NULL, NULL, 0, { 0, 0, FALSE }, NULL };
    struct context *ctx;
    int box;
    services_check(L, 1);
    query_check(L, 2);
    luaL_checkstring(L, 2);
    x.flags = call_flags(L, 3, "stream", "subscribe", &x.limits);
    if (core_opt_field(L, 3, "subscribe") != LUA_TNIL && lua_toboolean(L, -1)) x.kind = CALL_SUBSCRIBE;
    lua_settop(L, 3);
    lua_newtable(L);    /* no handlers: the call keeps its objects */
    if (!call_prepare(L, 4)) return 3;
    box = lua_gettop(L);
    ctx = context_push(L, 3, "stream");
    x.a = core_check_bstr(L, 2);
    context_addref(x.context = ctx);    /* from here on call_start frees what X holds */
    return call_start(L, &x, box);
}

/*** Runs a WQL query asynchronously (ExecQueryAsync).
 * @function Services:query_async
 * @tparam string wql
 * @tparam table|Stub sink handlers (`indicate`, `status`, `progress`) or a stub
 * @tparam[opt] table opts
 * @tparam[opt] boolean opts.progress progress callbacks (WBEM_FLAG_SEND_STATUS)
 * @tparam[opt=100000] integer|false opts.queue_limit callbacks that may wait undispatched
 * @tparam[opt=64 MiB] integer|false opts.queue_bytes bytes they may take
 * @treturn Call
 * @return nil, message, hresult
 */
static int call_query_async(lua_State *L) { return call_start_string(L, CALL_QUERY, "query_async", FALSE); }
/*** A class's instances, asynchronously (CreateInstanceEnumAsync).
 * @function Services:instances_async
 * @tparam string class
 * @tparam table|Stub sink handlers (`indicate`, `status`, `progress`) or a stub
 * @tparam[opt] table opts
 * @tparam[opt] boolean opts.progress progress callbacks (WBEM_FLAG_SEND_STATUS)
 * @tparam[opt=100000] integer|false opts.queue_limit callbacks that may wait undispatched
 * @tparam[opt=64 MiB] integer|false opts.queue_bytes bytes they may take
 * @treturn Call
 * @return nil, message, hresult
 */
static int call_instances_async(lua_State *L) { return call_start_string(L, CALL_INSTANCES, "instances_async", FALSE); }
/*** Class definitions, asynchronously (CreateClassEnumAsync).
 * @function Services:classes_async
 * @tparam[opt] string superclass
 * @tparam table|Stub sink handlers (`indicate`, `status`, `progress`) or a stub
 * @tparam[opt] table opts
 * @tparam[opt] boolean opts.progress progress callbacks (WBEM_FLAG_SEND_STATUS)
 * @tparam[opt=100000] integer|false opts.queue_limit callbacks that may wait undispatched
 * @tparam[opt=64 MiB] integer|false opts.queue_bytes bytes they may take
 * @treturn Call
 * @return nil, message, hresult
 */
static int call_classes_async(lua_State *L) { return call_start_string(L, CALL_CLASSES, "classes_async", TRUE); }
/*** One object by its path, asynchronously (GetObjectAsync).
 * @function Services:get_async
 * @tparam string path
 * @tparam table|Stub sink handlers (`indicate`, `status`, `progress`) or a stub
 * @tparam[opt] table opts
 * @tparam[opt] boolean opts.progress progress callbacks (WBEM_FLAG_SEND_STATUS)
 * @tparam[opt=100000] integer|false opts.queue_limit callbacks that may wait undispatched
 * @tparam[opt=64 MiB] integer|false opts.queue_bytes bytes they may take
 * @treturn Call
 * @return nil, message, hresult
 */
static int call_get_async(lua_State *L) { return call_start_string(L, CALL_GET, "get_async", FALSE); }
/*** Deletes an instance (DeleteInstanceAsync) or a class (DeleteClassAsync), asynchronously.
 * @function Services:delete_async
 * @tparam string path an instance path, or a class name (a path without keys)
 * @tparam table|Stub sink handlers (`indicate`, `status`, `progress`) or a stub
 * @tparam[opt] table opts
 * @tparam[opt] boolean opts.progress progress callbacks (WBEM_FLAG_SEND_STATUS)
 * @tparam[opt=100000] integer|false opts.queue_limit callbacks that may wait undispatched
 * @tparam[opt=64 MiB] integer|false opts.queue_bytes bytes they may take
 * @treturn Call
 * @return nil, message, hresult
 */
static int call_delete_async(lua_State *L) { return call_start_string(L, CALL_DELETE, "delete_async", FALSE); }
/*** Subscribes to events (ExecNotificationQueryAsync): each event reaches `indicate` until the call is cancelled or closed.
 * @function Services:subscribe
 * @tparam string wql an event query (`SELECT * FROM __InstanceCreationEvent WITHIN 1 ...`)
 * @tparam table|Stub sink handlers (`indicate`, `status`, `progress`) or a stub
 * @tparam[opt] table opts
 * @tparam[opt] boolean opts.progress progress callbacks (WBEM_FLAG_SEND_STATUS)
 * @tparam[opt=100000] integer|false opts.queue_limit callbacks that may wait undispatched
 * @tparam[opt=64 MiB] integer|false opts.queue_bytes bytes they may take
 * @treturn Call
 * @return nil, message, hresult
 */
static int call_subscribe(lua_State *L) { return call_start_string(L, CALL_SUBSCRIBE, "subscribe", FALSE); }

/*** Writes an instance (PutInstanceAsync) or a class (PutClassAsync), asynchronously.
 * @function Services:put_async
 * @tparam Object obj an instance, or a class (`svc:define{...}`)
 * @tparam table|Stub sink handlers or a stub (`status` receives the written path)
 * @tparam[opt] table opts
 * @tparam[opt="either"] string opts.mode `"create"`, `"update"` or `"either"`, as `Services:put`
 * @tparam[opt] boolean opts.progress progress callbacks
 * @tparam[opt=100000] integer|false opts.queue_limit callbacks that may wait undispatched
 * @tparam[opt=64 MiB] integer|false opts.queue_bytes bytes they may take
 * @treturn Call
 * @return nil, message, hresult
 */
static int call_put_async(lua_State *L)
{
    struct call_args x = { CALL_PUT, NULL, NULL, NULL, 0, { 0, 0, FALSE }, NULL };
    struct context *ctx;
    struct stub *stub;
    int box;
    services_check(L, 1);
    object_check(L, 2);
    x.flags = call_flags(L, 4, "put_async", "mode", &x.limits) | classdef_put_flags(L, 4, "put_async");
    if (!(stub = call_prepare(L, 3))) return 3;
    box = lua_gettop(L);
    ctx = context_push(L, 4, "put_async");
    /* Only now: making the stub allocates, and a finalizer may close the object. */
    x.obj = object_check(L, 2);
    IWbemClassObject_AddRef(x.obj);
    context_addref(x.context = ctx);
    return call_start(L, &x, box);
}

/*** Runs a method asynchronously (ExecMethodAsync); the out-parameters reach `indicate`.
 * @function Services:exec_async
 * @tparam string path
 * @tparam string method
 * @tparam table|Object|nil params in-parameters
 * @tparam table|Stub sink handlers or a stub
 * @tparam[opt] table opts
 * @tparam[opt] boolean opts.progress progress callbacks
 * @tparam[opt=100000] integer|false opts.queue_limit callbacks that may wait undispatched
 * @tparam[opt=64 MiB] integer|false opts.queue_bytes bytes they may take
 * @treturn Call
 * @return nil, message, hresult
 */
/* svc:exec_async(path, method, params, sink [, opts]) */
static int call_exec_async(lua_State *L)
{
    struct call_args x = { CALL_EXEC, NULL, NULL, NULL, 0, { 0, 0, FALSE }, NULL };
    IWbemServices *svc;
    struct services *s;
    struct context *ctx;
    struct stub *stub;
    int box;
    size_t len;
    BOOL misuse = FALSE;
    HRESULT hr = S_OK;
    services_check(L, 1);
    services_check_path(L, 2);
    core_check_text(L, 3, &len);
    x.flags = call_flags(L, 6, "exec_async", NULL, &x.limits);
    if (!(stub = call_prepare(L, 5))) return 3;
    box = lua_gettop(L);
    ctx = context_push(L, 6, "exec_async");
    s = services_check(L, 1);   /* only now: a finalizer may have closed it meanwhile */
    if (FAILED(hr = str_to_bstr(lua_tostring(L, 2), lua_rawlen(L, 2), &x.a))
        || FAILED(hr = str_to_bstr(lua_tostring(L, 3), lua_rawlen(L, 3), &x.b)))
    {
        call_free_args(&x);
        if (hr == E_OUTOFMEMORY) return luaL_error(L, "not enough memory");
        return luaL_argerror(L, x.a ? 3 : 2, "invalid UTF-8");
    }
    context_addref(x.context = ctx);
    /* Reading the parameters allocates: the proxy is pinned meanwhile. */
    svc = services_iface(s);
    IWbemServices_AddRef(svc);
    hr = services_inparams(L, 4, svc, x.a, x.b, &x.obj, &misuse);
    IWbemServices_Release(svc);
    if (FAILED(hr))
    {
        call_free_args(&x);
        if (misuse) return luaL_argerror(L, 4, lua_tostring(L, -1));
        return hresult_fail(L, hr);
    }
    return call_start(L, &x, box);
}

void call_register(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "cancel", call_cancel },
        { "wait", call_wait },
        { "result", call_result },
        { "next", call_next },
        { "close", call_close },
        { NULL, NULL }
    };
    static const luaL_Reg meta[] = {
        { "__index", call_index },
        { "__gc", call_close },
        { "__close", call_close },
        { "__tostring", call_tostring },
        { NULL, NULL }
    };
    static const luaL_Reg async_methods[] = {
        { "query_async", call_query_async },
        { "instances_async", call_instances_async },
        { "classes_async", call_classes_async },
        { "get_async", call_get_async },
        { "exec_async", call_exec_async },
        { "put_async", call_put_async },
        { "delete_async", call_delete_async },
        { "subscribe", call_subscribe },
        { NULL, NULL }
    };
    core_new_class(L, WMI_CALL, NULL, meta);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "methods");
    /* The async methods join wmi.Services' own. */
    luaL_getmetatable(L, WMI_SERVICES);
    lua_getfield(L, -1, "__index");
    luaL_setfuncs(L, async_methods, 0);
    lua_pop(L, 2);
}

/* The dispatch queue: COM threads append callbacks under a lock and signal an
 * event; the Lua thread drains it in arrival order inside wmi.dispatch, wmi.run
 * and call:wait. The queue is reference counted because sinks may outlive the Lua
 * state: after lua_close it is marked dead and late callbacks are dropped. */
#include "luawmi.h"

struct queue
{
    LONG refs;
    CRITICAL_SECTION lock;
    HANDLE event;               /* auto-reset: set when a node is appended */
    struct node *head, *tail;
    LONG count;                 /* nodes in the list */
    BOOL dead;
    BOOL sta;                   /* the Lua thread is an STA the host made: waits pump messages */
    int pending;                /* Lua thread: calls in flight (anchored) */
    struct delivery *delivery;  /* Lua thread: the innermost delivery running */
};

/* One delivery on the C stack: it owns NODE until the deliverer takes it
 * (queue_drop clears it), just before the handler runs. Dispatch is not
 * reentrant: until then a nested dispatch (a finalizer run while the handler's
 * arguments are made) delivers nothing, for it would overtake NODE (a status
 * delivered before the call's last object); from the handler it delivers the
 * nodes queued behind. */
struct delivery
{
    struct node *node;
    struct delivery *outer;
};

static const char queue_key = 'q';   /* registry key of this state's queue userdata */

void queue_addref(struct queue *q)
{
    InterlockedIncrement(&q->refs);
}

void queue_release(struct queue *q)
{
    if (InterlockedDecrement(&q->refs)) return;
    while (q->head)
    {
        struct node *node = q->head;
        q->head = node->next;
        queue_free_node(node);
    }
    DeleteCriticalSection(&q->lock);
    CloseHandle(q->event);
    free(q);
}

struct node *queue_new_node(struct sink *sink, enum node_kind kind)
{
    struct node *node = calloc(1, sizeof(*node));
    if (!node) return NULL;
    node->kind = kind;
    node->sink = sink;
    sink_addref(sink);
    InterlockedIncrement(&wmi_stats.queued);
    return node;
}

void queue_free_node(struct node *node)
{
    if (node->bytes)
    {
        InterlockedDecrement(&node->sink->queued);
        InterlockedExchangeAdd(&node->sink->bytes, -node->bytes);
    }
    if (node->obj) IWbemClassObject_Release(node->obj);
    SysFreeString(node->text);
    if (node->sink) sink_release(node->sink);
    if (node->job) pool_release(node->job);
    free(node);
    InterlockedDecrement(&wmi_stats.queued);
}

/* Signals only when the queue was empty: the Lua thread drains everything once
 * woken, and an event is a round trip to the kernel (to the wineserver in Wine). */
/* Appends NODE, or frees it when the queue is dead or *CLOSED (read under the
 * lock, which queue_purge holds too: a provider's callback racing a call's close
 * lands before the purge, and is purged, or after it, and is dropped here). */
static void queue_append(struct queue *q, struct node *node, const volatile LONG *closed)
{
    BOOL dead, was_empty = FALSE;
    node->next = NULL;
    EnterCriticalSection(&q->lock);
    if (!(dead = q->dead || (closed && *closed)))
    {
        was_empty = !q->head;
        if (q->tail) q->tail->next = node;
        else q->head = node;
        q->tail = node;
        q->count++;
    }
    LeaveCriticalSection(&q->lock);
    if (dead) queue_free_node(node);
    else if (was_empty) SetEvent(q->event);
}

void queue_push(struct queue *q, struct node *node)
{
    queue_append(q, node, NULL);
}

void queue_push_open(struct queue *q, struct node *node, const volatile LONG *closed)
{
    queue_append(q, node, closed);
}

static struct node *queue_pop(struct queue *q)
{
    struct node *node;
    EnterCriticalSection(&q->lock);
    if ((node = q->head))
    {
        if (!(q->head = node->next)) q->tail = NULL;
        q->count--;
    }
    LeaveCriticalSection(&q->lock);
    return node;
}

/* A node whose delivery raised before it was taken (out of memory) goes back to
 * the front: delivered again at the next dispatch, never leaked. */
static void queue_unpop(struct queue *q, struct node *node)
{
    BOOL dead;
    EnterCriticalSection(&q->lock);
    if (!(dead = q->dead))
    {
        node->next = q->head;
        q->head = node;
        if (!q->tail) q->tail = node;
        q->count++;
    }
    LeaveCriticalSection(&q->lock);
    if (dead) queue_free_node(node);
}

void queue_take(struct node *node)
{
    struct queue *q = node->sink ? node->sink->queue : pool_queue(node->job);
    if (q->delivery && q->delivery->node == node) q->delivery->node = NULL;
}

void queue_drop(struct node *node)
{
    queue_take(node);
    queue_free_node(node);
}

static LONG queue_count(struct queue *q)
{
    LONG n;
    EnterCriticalSection(&q->lock);
    n = q->count;
    LeaveCriticalSection(&q->lock);
    return n;
}

static void queue_purge_where(struct queue *q, const struct sink *sink, const struct job *job)
{
    struct node **link, *node, *dropped = NULL;
    EnterCriticalSection(&q->lock);
    q->tail = NULL;
    for (link = &q->head; (node = *link);)
    {
        if (node->sink == sink && node->job == job)
        {
            *link = node->next;
            q->count--;
            node->next = dropped;
            dropped = node;
        }
        else
        {
            q->tail = node;
            link = &node->next;
        }
    }
    LeaveCriticalSection(&q->lock);
    while ((node = dropped))
    {
        dropped = node->next;
        queue_free_node(node);
    }
}

void queue_purge(struct queue *q, struct sink *sink)
{
    queue_purge_where(q, sink, NULL);
}

void queue_purge_job(struct queue *q, struct job *job)
{
    queue_purge_where(q, NULL, job);
}

struct queue *queue_get(lua_State *L)
{
    struct queue **box;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &queue_key);
    box = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return box ? *box : NULL;
}

void queue_add_pending(struct queue *q, int delta)
{
    q->pending += delta;
}

/* lua_close: late callbacks must find a dead queue, not a freed one. */
static int queue_gc(lua_State *L)
{
    struct queue **box = lua_touserdata(L, 1), *q = *box;
    struct node *list;
    *box = NULL;
    if (!q) return 0;
    EnterCriticalSection(&q->lock);
    q->dead = TRUE;
    list = q->head;
    q->head = q->tail = NULL;
    q->count = 0;
    LeaveCriticalSection(&q->lock);
    while (list)
    {
        struct node *node = list;
        list = node->next;
        queue_free_node(node);
    }
    queue_release(q);
    return 0;
}

void queue_open(lua_State *L, BOOL sta)
{
    struct queue **box = lua_newuserdatauv(L, sizeof(*box), 0);
    struct queue *q = calloc(1, sizeof(*q));

    *box = NULL;
    if (!q || !(q->event = CreateEventW(NULL, FALSE, FALSE, NULL)))
    {
        free(q);
        luaL_error(L, "cannot create the dispatch queue");
    }
    q->refs = 1;
    q->sta = sta;
    InitializeCriticalSection(&q->lock);
    *box = q;
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, queue_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &queue_key);
}

BOOL queue_is_sta(struct queue *q)
{
    return q->sta;
}

/* Waits up to MS for the queue's event; in an STA, pumps messages meanwhile so
 * that COM can deliver calls to this thread. The clock is read once a round: a
 * tick between two reads would wrap what is left to 49 days. */
static void queue_wait_event(struct queue *q, DWORD ms)
{
    DWORD start = GetTickCount(), spent;
    if (!q->sta)
    {
        WaitForSingleObject(q->event, ms);
        return;
    }
    for (spent = 0; ms == INFINITE || spent < ms; spent = GetTickCount() - start)
    {
        MSG msg;
        DWORD r = MsgWaitForMultipleObjectsEx(1, &q->event, ms == INFINITE ? INFINITE : ms - spent,
                                              QS_ALLINPUT, MWMO_INPUTAVAILABLE);
        if (r != WAIT_OBJECT_0 + 1) return;
        while (PeekMessageW(&msg, NULL, 0, 0, PM_REMOVE))
        {
            TranslateMessage(&msg);
            DispatchMessageW(&msg);
        }
    }
}

static DWORD queue_left(DWORD start, DWORD ms)
{
    DWORD spent;
    if (ms == INFINITE) return INFINITE;
    spent = GetTickCount() - start;
    return spent >= ms ? 0 : ms - spent;
}

static int queue_deliver_protected(lua_State *L)
{
    struct node *node = ((struct queue *)lua_touserdata(L, 1))->delivery->node;
    lua_pushboolean(L, node->job ? pool_deliver(L, node) : call_deliver(L, node));
    return 1;
}

/* Delivers NODE in its own delivery, protected: a raise before the deliverer
 * took it puts it back, then goes on. */
static int queue_deliver(lua_State *L, struct queue *q, struct node *node)
{
    struct delivery d;
    int status, delivered;

    d.node = node;
    d.outer = q->delivery;
    q->delivery = &d;
    lua_pushcfunction(L, queue_deliver_protected);
    lua_pushlightuserdata(L, q);
    status = lua_pcall(L, 1, 1, 0);
    q->delivery = d.outer;
    if (status != LUA_OK)
    {
        if (d.node) queue_unpop(q, d.node);
        lua_error(L);
    }
    delivered = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return delivered;
}

/* Delivers what is queued now (not what arrives meanwhile), until DONE(ARG) or
 * the limit MS from START has passed: a limit holds however fast objects come,
 * within one handler's run. Returns the number of callbacks delivered. A
 * handler's error propagates; the rest of the queue stays for the next dispatch. */
static BOOL queue_blocked(struct queue *q)
{
    return q->delivery && q->delivery->node;
}

static int queue_drain(lua_State *L, struct queue *q, BOOL (*done)(void *), void *arg, DWORD start, DWORD ms)
{
    LONG budget = queue_blocked(q) ? 0 : queue_count(q);
    struct node *node;
    int delivered = 0;
    while (budget-- > 0 && (!done || !done(arg)) && (node = queue_pop(q)))
    {
        delivered += queue_deliver(L, q, node);
        if (!queue_left(start, ms)) break;
    }
    return delivered;
}

DWORD queue_check_ms(lua_State *L, int arg, DWORD def)
{
    lua_Number ms;
    if (lua_isnoneornil(L, arg)) return def;
    ms = luaL_checknumber(L, arg);
    luaL_argcheck(L, ms == ms, arg, "milliseconds expected, got NaN");
    /* INFINITE is -1 as a DWORD: a negative limit is a mistake, never "for ever". */
    luaL_argcheck(L, ms >= 0, arg, "non-negative milliseconds expected");
    if (ms >= (lua_Number)INFINITE) return INFINITE;
    return (DWORD)ms;
}

BOOL queue_wait_until(lua_State *L, BOOL (*done)(void *), void *arg, DWORD ms)
{
    struct queue *q = queue_get(L);
    DWORD start = GetTickCount();
    if (!q || queue_blocked(q)) return done(arg);     /* nothing can be delivered here */
    for (;;)
    {
        queue_drain(L, q, done, arg, start, ms);
        if (done(arg)) return TRUE;
        if (!queue_left(start, ms)) return FALSE;
        /* The event is set only when a node finds the queue empty. */
        if (!queue_count(q)) queue_wait_event(q, queue_left(start, ms));
    }
}

/*** Delivers queued callbacks on this thread.
 * Without a limit it delivers what was queued when it was called.
 * @function dispatch
 * @tparam[opt] integer ms waits up to this long for the first callback (not negative)
 * @treturn integer the number of callbacks delivered
 */
/* wmi.dispatch([ms]) --> number of callbacks delivered (waits up to ms for the
 * first). Without a limit it delivers what was queued when it was called. */
int queue_dispatch(lua_State *L)
{
    struct queue *q = queue_get(L);
    DWORD ms = queue_check_ms(L, 1, 0), start = GetTickCount(), limit = ms ? ms : INFINITE;
    int n;
    if (!q) return luaL_error(L, "the module is closing");
    n = queue_drain(L, q, NULL, NULL, start, limit);
    while (!n && queue_left(start, ms) && !queue_blocked(q))
    {
        /* As in queue_wait_until: a node queued behind another sets no event. */
        if (!queue_count(q)) queue_wait_event(q, queue_left(start, ms));
        n = queue_drain(L, q, NULL, NULL, start, limit);
    }
    lua_pushinteger(L, n);
    return 1;
}
static BOOL queue_idle(void *arg)
{
    return !((struct queue *)arg)->pending;
}

/*** Dispatches until no call or connection is pending.
 * @function run
 * @tparam[opt] integer ms at most this long (not negative)
 * @treturn boolean true when nothing is pending, false when the time ran out
 */
/* wmi.run([ms]): dispatch until no call is pending (or ms elapsed) --> true when idle */
int queue_run(lua_State *L)
{
    struct queue *q = queue_get(L);
    DWORD ms = queue_check_ms(L, 1, INFINITE);
    if (!q) return luaL_error(L, "the module is closing");
    lua_pushboolean(L, queue_wait_until(L, queue_idle, q, ms));
    return 1;
}

/*** The number of calls and connections still running.
 * @function pending
 * @treturn integer
 */
int queue_pending(lua_State *L)
{
    struct queue *q = queue_get(L);
    lua_pushinteger(L, q ? q->pending : 0);
    return 1;
}

int queue_wait_method(lua_State *L, BOOL (*done)(void *), void *arg)
{
    DWORD ms = queue_check_ms(L, 2, INFINITE);
    lua_pushboolean(L, done(arg) || queue_wait_until(L, done, arg, ms));
    return 1;
}

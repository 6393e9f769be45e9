/* luawmi: the C core's internal interfaces, one section per source file. */
#ifndef LUAWMI_H
#define LUAWMI_H

#include <windows.h>
#include <ole2.h>
#include <wbemcli.h>
#include <lua.h>
#include <lauxlib.h>
#include "hresult.h"

/* THE RULE: no raw pointer survives an allocation unless it is pinned.
 * Any allocation of a Lua value (a userdata, a string, a table, luaL_ref) may run
 * a finalizer of the user's, and that finalizer may close any object: the
 * pointer a C function read out of a userdata box (a struct services, a stub, an
 * IWbemClassObject) is valid only until the function's next allocation.
 * The mechanism, used everywhere: CHECK LATE. A function makes every Lua value it
 * needs first (its result userdata, its strings, its call's anchor), then reads
 * the pointers out of its userdata (object_check, services_check...), and uses
 * them with nothing allocating in between; what must be re-read after an
 * allocation is read again through the box and found closed or not (then it
 * raises "attempt to use a closed ..." with nothing held). Where a pointer must
 * live across allocations (an enumeration that pushes as it goes, converting a
 * method's parameters), it is PINNED: the function holds its own COM reference
 * (AddRef, identity_addref) from before the first allocation to after the last
 * use, released on every path (where the allocating part may raise, it runs under
 * lua_pcall: obj:methods()). Closing an object from a finalizer while a method of it runs
 * is legal: the object ends closed, the method raises or completes with its pin.
 * Dispatch is not reentrant either: a node being delivered belongs to its
 * delivery (queue.c); a nested dispatch delivers other nodes or none. */

/* Metatable names (also each userdata's __name). */
#define WMI_SERVICES  "wmi.Services"
#define WMI_OBJECT    "wmi.Object"
#define WMI_LIST      "wmi.List"
#define WMI_APARTMENT "wmi.Apartment"
#define WMI_STUB      "wmi.Stub"
#define WMI_CALL      "wmi.Call"

/* Live counts of what the module holds, process-wide, updated with Interlocked
 * operations because COM threads change some of them (wmi.stats()). */
struct wmi_stats {
    LONG objects;   /* wmi.Object userdata holding an IWbemClassObject */
    LONG services;  /* open wmi.Services */
    LONG enumerators; /* open svc:each() enumerators */
    LONG stubs;     /* C sinks alive (each wrapped by one stub) */
    LONG calls;     /* async calls alive on the C side */
    LONG queued;    /* callbacks waiting in dispatch queues */
    LONG overflows; /* calls cancelled because their queue limit was reached */
    LONG connects;  /* wmi.connect_async jobs alive (a pool thread may still run one) */
    LONG timers;    /* timers of the Lua layer alive */
    LONG identities; /* connection identities (the blanket's COAUTHIDENTITY) alive */
    LONG pool;      /* work items of the module's on the thread pool, queued or running */
};
extern struct wmi_stats wmi_stats;

/* support.c: the helpers every file uses (core.c, the module entry, only registers) */
/* Pushes the module's userdata metatable NAME, with methods in __index and the
 * metamethods given; METHODS and META end with { NULL, NULL }. */
void core_new_class(lua_State *L, const char *name, const luaL_Reg *methods, const luaL_Reg *meta);
/* __index helper of a type with fields: pushes method KEY of the userdata at 1
 * (its metatable's "methods" table), or nil. */
int core_push_method(lua_State *L, const char *key);
/* Raises "attempt to use a closed NAME" (use after close). */
int core_closed_error(lua_State *L, const char *name);
/* Raises "bad WHAT 'KEY' to 'FUNC' (unknown WHAT; did you mean 'NAME'?)" for a key
 * of the table at IDX (when it is one) that is not in KNOWN (NULL-ended): a
 * misspelt option is an error, never a silent default. WHAT: "option", "handler". */
void core_opt_check(lua_State *L, int idx, const char *func, const char *what, const char *const known[]);
int core_l_check_options(lua_State *L);
/* Pushes field FIELD of the options table at IDX (nil when IDX is not a table),
 * read raw; returns its type. */
int core_opt_field(lua_State *L, int idx, const char *field);
/* Option FIELD of the options table at IDX (of function FUNC, for messages): the
 * index of its value in NAMES, DEF when absent; raises naming the option. */
int core_opt_choice(lua_State *L, int idx, const char *func, const char *field, const char *def,
                    const char *const names[]);
/* Option FIELD of the options table at IDX: a CLSID string ("{...}"), DEF when
 * absent; raises naming the option when it is not one. */
void core_opt_clsid(lua_State *L, int idx, const char *func, const char *field, const CLSID *def, CLSID *out);
/* Pins this DLL in the process, once: COM threads (a provider's late SetStatus,
 * a pool thread) may run its code after lua_close would have unloaded it. */
void core_pin_module(void);
/* Message handler for lua_pcall: the error message with a traceback. */
int core_traceback(lua_State *L);
/* Reserves what calling a handler from this C frame needs (no allocation then). */
void core_reserve_call(lua_State *L);
/* String argument ARG (its length in *LEN); raises an argument error for a
 * non-string or one that holds a NUL (WQL, a path, a class or a method name). */
const char *core_check_text(lua_State *L, int arg, size_t *len);
/* A BSTR copy of string argument ARG (core_check_text); raises for invalid UTF-8
 * (an argument error) or out of memory, so call it before acquiring anything. */
BSTR core_check_bstr(lua_State *L, int arg);
/* String option FIELD of the options table at IDX (of FUNC, for messages), read
 * raw: pushes its value and returns it (NULL, nil pushed, when absent); raises
 * naming the option when it is not a string or not valid UTF-8. */
const char *core_opt_string(lua_State *L, int idx, const char *func, const char *field);

/* query.c: query tables */
/* When argument ARG is a query table, replaces it with its WQL text (the Lua
 * layer's builder); raises an argument error for a bad table. Other values are
 * left for the caller's own check. Call it before acquiring anything. */
void query_check(lua_State *L, int arg);
int query_l_set_builder(lua_State *L);

/* strings.c: UTF-8 <-> UTF-16 */
/* *OUT = a new BSTR for the UTF-8 string S of LEN bytes (free with
 * SysFreeString). E_INVALIDARG when S is not valid UTF-8 (misuse),
 * E_OUTOFMEMORY. Never raises. */
HRESULT str_to_bstr(const char *s, size_t len, BSTR *out);
/* TRUE when S (LEN bytes) is valid UTF-8 that str_to_bstr takes. */
BOOL str_is_utf8(const char *s, size_t len);
/* Copies ASCII text without NULs (LEN bytes) into BUF of CAP characters, NUL
 * terminated; returns 0 when it is not such text or does not fit. */
int str_to_wide_ascii(const char *s, size_t len, WCHAR *buf, size_t cap);
/* Pushes UTF-16 text (LEN characters, or -1 when NUL-terminated; NULL is "") as UTF-8. */
void str_push_wide(lua_State *L, const WCHAR *s, int len);

/* object.c: wmi.Object (IWbemClassObject) */
void object_register(lua_State *L);        /* leaves its metatable on the stack */
/* Pushes a new wmi.Object holding its own reference to OBJ (it AddRefs). May
 * raise: a caller holding its own reference to OBJ leaks it then (see object_new). */
void object_push(lua_State *L, IWbemClassObject *obj);
/* Pushes a new, closed wmi.Object; make it before acquiring the object, then
 * object_fill hands it the reference OBJ carries (never raises). */
struct object;
struct object *object_new(lua_State *L);
void object_fill(struct object *o, IWbemClassObject *obj);
/* The IWbemClassObject of the wmi.Object at ARG; raises an argument error for
 * another type and "attempt to use a closed wmi.Object" after close. */
IWbemClassObject *object_check(lua_State *L, int arg);
/* The same, or NULL when ARG is not a wmi.Object or is a closed one. */
IWbemClassObject *object_test(lua_State *L, int arg);
/* Puts V into property NAME of CIM type TYPE; where a provider accepts only the
 * exact VARIANT type of an unsigned property (Wine), retries with VT_UI4/VT_UI2. */
HRESULT object_put(IWbemClassObject *obj, const WCHAR *name, VARIANT *v, CIMTYPE type);
/* Pushes a new, empty wmi.List: a sequence of wmi.Object, filled by the caller,
 * with a readable __tostring. */
void object_new_list(lua_State *L);

/* equality.c: a == b for wmi.Object (its __eq) */
int equality_eq(lua_State *L);

/* schema.c: obj:qualifiers, obj:schema, obj:keys, obj:method (methods of wmi.Object) */
int schema_qualifiers(lua_State *L);
int schema_schema(lua_State *L);
int schema_keys(lua_State *L);
int schema_method(lua_State *L);
void schema_register(lua_State *L);     /* the wmi.Method metatable */

/* variant.c: VARIANT <-> Lua values, driven by the CIM type */
/* OR'd into the CIM type given to variant_from_lua for a method's in-parameter:
 * sint32 then also takes 2^31..2^32-1 as a bit pattern (see variant.c). */
#define VARIANT_PARAM 0x40000000
/* Pushes V as a Lua value; TYPE is the property's CIMTYPE (CIM_EMPTY/0 when unknown). */
void variant_push(lua_State *L, const VARIANT *v, CIMTYPE type);
/* Converts the Lua value at IDX to a VARIANT for a property of CIM type TYPE
 * (CIM_EMPTY/0 when unknown: inferred from the Lua type). Returns NULL on
 * success (OUT then owns what it holds; VariantClear it) or a constant description
 * of why the value does not fit, with OUT left VT_EMPTY. Never raises: callers can
 * hold COM resources around it. */
const char *variant_from_lua(lua_State *L, int idx, CIMTYPE type, VARIANT *out);
/* Name of a CIM type for messages ("uint32", "string", "object", "uint8[]"). */
const char *variant_cimtype_name(CIMTYPE type);

/* connect.c: connecting, in three steps so that the middle one can run on any
 * thread (a Windows thread-pool thread for wmi.connect_async). */
/* What a remote connection's proxies need, shared by counted references: the
 * Services, and every call, enumerator and call result made from it, so that
 * svc:close() leaves a proxy still in use valid. Secrets are zeroed when freed. */
struct identity
{
    LONG refs;
    BOOL proxy;                 /* the Services took a blanket: so must what it hands out */
    BOOL remote;                /* another host: its round trips stay off the Lua thread */
    DWORD authn, imp;           /* RPC_C_AUTHN_LEVEL_*, RPC_C_IMP_LEVEL_* */
    DWORD service;              /* RPC_C_AUTHN_GSS_KERBEROS, _WINNT or _DEFAULT (the authority's) */
    WCHAR *principal;           /* Kerberos: the server principal name, else NULL (COLE_DEFAULT_PRINCIPAL) */
    COAUTHIDENTITY *auth;       /* explicit credentials for another host, else NULL */
    struct privileges *privileges;  /* enabled around each call: local connections only */
};
void identity_addref(struct identity *id);          /* NULL is fine for both */
void identity_release(struct identity *id);
/* Sets ID's blanket on PROXY (an IEnumWbemClassObject, IWbemCallResult...) and on
 * its IUnknown, which has a blanket of its own (COM's rule); S_OK when it is not a
 * proxy. Any thread; again after every unmarshalling. */
HRESULT identity_blanket(struct identity *id, IUnknown *proxy);
/* wmi.connect's options as plain C data: UTF-16 copies the struct owns. */
struct connect_args
{
    BSTR resource;              /* "root\cimv2" or "\\host\root\cimv2" */
    BSTR user, password, authority, locale;     /* NULL when absent */
    BOOL remote;                /* a host was given */
    DWORD authn, imp;
    CLSID locator;              /* the IWbemLocator class (default CLSID_WbemLocator) */
    struct context *context;    /* ConnectServer's, or NULL */
    struct privileges *privileges;  /* or NULL */
    char *label;                /* the resource in UTF-8, for tostring */
};
/* Lua thread: reads FUNC's options at IDX (nil, a namespace string or a table;
 * read raw, no user code runs) into A. Misuse (a wrong type, invalid UTF-8, a bad
 * level or CLSID, an 'apartment' that is no open wmi.Apartment) raises an error
 * naming the option; on any raise A holds nothing. Free with connect_args_free
 * (it zeroes the password). The 'apartment' option is only checked, not kept. */
void connect_args_read(lua_State *L, int idx, const char *func, struct connect_args *a);
void connect_args_free(struct connect_args *a);
int connect_valid_host(lua_State *L);        /* wmi.valid_host */
/* The authentication and impersonation options of FUNC's options at IDX. */
void connect_opt_levels(lua_State *L, int idx, const char *func, const char *authn_def, DWORD *authn,
                        const char *imp_def, DWORD *imp);
/* ConnectServer with A, then the proxy blanket. Touches no Lua: runs on any
 * thread where COM is initialised as MTA. On success *SVC and *ID each carry one
 * reference for the caller. */
HRESULT connect_server(const struct connect_args *a, IWbemServices **svc, struct identity **id);

/* services.c: wmi.Services (IWbemServices) */
struct services;
struct call;
struct call_list { struct call *head; };
struct call_link { struct call *prev, *next; };
void services_register(lua_State *L);      /* leaves its metatable on the stack */
int services_connect(lua_State *L);          /* wmi.connect */
int services_init_security(lua_State *L);    /* wmi.init_security */
struct services *services_check(lua_State *L, int arg);
/* Raises an argument error unless the string at ARG is an object path that names
 * a class (no NUL; not "", ".Name=1", "root:"). Holds nothing: call it first. */
void services_check_path(lua_State *L, int arg);
/* Lua thread: pushes a new, closed wmi.Services (may raise: make it first). */
void services_push_closed(lua_State *L);
/* Lua thread: opens the closed wmi.Services at IDX with SVC and ID, taking both
 * references (also on failure), LABEL for tostring, and the apartment at stack
 * index APT (0: none). Never raises: E_OUTOFMEMORY. */
HRESULT services_open(lua_State *L, int idx, IWbemServices *svc, struct identity *id, const char *label, int apt);
IWbemServices *services_iface(struct services *s);
struct identity *services_identity(struct services *s);
struct call_list *services_calls(struct services *s);
/* Pushes the apartment that makes stubs for the services at ARG when a call is
 * given bare handlers: the one passed to connect, else the module's default. */
int services_push_apartment(lua_State *L, int arg);  /* 1, or 3: nil, message, hresult */
/* In-parameters of METHOD at PATH from the value at ARG (nil, {}, a table or a
 * wmi.Object; SVC gives the class). On misuse (a bad parameter), *MISUSE is set and a message pushed
 * for an argument error, raised by the caller once it has released its own. */
HRESULT services_inparams(lua_State *L, int arg, IWbemServices *svc, const WCHAR *path,
                          const WCHAR *method, IWbemClassObject **in, BOOL *misuse);

/* classdef.c: svc:define, put modes, classes told from instances */
void classdef_register(lua_State *L);       /* after services: it adds svc:define */
/* The WBEM_FLAG_CREATE_ONLY / UPDATE_ONLY / CREATE_OR_UPDATE of option "mode" of
 * the options table at OPTS (of FUNC, for messages); raises for another value. */
LONG classdef_put_flags(lua_State *L, int opts, const char *func);
/* Pushes the __CLASS of OBJ: what svc:put returns for a class (nil, message, hresult when it has none). */
int classdef_push_name(lua_State *L, IWbemClassObject *obj);
/* TRUE for a class object (__GENUS 1): svc:put writes it with PutClass. */
BOOL classdef_is_class(IWbemClassObject *obj);
/* TRUE for a path that names a class, no instance: svc:delete calls DeleteClass. */
BOOL classdef_is_class_path(const WCHAR *path);

/* queue.c: the dispatch queue between COM threads and the Lua thread */
enum node_kind { NODE_INDICATE, NODE_STATUS, NODE_PROGRESS };
struct node
{
    struct node *next;
    struct sink *sink;          /* holds a reference: identifies the call */
    struct job *job;            /* a pool job's node (kind NODE_STATUS), instead of a sink: holds a reference */
    enum node_kind kind;
    IWbemClassObject *obj;      /* indicated object, or the status' extended error */
    HRESULT hr;                 /* status; progress: low word current, high word total */
    BSTR text;                  /* status/progress string parameter (at most SINK_TEXT_MAX characters) */
    LONG bytes;                 /* counted against its sink's limits (0: not counted) */
};
struct queue;
/* Creates this state's queue (luaopen); STA: the Lua thread is in an STA the
 * host made (waits pump messages). */
void queue_open(lua_State *L, BOOL sta);
BOOL queue_is_sta(struct queue *q);
struct queue *queue_get(lua_State *L);       /* NULL once lua_close has begun */
void queue_addref(struct queue *q);
void queue_release(struct queue *q);
/* Any thread: a node of SINK (which it holds), counted in wmi.stats().queued;
 * NULL when out of memory. */
struct node *queue_new_node(struct sink *sink, enum node_kind kind);
/* Any thread; takes NODE (freed at once when the queue is dead). */
void queue_push(struct queue *q, struct node *node);
/* queue_push for a provider's callback: dropped once *CLOSED (the sink closed to WMI). */
void queue_push_open(struct queue *q, struct node *node, const volatile LONG *closed);
void queue_free_node(struct node *node);
/* Lua thread: frees NODE, which call_deliver was given: the delivery took it. */
void queue_drop(struct node *node);
/* Lua thread: the delivery took NODE and keeps it (a call's buffer; free it
 * with queue_free_node). */
void queue_take(struct node *node);
void queue_purge(struct queue *q, struct sink *sink);  /* drops SINK's nodes */
void queue_purge_job(struct queue *q, struct job *job);  /* drops JOB's nodes */
void queue_add_pending(struct queue *q, int delta);    /* calls in flight */
/* Delivers callbacks until DONE(ARG) or MS elapse; TRUE when DONE. */
BOOL queue_wait_until(lua_State *L, BOOL (*done)(void *), void *arg, DWORD ms);
/* Milliseconds argument ARG: DEF when absent, INFINITE when negative or huge. */
DWORD queue_check_ms(lua_State *L, int arg, DWORD def);
/* A wait([ms]) method: pushes true once DONE(ARG) (delivering callbacks
 * meanwhile; ms is argument 2, default forever), false on timeout. */
int queue_wait_method(lua_State *L, BOOL (*done)(void *), void *arg);
int queue_dispatch(lua_State *L);            /* wmi.dispatch */
int queue_run(lua_State *L);                 /* wmi.run */
int queue_pending(lua_State *L);             /* wmi.pending */

/* sink.c: our IWbemObjectSink; COM threads only ever touch its queue */
/* What one call may hold undispatched: then its sink takes no more and the call
 * ends with WBEM_E_QUEUE_OVERFLOW. Its final status always gets through. */
struct sink_limits
{
    LONG nodes;                 /* queue_limit: nodes of every kind (0: none) */
    LONG bytes;                 /* queue_bytes: their bytes, texts included (0: none) */
    BOOL progress;              /* progress was asked for (else progress is dropped) */
};
#define SINK_TEXT_MAX 2048      /* characters of a status or progress text kept: 4 KiB */
struct sink
{
    IWbemObjectSink IWbemObjectSink_iface;
    LONG refs;                  /* the module's (sink_addref), plus one while COM holds any */
    LONG com_refs;              /* what COM, a provider or an apartment's stub hold (AddRef) */
    volatile LONG armed;        /* a call started with it: a last Release without status ends it */
    volatile LONG closed;       /* set on the Lua thread: drop further callbacks */
    volatile LONG completed;    /* the provider sent its final status */
    volatile LONG overflowed;   /* LIMIT objects waited for dispatch: the call ends */
    LONG queued;                /* nodes of this sink in the queue (objects, statuses, progress) */
    LONG bytes;                 /* their bytes (nodes and texts) */
    struct sink_limits limits;
    struct queue *queue;
    struct stub *stub;          /* Lua thread only: who delivers this sink's nodes */
};
HRESULT sink_create(struct queue *q, struct sink **out);
void sink_addref(struct sink *s);
void sink_release(struct sink *s);
/* Any thread: ends the sink's call with HR, as a final SetStatus would, unless it
 * has ended already (exactly one final status). FALSE: no memory for it. */
BOOL sink_end(struct sink *s, HRESULT hr);
/* What WMI is handed for SINK when the apartment makes no stub: the sink itself,
 * without a COM reference of ours (so a provider's last Release is seen). */
IWbemObjectSink *sink_iface(struct sink *s);

/* apartment.c: wmi.Apartment */
struct apartment;
void apartment_register(lua_State *L);
int apartment_new(lua_State *L);             /* wmi.apartment */
struct apartment *apartment_check(lua_State *L, int arg);
struct call_list *apartment_calls(struct apartment *a);
/* Wraps SINK in a stub of the apartment; *OUT is what WMI gets: a reference to
 * the apartment's stub, or NULL in-process (WMI then gets sink_iface(SINK)). */
HRESULT apartment_wrap(struct apartment *a, struct sink *sink, IWbemObjectSink **out);

/* stub.c: wmi.Stub */
enum { STUB_INDICATE, STUB_STATUS, STUB_PROGRESS, STUB_HANDLERS };
struct stub
{
    struct sink *sink;              /* ours; the stub owns it */
    IWbemObjectSink *wrapped;       /* the apartment's stub, or NULL in-process: see stub_target */
    struct apartment **apartment;   /* its userdata box (the stub's user value) */
    int handlers[STUB_HANDLERS];    /* registry references */
    struct call *call;              /* while serving a call */
    BOOL used;
};
void stub_register(lua_State *L);
int stub_new(lua_State *L);                  /* apt:stub(handlers) */
/* Pushes a new stub of the apartment userdata at APT with the handlers at ARG;
 * returns 1, or 3 with nil, message, hresult pushed. */
int stub_push(lua_State *L, int apt, int arg);
struct stub *stub_test(lua_State *L, int arg);  /* NULL when not a wmi.Stub */
/* The pointer WMI gets, starts and cancels the call with: the apartment's stub,
 * or in-process the sink itself. */
IWbemObjectSink *stub_target(struct stub *stub);
void stub_release(lua_State *L, struct stub *stub);

/* console.c: core.console, for wmiq (secret input, width, binary stdout) */
void console_push(lua_State *L);

/* call.c: wmi.Call and the *_async methods of wmi.Services */
#define CALL_QUEUE_LIMIT 100000     /* default nodes a call may queue undispatched */
#define CALL_QUEUE_BYTES (64 << 20) /* default bytes they may take */
/* The arguments of each *Async method, converted before anything is started. */
enum call_kind { CALL_QUERY, CALL_INSTANCES, CALL_CLASSES, CALL_GET, CALL_EXEC, CALL_PUT, CALL_DELETE, CALL_SUBSCRIBE };
struct call_args
{
    enum call_kind kind;
    BSTR a, b;
    IWbemClassObject *obj;
    LONG flags;
    struct sink_limits limits;
    struct context *context;    /* made into an IWbemContext by call_issue, on its thread */
};
void call_free_args(struct call_args *x);
/* The *Async method X names, with SINK. Any thread where SVC may be used. */
HRESULT call_issue(IWbemServices *svc, const struct call_args *x, IWbemObjectSink *sink);
void call_register(lua_State *L);
int call_deliver(lua_State *L, struct node *node);  /* takes NODE */
void call_cancel_list(lua_State *L, struct call_list *list);
void call_detach_stub(lua_State *L, struct call *c);
/* The call at ARG, which must have been started without an indicate handler
 * (else an argument error): its objects wait in it for call:next. */
struct call *call_check_buffered(lua_State *L, int arg);
/* call:next's work on the call at ARG, waiting up to MS: pushes the object,
 * false (MS elapsed), nil (ended) or nil, message, hresult (failed); returns
 * how many. */
int call_next_push(lua_State *L, int arg, DWORD ms);
/* svc:stream's start (stream.c): svc, wql [, opts] at 1..3; pushes the call,
 * started without handlers, or nil, message, hresult. */
int call_start_stream(lua_State *L);
/* A stream's end (its to-be-closed value): the call at ARG (anything else is
 * ignored) is closed when OWNED or still running, else its buffer is emptied. */
void call_end_stream(lua_State *L, int arg, BOOL owned);

/* stream.c: svc:stream, call:objects and wmi.Error */
#define WMI_ERROR "wmi.Error"
/* After call_register: adds the methods and leaves wmi.Error's metatable on the stack. */
void stream_register(lua_State *L);

/* context.c: the call context (IWbemContext) of a `context = {...}` option */
/* Plain data (named values), shared by counted references and never changed: any
 * thread may make an IWbemContext of it. */
struct context;
/* Checks option 'context' of FUNC's options at OPTS (raises naming a bad value's
 * key) and pushes one value that owns what it returns: the context, or NULL (nil
 * pushed) when there is none. Read raw: no user code runs. */
struct context *context_push(lua_State *L, int opts, const char *func);
void context_addref(struct context *c);     /* NULL is fine for both */
void context_release(struct context *c);
/* *OUT = a new IWbemContext with C's values, NULL when C is NULL. Any thread where
 * COM is initialised; touches no Lua. */
HRESULT context_make(const struct context *c, IWbemContext **out);
/* Before a synchronous call on this thread: *CTX made of C (NULL when none) and the
 * connection's privileges (ID's) enabled; after it, context_leave undoes both.
 * On failure nothing is held (SCOPE may name a privilege: privileges_fail). */
struct privilege_scope;
HRESULT context_enter(const struct context *c, const struct identity *id, IWbemContext **ctx,
                      struct privilege_scope *scope);
void context_leave(IWbemContext *ctx, struct privilege_scope *scope);

/* privilege.c: privileges enabled on a thread token around a local call */
#define PRIVILEGE_NAME 64           /* characters of a privilege's name, NUL included */
struct privileges;
/* Option 'privileges' of FUNC's options at IDX: NULL when absent; raises naming an
 * unknown privilege. Allocates only after every check (*HR: E_OUTOFMEMORY, NULL). */
struct privileges *privileges_read(lua_State *L, int idx, const char *func, HRESULT *hr);
void privileges_addref(struct privileges *p);   /* NULL is fine for both */
void privileges_release(struct privileges *p);
struct privilege_scope
{
    HANDLE previous;            /* the thread's token before, if it had one */
    BOOL active;                /* the thread impersonates itself */
    char missing[PRIVILEGE_NAME];   /* the privilege the account does not hold, or "" */
};
/* Gives the calling thread a token of its own with P enabled (nothing when P is
 * NULL); a failure leaves the thread as it was. Touches no Lua. */
HRESULT privileges_enter(const struct privileges *p, struct privilege_scope *scope);
void privileges_leave(struct privilege_scope *scope);      /* the thread's token as it was */
/* hresult_fail, naming the privilege the account does not hold when that was it. */
int privileges_fail(lua_State *L, const struct privilege_scope *scope, HRESULT hr);

/* pool.c: work on the Windows thread pool (wmi.connect_async, timers, and a
 * remote call's round trips) */
struct job;
struct flight;
void pool_register(lua_State *L);
int pool_connect_async(lua_State *L);       /* wmi.connect_async */
int pool_timer(lua_State *L);               /* core.timer, for the Lua layer */
int pool_deliver(lua_State *L, struct node *node);  /* takes NODE */
void pool_release(struct job *job);
struct queue *pool_queue(struct job *job);  /* the queue its nodes go to */
/* Lua thread: starts the call X (taken) with SVC (the Services' proxy, with ID) and
 * STUB on a pool thread; a start that fails ends the call through the sink's
 * status. *OUT: the flight, for pool_flight_cancel and pool_flight_release. A
 * failure here (nothing was started) leaves the caller to end the call. */
HRESULT pool_flight_start(struct queue *q, IWbemServices *svc, struct identity *id, struct stub *stub,
                          struct call_args *x, struct flight **out);
void pool_flight_cancel(struct flight *f);     /* CancelAsyncCall on a pool thread, once */
void pool_flight_release(struct flight *f);    /* what it holds goes on a pool thread */
/* Lua thread: releases PROXY (with ID) on a pool thread when it is another host's
 * (its last Release is a round trip) and the Lua thread is an MTA; else at once. */
void pool_release_proxy(lua_State *L, IUnknown *proxy, struct identity *id);

#endif

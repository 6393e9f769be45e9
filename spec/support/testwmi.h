/*
 * The test WMI server (spec/support/testwmi*.c): an in-process IWbemLocator whose
 * IWbemServices wraps Wine's real one for its data and takes its asynchronous
 * behaviour from [MS-WMI] 3.1.4.3 and the IWbemServices / IWbemObjectSink pages.
 * One DLL is both the COM server and the Lua module "testwmi" (testwmi.c).
 * Shared declarations of its files, one section per file.
 */
#ifndef TESTWMI_H
#define TESTWMI_H

#define COBJMACROS
#define CONST_VTABLE
#define _WIN32_WINNT 0x0603     /* for IID_IAgileObject */

#include <windows.h>
#include <objbase.h>
#include <wbemcli.h>

/* The one source of truth: scripts/register-testserver.sh reads the CLSID from this line. */
#define TESTWMI_CLSID "{6F1E4A52-9C3B-4D7E-A0F8-2B5C7D9E1A43}"

/* --- testwmi.c: counts, configuration, hosts ------------------------------------- */

/* Counts read by testwmi.stats(). The first group are live counts (reset leaves
 * them alone); the rest count events since the last testwmi.reset(). */
enum testwmi_stat
{
    STAT_CALLS,             /* async operations in the AsyncOperationTable or still running */
    STAT_SINKS,             /* client sink pointers held */
    STAT_OBJECTS,           /* IWbemClassObject the server made and that are alive */
    STAT_SERVICES,          /* live IWbemServices */
    STAT_ENUMERATORS,       /* live IEnumWbemClassObject */
    STAT_CALL_RESULTS,      /* live IWbemCallResult */
    STAT_IN_FLIGHT,         /* connects + calls running now */
    STAT_HELD,              /* Indicates under way, held by configure{ late_indicate = true } */
    STAT_GATED,             /* calls waiting at the gate (configure{ gate = true }) */
    STAT_WEDGED,            /* client calls blocked on a "wedge" host until testwmi.release() */
    STAT_POSTED_WAITING,    /* sink calls posted to an STA's queue, not yet run (proxies = true) */
    STAT_LIVE_END,
    STAT_MAX_IN_FLIGHT = STAT_LIVE_END,
    STAT_CONNECTS,          /* ConnectServer calls */
    STAT_STARTED,           /* async operations started */
    STAT_CANCELS_MATCHED,   /* CancelAsyncCall with a sink of a pending operation */
    STAT_CANCELS_UNMATCHED, /* CancelAsyncCall with any other pointer */
    STAT_INDICATES,         /* Indicate calls made */
    STAT_INDICATED,         /* objects passed to Indicate */
    STAT_STATUSES,          /* final SetStatus calls made */
    STAT_PROGRESS,          /* SetStatus(WBEM_STATUS_PROGRESS) calls made */
    STAT_LATE_INDICATES,    /* Indicates that reached the sink after CancelAsyncCall returned */
    STAT_EVENTS,            /* event objects indicated */
    STAT_SAME_THREAD,       /* final SetStatus sent on a thread that sent an Indicate of the call */
    STAT_BLANKETS,          /* IClientSecurity::SetBlanket calls */
    STAT_IDENTITY_CHECKS,   /* uses of a proxy whose blanket carries an identity */
    STAT_IDENTITY_LOST,     /* ... that found the identity freed or changed */
    STAT_DOUBLE_STATUS,     /* a second final status refused (a server bug if ever non-zero) */
    STAT_ROUND_TRIPS,       /* DCOM round trips the client paid (a method call, a last Release) */
    STAT_VANISHED,          /* sinks released without a final status by a "vanish" host */
    STAT_DEFAULT_BLANKET_CALLS, /* calls through a proxy of a remote host whose blanket was never set */
    STAT_WRONG_THREAD,      /* calls through a proxy from another apartment (RPC_E_WRONG_THREAD) */
    STAT_POSTED_CALLS,      /* sink calls that ran through an STA's message queue */
    STAT_UNMARSHALLED,      /* proxies unmarshalled into another apartment (a new proxy, default blanket) */
    STAT_REJECTED,          /* callbacks of a "reject" host refused by a sink that is no stub */
    STAT_COUNT
};
extern const char *const testwmi_stat_names[STAT_COUNT];
void testwmi_count( enum testwmi_stat s, LONG delta );
void testwmi_in_flight( LONG delta );

/* testwmi.configure{}: read by the server's threads under testwmi_cs. */
struct testwmi_config
{
    LONG batch;             /* objects per Indicate */
    LONG event_interval;    /* ms between event objects */
    LONG batch_delay;       /* ms between two Indicates of one call */
    BOOL late_indicate;     /* hold a call's first Indicate until it is cancelled, then send it */
    BOOL gate;              /* calls wait before their first Indicate (a write before writing) until open_gate() */
    LONG vanish_after;      /* a "vanish" host is gone after a call's first n Indicates */
    enum { INLINE_NONE, INLINE_START, INLINE_CANCEL } inline_at;    /* where a call is delivered inline */
    HRESULT final_hr;       /* the final status of a call that succeeds */
    enum { ERROR_EXTENDED, ERROR_NONE, ERROR_SUBCLASS } error_object;  /* pObjParam of a failure */
    BOOL progress;          /* WBEM_FLAG_SEND_STATUS gives progress calls */
    BOOL run_to_completion; /* a cancelled PutInstanceAsync / DeleteInstanceAsync still writes */
    LONG next_fail_after;   /* Next fails once an enumerator gave this many objects (-1: never) */
    HRESULT next_hr;        /* ... with this */
    BOOL proxies;           /* ConnectServer hands out DCOM-like proxies (testwmi_proxy.c) */
    /* A hostile server (issue 22): */
    LONG progress_flood;    /* progress SetStatus calls before the first Indicate, asked for or not */
    LONG progress_text;     /* bytes of the text each flooded progress (and extra final status) carries */
    LONG final_statuses;    /* final SetStatus calls sent (the contract says one) */
    enum { MALFORMED_NONE, MALFORMED_VARTYPE, MALFORMED_BOUNDS, MALFORMED_DATE } malformed;
                            /* what every object's Name property reads as (testwmi_object.c) */
};
extern struct testwmi_config testwmi_config;
extern CRITICAL_SECTION testwmi_cs;         /* counts, configuration, operation tables, overlay */
extern CRITICAL_SECTION testwmi_wine_cs;    /* every use of Wine's WMI: it corrupts its heap otherwise */
extern HANDLE testwmi_gate;                 /* manual-reset: set while the gate is open */
extern HANDLE testwmi_unhang;               /* manual-reset: set by testwmi.release() */

/* A simulated machine, chosen by the host name of the resource ("\\host\ns"). */
struct host
{
    enum host_kind { HOST_LOCAL, HOST_LATENCY, HOST_DOWN, HOST_DENIED, HOST_HANG, HOST_WEDGE, HOST_VANISH,
                     HOST_REJECT, HOST_MIXED } kind;
    DWORD latency;          /* ms of one round trip */
    BOOL remote;            /* a host name other than ".", "localhost" or none */
    BOOL classes;           /* the namespace is the class store's (testwmi_classes.c) */
};
/* TRIPS round trips to HOST: each costs its latency. Counted (STAT_ROUND_TRIPS). */
void host_delay( const struct host *host, ULONG trips );
/* One round trip of a client call: host_delay, except that on a "wedge" host it
 * blocks until testwmi.release() and then fails as a dropped connection. */
HRESULT host_round_trip( const struct host *host );
#define RPC_UNAVAILABLE HRESULT_FROM_WIN32( RPC_S_SERVER_UNAVAILABLE )    /* 0x800706BA */

/* --- testwmi_security.c: IClientSecurity for every proxy-like object ---------------- */

/* What CoSetProxyBlanket set on one object. The client's COAUTHIDENTITY pointer is
 * kept as a DCOM proxy keeps it (it must stay valid while the proxy lives); the
 * server copies user and domain to check that, never the password. */
struct security
{
    IClientSecurity IClientSecurity_iface;
    IUnknown *outer;        /* the object this belongs to: QI, AddRef and Release go there */
    const char *kind;       /* "services", "enumerator" or "call_result" */
    DWORD authn_svc, authz_svc, authn_level, imp_level, capabilities;
    COAUTHIDENTITY *identity;
    WCHAR *user, *domain;   /* copies, to compare with what identity points to */
    ULONG password_length;
    BOOL set;
};
void security_init( struct security *sec, IUnknown *outer, const char *kind );
void security_free( struct security *sec );
/* Counts a use of the object; FALSE when its identity was freed or changed meanwhile. */
BOOL security_check( struct security *sec );
/* testwmi.blankets() */
struct lua_State;
int security_push_log( struct lua_State *L );
void security_reset_log( void );

/* --- testwmi_object.c: objects handed out ------------------------------------------- */

/* Wraps a Wine object (takes OBJ's reference; NULL in, NULL out): counted while alive,
 * its values, system properties and text read now and served from that snapshot ever
 * after, every use of Wine's object serialised on testwmi_wine_cs, writable through
 * an overlay of values. */
IWbemClassObject *object_wrap( IWbemClassObject *obj );
/* The Wine object inside a wrapper (no reference), or OBJ itself. */
IWbemClassObject *object_unwrap( IWbemClassObject *obj );
/* A copy of a wrapper: same Wine object and snapshot, its own copy of the written values. */
HRESULT object_copy( IWbemClassObject *obj, IWbemClassObject **out );
/* The relative path of an instance from its key values ("Class.Key=\"v\""). */
HRESULT object_relpath( IWbemClassObject *obj, IWbemServices *wine, BSTR *out );

/* A property of a bag object. */
struct bag_prop
{
    const WCHAR *name;
    CIMTYPE type;
    VARIANT value;          /* the bag takes it */
};
/* An object made by the server itself (__ExtendedStatus, events): class CLS, N properties. */
IWbemClassObject *bag_create( const WCHAR *cls, struct bag_prop *props, ULONG n );
/* An __ExtendedStatus for a failed OPERATION on PARAM (the error object of [MS-WMI]
 * 3.1.4.2.2's pObjParam); with SUBCLASS, of a class derived from it. */
IWbemClassObject *bag_status( HRESULT hr, const WCHAR *operation, const WCHAR *param, BOOL subclass );
/* The "mixed" host's extra row: a TestWmi_Node, a class with a Host property of its own. */
IWbemClassObject *bag_node( void );
int bag_compares( struct lua_State *L );

/* --- testwmi_methods.c: methods Wine lacks (Win32_Process.Terminate) ------------------ */
HRESULT methods_exec( const WCHAR *path, const WCHAR *method, IWbemClassObject *in, IWbemClassObject **out );

/* --- testwmi_enum.c: IEnumWbemClassObject over a list; IWbemCallResult ------------- */

struct objects
{
    IWbemClassObject **objs;
    ULONG count, cap;
};
void objects_free( struct objects *list );
HRESULT objects_add( struct objects *list, IWbemClassObject *obj );    /* takes the reference */
/* Takes LIST. Like a DCOM proxy, a new enumerator has the default blanket until the
 * client sets one; each Next, Skip, Reset and the last Release is a round trip to HOST. */
HRESULT enum_create( const struct host *host, struct objects *list, IEnumWbemClassObject **out );
/* A finished call's result: a path string (taken) and/or an object (AddRef'd). */
HRESULT call_result_create( const struct host *host, HRESULT status, BSTR path, IWbemClassObject *obj,
                            IWbemCallResult **out );

/* --- testwmi_services.c: IWbemServices ------------------------------------------- */

struct services;
HRESULT services_create( IWbemServices *wine, const struct host *host, IWbemServices **out );
/* Wine's services, the host and the blanket of a services object. */
IWbemServices *services_wine( struct services *svc );
const struct host *services_host( struct services *svc );
struct security *services_security( struct services *svc );
/* The server's own references (an operation's), apart from the client's. */
void services_addref( struct services *svc );
void services_release( struct services *svc );
/* A client call reaches the server: a round trip (fails once the host vanished or stalled). */
HRESULT services_trip( struct services *svc );
/* A "vanish" host is gone: every later call fails 0x800706BA. */
void services_vanish( struct services *svc );
BOOL services_vanished( struct services *svc );
/* What Wine returns for KIND ("query", "instances", "classes", "get", "exec"), as
 * wrapped objects, serialised on testwmi_wine_cs. */
HRESULT services_collect( struct services *svc, int kind, const WCHAR *a, const WCHAR *b, LONG flags,
                          IWbemClassObject *in, struct objects *out );
enum collect_kind { COLLECT_QUERY, COLLECT_INSTANCES, COLLECT_CLASSES, COLLECT_GET, COLLECT_EXEC };
HRESULT services_put( struct services *svc, IWbemClassObject *obj, LONG flags, BSTR *path );
HRESULT services_delete( struct services *svc, const WCHAR *path );
void overlay_clear( void );

/* --- testwmi_context.c: each call's IWbemContext and the caller's privileges ------- */

/* Records METHOD's context (NULL: none) and the privileges enabled on the calling
 * thread's token; call it on the thread the client called on. */
void context_record( const WCHAR *method, IWbemContext *ctx );
void context_reset( void );
int context_push_log( struct lua_State *L );                  /* testwmi.contexts() */
int context_set_names( struct lua_State *L );                 /* testwmi.context_names{...} */
int context_push_process_privileges( struct lua_State *L );   /* testwmi.process_privileges() */
int context_thread_token( struct lua_State *L );              /* testwmi.thread_token() */

/* --- testwmi_bag.c: IWbemClassObject's method calls for an object without methods --- */
HRESULT WINAPI nomethod_GetMethod( IWbemClassObject *iface, LPCWSTR name, LONG flags, IWbemClassObject **in,
                                   IWbemClassObject **out );
HRESULT WINAPI nomethod_BeginMethodEnumeration( IWbemClassObject *iface, LONG flags );
HRESULT WINAPI nomethod_NextMethod( IWbemClassObject *iface, LONG flags, BSTR *name, IWbemClassObject **in,
                                    IWbemClassObject **out );
HRESULT WINAPI nomethod_EndMethodEnumeration( IWbemClassObject *iface );
HRESULT WINAPI nomethod_GetMethodQualifierSet( IWbemClassObject *iface, LPCWSTR method, IWbemQualifierSet **set );
HRESULT WINAPI nomethod_GetMethodOrigin( IWbemClassObject *iface, LPCWSTR method, BSTR *cls );

/* --- testwmi_classes.c: root\testclasses, a store of classes and static instances --- */

BOOL classes_namespace( const WCHAR *ns );
BOOL classes_is_class( IWbemClassObject *obj );
/* What services_collect, services_put and services_delete do in that namespace. */
HRESULT classes_collect( int kind, const WCHAR *a, LONG flags, struct objects *out );
HRESULT classes_put( IWbemClassObject *obj, LONG flags, BSTR *path );
HRESULT classes_delete( const WCHAR *path );
void classes_clear( void );
int classes_push_log( struct lua_State *L );   /* testwmi.class_log() */

/* --- testwmi_schema.c: classes with qualifiers (TestWmi_Service, TestWmi_Process, TestWmi_Pair) --- */

/* What the server serves itself for a COLLECT_* KIND of path A (method B): S_FALSE
 * when A names none of its classes (then Wine answers). FLAGS may carry
 * WBEM_FLAG_USE_AMENDED_QUALIFIERS. */
HRESULT schema_collect( int kind, const WCHAR *a, const WCHAR *b, LONG flags, struct objects *out );

/* --- testwmi_proxy.c: proxies that are not agile (configure{ proxies = true }) ------- */

/* A proxy of the calling apartment for SVC (AddRef'd). */
HRESULT proxy_services( IWbemServices *svc, BOOL remote, IWbemServices **out );
/* The client's sink behind a sink the server got through a proxy, or SINK itself. */
IWbemObjectSink *proxy_sink_client( IWbemObjectSink *sink );
/* What CoUnmarshalInterface gets from the server's CLSID for IID_IMarshal. */
HRESULT proxy_unmarshaler( REFIID riid, void **obj );

/* --- testwmi_items.c: TestWmi_Item, a class with the hardest string values --------- */

/* The objects of "SELECT * FROM TestWmi_Item [WHERE Name = literal]" (Windows'
 * string literals) into OUT; WBEM_E_INVALID_QUERY for other text about the class;
 * S_FALSE when WQL is about another class. */
HRESULT items_query( const WCHAR *wql, struct objects *out );

/* --- testwmi_queries.c: the WQL the server was asked --------------------------------- */

/* METHOD: "ExecQuery", "ExecQueryAsync" or "ExecNotificationQueryAsync". */
void queries_record( const char *method, const WCHAR *wql );
void queries_reset( void );
int queries_push( struct lua_State *L );    /* testwmi.queries() */

/* --- testwmi_async.c: the AsyncOperationTable ([MS-WMI] 3.1.1.1.3) ------------------ */

enum op_kind { OP_QUERY, OP_INSTANCES, OP_CLASSES, OP_GET, OP_EXEC, OP_PUT, OP_DELETE, OP_EVENTS };
struct op_table
{
    struct op *head;
};
/* Starts an operation of SVC on its own thread; A and B are copied, IN is AddRef'd. */
HRESULT async_start( struct services *svc, struct op_table *table, enum op_kind kind, const WCHAR *a,
                     const WCHAR *b, LONG flags, IWbemClassObject *in, IWbemObjectSink *sink );
HRESULT async_cancel( struct op_table *table, IWbemObjectSink *sink );

#endif

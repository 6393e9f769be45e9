/*
 * bench_raw: the benchmarks' C side, a Lua module built only for `make bench`.
 *
 * - The raw C client luawmi is compared with: ExecQueryAsync into a plain C sink
 *   that reads one property in Indicate, and a semisynchronous ExecQuery + Next
 *   loop. Each returns its own time, taken with the same clock as bench_raw.now().
 * - The clock (QueryPerformanceCounter), process memory, and tiny sleeper processes
 *   for a Win32_Process query of a few hundred processes.
 * - Micro timings of the primitives the dispatch path is made of.
 */

#define COBJMACROS
#define CONST_VTABLE

#include <windows.h>
#include <objbase.h>
#include <wbemcli.h>
#include <psapi.h>
#include <tlhelp32.h>
#include <stdlib.h>
#include <string.h>

#include "lua.h"
#include "lauxlib.h"

#define STOP_EVENT L"luawmi-bench-stop"
#define READY_SEMAPHORE L"luawmi-bench-ready"
#define MAX_SLEEPERS 1024

static double seconds_since( LARGE_INTEGER a )
{
    LARGE_INTEGER b, f;
    QueryPerformanceCounter( &b );
    QueryPerformanceFrequency( &f );
    return (double)(b.QuadPart - a.QuadPart) / (double)f.QuadPart;
}

/* bench_raw.now() --> seconds (QueryPerformanceCounter) */
static int raw_now( lua_State *L )
{
    LARGE_INTEGER c, f;
    QueryPerformanceCounter( &c );
    QueryPerformanceFrequency( &f );
    lua_pushnumber( L, (double)c.QuadPart / (double)f.QuadPart );
    return 1;
}

/* bench_raw.sleep(ms) */
static int raw_sleep( lua_State *L )
{
    Sleep( (DWORD)luaL_checkinteger( L, 1 ) );
    return 0;
}

/* bench_raw.memory() --> { private =, working_set =, peak_working_set = } (bytes).
 * Private bytes are PrivateUsage, which Windows documents as equal to PagefileUsage
 * (the commit charge) and which Wine 8's GetProcessMemoryInfo leaves 0: then
 * PagefileUsage, which Wine reads from /proc (RssAnon + VmSwap). */
static int raw_memory( lua_State *L )
{
    PROCESS_MEMORY_COUNTERS_EX pmc;

    memset( &pmc, 0, sizeof(pmc) );
    pmc.cb = sizeof(pmc);
    if (!GetProcessMemoryInfo( GetCurrentProcess(), (PROCESS_MEMORY_COUNTERS *)&pmc, sizeof(pmc) ))
        return luaL_error( L, "GetProcessMemoryInfo failed (%d)", (int)GetLastError() );
    lua_createtable( L, 0, 3 );
    lua_pushinteger( L, (lua_Integer)(pmc.PrivateUsage ? pmc.PrivateUsage : pmc.PagefileUsage) );
    lua_setfield( L, -2, "private" );
    lua_pushinteger( L, (lua_Integer)pmc.WorkingSetSize );
    lua_setfield( L, -2, "working_set" );
    lua_pushinteger( L, (lua_Integer)pmc.PeakWorkingSetSize );
    lua_setfield( L, -2, "peak_working_set" );
    return 1;
}

/* bench_raw.threads() --> the number of threads of this process (a Toolhelp snapshot). */
static int raw_threads( lua_State *L )
{
    HANDLE snap = CreateToolhelp32Snapshot( TH32CS_SNAPTHREAD, 0 );
    THREADENTRY32 te;
    DWORD self = GetCurrentProcessId();
    lua_Integer n = 0;

    if (snap == INVALID_HANDLE_VALUE) return luaL_error( L, "CreateToolhelp32Snapshot failed (%d)", (int)GetLastError() );
    te.dwSize = sizeof(te);
    if (Thread32First( snap, &te ))
        do if (te.th32OwnerProcessID == self) n++; while (Thread32Next( snap, &te ));
    CloseHandle( snap );
    lua_pushinteger( L, n );
    return 1;
}

/* --- the raw C client ------------------------------------------------------------ */

static IWbemServices *services;     /* its own connection, made on first use */

static HRESULT raw_connect( void )
{
    IWbemLocator *locator = NULL;
    BSTR ns;
    HRESULT hr;

    if (services) return S_OK;
    hr = CoInitializeEx( NULL, COINIT_MULTITHREADED );
    if (FAILED(hr) && hr != RPC_E_CHANGED_MODE) return hr;
    hr = CoCreateInstance( &CLSID_WbemLocator, NULL, CLSCTX_INPROC_SERVER, &IID_IWbemLocator, (void **)&locator );
    if (FAILED(hr)) return hr;
    if (!(ns = SysAllocString( L"root\\cimv2" ))) hr = E_OUTOFMEMORY;
    else hr = IWbemLocator_ConnectServer( locator, ns, NULL, NULL, NULL, 0, NULL, NULL, &services );
    SysFreeString( ns );
    IWbemLocator_Release( locator );
    return hr;
}

static int raw_fail( lua_State *L, const char *what, HRESULT hr )
{
    lua_pushnil( L );
    lua_pushfstring( L, "%s failed: 0x%08X", what, (unsigned int)hr );
    lua_pushinteger( L, (lua_Integer)(DWORD)hr );
    return 3;
}

static BSTR raw_bstr( lua_State *L, int arg )
{
    size_t len;
    const char *s = luaL_checklstring( L, arg, &len );
    int n = MultiByteToWideChar( CP_UTF8, 0, s, (int)len, NULL, 0 );
    BSTR b = SysAllocStringLen( NULL, n );
    if (!b) luaL_error( L, "out of memory" );
    MultiByteToWideChar( CP_UTF8, 0, s, (int)len, b, n );
    return b;
}

/* Reads one property and lets it go: what a C client does with a result. */
static void raw_read( IWbemClassObject *obj, BSTR prop )
{
    VARIANT v;
    VariantInit( &v );
    if (SUCCEEDED(IWbemClassObject_Get( obj, prop, 0, &v, NULL, NULL ))) VariantClear( &v );
}

/* The async client's sink: reads the property in Indicate (Wine refills a class's
 * values on its next query, so a client reads them as they arrive), signals on the
 * final status. */
struct raw_sink
{
    IWbemObjectSink IWbemObjectSink_iface;
    LONG refs;
    BSTR prop;
    LONG count;
    HRESULT hr;
    HANDLE done;
};

static inline struct raw_sink *raw_sink_from( IWbemObjectSink *iface )
{
    return CONTAINING_RECORD( iface, struct raw_sink, IWbemObjectSink_iface );
}

static HRESULT WINAPI raw_sink_QueryInterface( IWbemObjectSink *iface, REFIID riid, void **obj )
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

static ULONG WINAPI raw_sink_AddRef( IWbemObjectSink *iface )
{
    return InterlockedIncrement( &raw_sink_from( iface )->refs );
}

static ULONG WINAPI raw_sink_Release( IWbemObjectSink *iface )
{
    struct raw_sink *sink = raw_sink_from( iface );
    LONG refs = InterlockedDecrement( &sink->refs );
    if (!refs)
    {
        SysFreeString( sink->prop );
        CloseHandle( sink->done );
        free( sink );
    }
    return refs;
}

static HRESULT WINAPI raw_sink_Indicate( IWbemObjectSink *iface, LONG count, IWbemClassObject **objs )
{
    struct raw_sink *sink = raw_sink_from( iface );
    LONG i;
    for (i = 0; i < count; i++) raw_read( objs[i], sink->prop );
    InterlockedExchangeAdd( &sink->count, count );
    return WBEM_S_NO_ERROR;
}

static HRESULT WINAPI raw_sink_SetStatus( IWbemObjectSink *iface, LONG flags, HRESULT hr, BSTR param,
                                          IWbemClassObject *obj )
{
    struct raw_sink *sink = raw_sink_from( iface );
    (void)param; (void)obj;
    if (flags == WBEM_STATUS_COMPLETE)
    {
        sink->hr = hr;
        SetEvent( sink->done );
    }
    return WBEM_S_NO_ERROR;
}

static const IWbemObjectSinkVtbl raw_sink_vtbl =
{
    raw_sink_QueryInterface,
    raw_sink_AddRef,
    raw_sink_Release,
    raw_sink_Indicate,
    raw_sink_SetStatus
};

/* bench_raw.async(wql, property) --> objects, seconds | nil, message, hresult
 * ExecQueryAsync into a C sink; timed from the call to the final status. Wine keeps
 * one async slot per services until CancelAsyncCall: that follows, untimed. */
static int raw_async( lua_State *L )
{
    BSTR wql = raw_bstr( L, 1 ), prop = raw_bstr( L, 2 ), lang = SysAllocString( L"WQL" );
    struct raw_sink *sink = calloc( 1, sizeof(*sink) );
    LARGE_INTEGER start;
    double elapsed;
    HRESULT hr = raw_connect();

    if (SUCCEEDED(hr) && (!sink || !lang || !(sink->done = CreateEventW( NULL, TRUE, FALSE, NULL ))))
        hr = E_OUTOFMEMORY;
    if (FAILED(hr))
    {
        if (sink && sink->done) CloseHandle( sink->done );
        free( sink );
        SysFreeString( wql );
        SysFreeString( prop );
        SysFreeString( lang );
        return raw_fail( L, "raw async", hr );
    }
    sink->IWbemObjectSink_iface.lpVtbl = &raw_sink_vtbl;
    sink->refs = 1;
    sink->prop = prop;
    QueryPerformanceCounter( &start );
    hr = IWbemServices_ExecQueryAsync( services, lang, wql, 0, NULL, &sink->IWbemObjectSink_iface );
    if (SUCCEEDED(hr))
    {
        WaitForSingleObject( sink->done, INFINITE );
        elapsed = seconds_since( start );
        hr = sink->hr;
        IWbemServices_CancelAsyncCall( services, &sink->IWbemObjectSink_iface );
    }
    SysFreeString( wql );
    SysFreeString( lang );
    if (FAILED(hr))
    {
        IWbemObjectSink_Release( &sink->IWbemObjectSink_iface );
        return raw_fail( L, "raw async", hr );
    }
    lua_pushinteger( L, sink->count );
    lua_pushnumber( L, elapsed );
    IWbemObjectSink_Release( &sink->IWbemObjectSink_iface );
    return 2;
}

/* bench_raw.sync(wql, property [, batch = 64]) --> objects, seconds | nil, message, hresult
 * Semisynchronous: ExecQuery(RETURN_IMMEDIATELY | FORWARD_ONLY), then Next in batches. */
static int raw_sync( lua_State *L )
{
    BSTR wql = raw_bstr( L, 1 ), prop = raw_bstr( L, 2 ), lang = SysAllocString( L"WQL" );
    lua_Integer batch = luaL_optinteger( L, 3, 64 );
    IWbemClassObject *objs[256];
    IEnumWbemClassObject *e = NULL;
    LARGE_INTEGER start;
    lua_Integer count = 0;
    double elapsed;
    HRESULT hr = raw_connect();

    if (batch < 1 || batch > 256) batch = 64;
    if (SUCCEEDED(hr) && !lang) hr = E_OUTOFMEMORY;
    QueryPerformanceCounter( &start );
    if (SUCCEEDED(hr))
        hr = IWbemServices_ExecQuery( services, lang, wql, WBEM_FLAG_RETURN_IMMEDIATELY | WBEM_FLAG_FORWARD_ONLY,
                                      NULL, &e );
    while (SUCCEEDED(hr))
    {
        ULONG got = 0, i;
        hr = IEnumWbemClassObject_Next( e, WBEM_INFINITE, (ULONG)batch, objs, &got );
        for (i = 0; i < got; i++)
        {
            raw_read( objs[i], prop );
            IWbemClassObject_Release( objs[i] );
        }
        count += got;
        if (hr != WBEM_S_NO_ERROR || !got) break;
    }
    if (e) IEnumWbemClassObject_Release( e );
    elapsed = seconds_since( start );
    SysFreeString( wql );
    SysFreeString( prop );
    SysFreeString( lang );
    if (FAILED(hr)) return raw_fail( L, "raw sync", hr );
    lua_pushinteger( L, count );
    lua_pushnumber( L, elapsed );
    return 2;
}

/* --- sleeper processes ----------------------------------------------------------- */

static struct
{
    HANDLE stop, ready, job;
    HANDLE procs[MAX_SLEEPERS];
    int count;
} sleepers;

static void sleepers_close( void )
{
    int i;
    for (i = 0; i < sleepers.count; i++) CloseHandle( sleepers.procs[i] );
    sleepers.count = 0;
    if (sleepers.stop) CloseHandle( sleepers.stop );
    if (sleepers.ready) CloseHandle( sleepers.ready );
    if (sleepers.job) CloseHandle( sleepers.job );   /* kills any left (KILL_ON_JOB_CLOSE) */
    sleepers.stop = sleepers.ready = sleepers.job = NULL;
}

/* bench_raw.spawn(exe, n [, timeout_ms = 120000]) --> processes started and ready.
 * Each sleeper waits on a named event that bench_raw.stop() signals; they also sit
 * in a job that kills them when this process ends. */
static int raw_spawn( lua_State *L )
{
    BSTR exe = raw_bstr( L, 1 );
    lua_Integer n = luaL_checkinteger( L, 2 ), i, ready = 0;
    DWORD timeout = (DWORD)luaL_optinteger( L, 3, 120000 ), start = GetTickCount();
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION limits;

    luaL_argcheck( L, n >= 0 && n <= MAX_SLEEPERS - sleepers.count, 2, "too many sleepers" );
    if (!sleepers.stop)
    {
        sleepers.stop = CreateEventW( NULL, TRUE, FALSE, STOP_EVENT );
        sleepers.ready = CreateSemaphoreW( NULL, 0, MAX_SLEEPERS, READY_SEMAPHORE );
        sleepers.job = CreateJobObjectW( NULL, NULL );
        if (!sleepers.stop || !sleepers.ready || !sleepers.job)
        {
            SysFreeString( exe );
            sleepers_close();
            return luaL_error( L, "spawn: cannot create the event, semaphore or job" );
        }
        memset( &limits, 0, sizeof(limits) );
        limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
        SetInformationJobObject( sleepers.job, JobObjectExtendedLimitInformation, &limits, sizeof(limits) );
    }
    ResetEvent( sleepers.stop );
    for (i = 0; i < n; i++)
    {
        STARTUPINFOW si;
        PROCESS_INFORMATION pi;
        memset( &si, 0, sizeof(si) );
        si.cb = sizeof(si);
        int tries;
        /* Wine refuses a process start now and then under this load: try again. */
        for (tries = 0; tries < 20; tries++)
        {
            if (CreateProcessW( exe, NULL, NULL, NULL, FALSE, CREATE_SUSPENDED | CREATE_NO_WINDOW, NULL, NULL,
                                &si, &pi ))
                break;
            Sleep( 50 );
        }
        if (tries == 20) break;
        AssignProcessToJobObject( sleepers.job, pi.hProcess );
        ResumeThread( pi.hThread );
        CloseHandle( pi.hThread );
        sleepers.procs[sleepers.count++] = pi.hProcess;
    }
    SysFreeString( exe );
    /* Ready: each released the semaphore once it holds the stop event. */
    while (ready < i)
    {
        DWORD spent = GetTickCount() - start;
        if (spent >= timeout || WaitForSingleObject( sleepers.ready, timeout - spent ) != WAIT_OBJECT_0) break;
        ready++;
    }
    lua_pushinteger( L, ready );
    return 1;
}

/* bench_raw.stop([timeout_ms = 60000]) --> sleepers that exited (the rest are killed) */
static int raw_stop( lua_State *L )
{
    DWORD timeout = (DWORD)luaL_optinteger( L, 1, 60000 ), start = GetTickCount();
    int i, exited = 0;

    if (sleepers.stop) SetEvent( sleepers.stop );
    for (i = 0; i < sleepers.count; i++)
    {
        DWORD spent = GetTickCount() - start;
        if (WaitForSingleObject( sleepers.procs[i], spent >= timeout ? 0 : timeout - spent ) == WAIT_OBJECT_0)
            exited++;
        else
            TerminateProcess( sleepers.procs[i], 1 );
    }
    sleepers_close();
    lua_pushinteger( L, exited );
    return 1;
}

/* --- micro timings --------------------------------------------------------------- */

/* bench_raw.micro(what, iterations) --> nanoseconds per operation, what one of
 * "setevent" (auto-reset event nobody waits on), "critsec" (Enter + Leave, uncontended),
 * "calloc" (calloc + free of 48 bytes, the size of a queue node), "interlocked",
 * "sysalloc" (SysAllocStringLen + SysFreeString of a 4-character name) */
static int raw_micro( lua_State *L )
{
    static const char *const names[] = { "setevent", "critsec", "calloc", "interlocked", "sysalloc", NULL };
    int what = luaL_checkoption( L, 1, NULL, names );
    lua_Integer n = luaL_checkinteger( L, 2 ), i;
    volatile LONG counter = 0;
    CRITICAL_SECTION cs;
    LARGE_INTEGER start;
    HANDLE event = CreateEventW( NULL, FALSE, FALSE, NULL );
    double elapsed;

    luaL_argcheck( L, n > 0, 2, "iterations must be positive" );
    InitializeCriticalSection( &cs );
    QueryPerformanceCounter( &start );
    for (i = 0; i < n; i++)
    {
        switch (what)
        {
        case 0: SetEvent( event ); break;
        case 1: EnterCriticalSection( &cs ); counter++; LeaveCriticalSection( &cs ); break;
        case 2: free( calloc( 1, 48 ) ); break;
        case 3: InterlockedIncrement( &counter ); break;
        case 4: SysFreeString( SysAllocStringLen( L"Name", 4 ) ); break;
        }
    }
    elapsed = seconds_since( start );
    DeleteCriticalSection( &cs );
    CloseHandle( event );
    lua_pushnumber( L, elapsed * 1e9 / (double)n );
    return 1;
}

__declspec(dllexport) int luaopen_bench_raw( lua_State *L )
{
    static const luaL_Reg funcs[] =
    {
        { "now", raw_now },
        { "sleep", raw_sleep },
        { "memory", raw_memory },
        { "threads", raw_threads },
        { "async", raw_async },
        { "sync", raw_sync },
        { "spawn", raw_spawn },
        { "stop", raw_stop },
        { "micro", raw_micro },
        { NULL, NULL }
    };
    luaL_newlib( L, funcs );
    return 1;
}

/*
 * The queries the test WMI server was asked: ExecQuery, ExecQueryAsync and
 * ExecNotificationQueryAsync record their WQL text exactly as it arrived, so a
 * spec can assert what a client built (lua/wmi/wql.lua) rather than trust it.
 * testwmi.queries() --> { { method = "ExecQuery", wql = "SELECT ..." }, ... } in
 * arrival order; testwmi.reset() forgets them. The first RECORDS_MAX since the
 * reset are kept: a benchmark or a stress run that never resets must not see the
 * server grow.
 */
#include "testwmi.h"

#include <stdlib.h>

#include "lua.h"
#include "lauxlib.h"

#define RECORDS_MAX 64

struct query_record
{
    const char *method;
    WCHAR *wql;
};

static struct query_record records[RECORDS_MAX];
static ULONG record_count;

void queries_record( const char *method, const WCHAR *wql )
{
    WCHAR *copy = _wcsdup( wql ? wql : L"" );

    if (!copy) return;
    EnterCriticalSection( &testwmi_cs );
    if (record_count < RECORDS_MAX)
    {
        records[record_count].method = method;
        records[record_count++].wql = copy;
        copy = NULL;
    }
    LeaveCriticalSection( &testwmi_cs );
    free( copy );
}

void queries_reset( void )
{
    ULONG i;

    EnterCriticalSection( &testwmi_cs );
    for (i = 0; i < record_count; i++) free( records[i].wql );
    record_count = 0;
    LeaveCriticalSection( &testwmi_cs );
}

/* The records are copied under the lock, then pushed: pushing may raise. */
int queries_push( lua_State *L )
{
    ULONG i;

    lua_newtable( L );
    EnterCriticalSection( &testwmi_cs );
    for (i = 0; i < record_count; i++)
    {
        char buf[4096];
        int n = WideCharToMultiByte( CP_UTF8, 0, records[i].wql, -1, buf, sizeof(buf), NULL, NULL );
        const char *method = records[i].method;

        LeaveCriticalSection( &testwmi_cs );
        lua_createtable( L, 0, 2 );
        lua_pushstring( L, method );
        lua_setfield( L, -2, "method" );
        lua_pushstring( L, n > 0 ? buf : "<not UTF-16 or longer than 4095 bytes>" );
        lua_setfield( L, -2, "wql" );
        lua_rawseti( L, -2, (lua_Integer)i + 1 );
        EnterCriticalSection( &testwmi_cs );
    }
    LeaveCriticalSection( &testwmi_cs );
    return 1;
}

/*
 * What each call reached the server with (testwmi.contexts()): its IWbemContext's
 * named values (name, VARTYPE, value) and the privileges enabled on the calling
 * thread's token. The server is in-process, so a method runs on the thread that
 * called it: the token it finds is the client's thread token (OpenThreadToken), as
 * a local provider sees the client's through impersonation (CoImpersonateClient).
 *
 * A context is read by enumeration (IWbemContext::BeginEnumeration / Next, as on
 * Windows); Wine's IWbemContext enumerates nothing (E_NOTIMPL), so there the server
 * asks GetValue for the names a spec told it to look for (testwmi.context_names).
 */
#include "testwmi.h"

#include <stdlib.h>
#include <wchar.h>

#include <lua.h>
#include <lauxlib.h>

#define CONTEXT_VALUES 16
#define CONTEXT_PRIVILEGES 48
#define CONTEXT_LOG 256

struct context_record
{
    WCHAR method[40];
    BOOL context;               /* the call carried one */
    BOOL enumerated;            /* read by enumeration (else by the names probed) */
    BOOL thread_token;          /* the calling thread had a token of its own */
    ULONG count;
    struct { BSTR name; VARIANT value; } values[CONTEXT_VALUES];
    ULONG privileges;
    WCHAR privilege[CONTEXT_PRIVILEGES][64];    /* enabled on the thread's token */
};

static struct context_record *context_log[CONTEXT_LOG];   /* under testwmi_cs */
static ULONG context_logged;
static BSTR context_names[CONTEXT_VALUES];
static ULONG context_name_count;

/* The privileges enabled on TOKEN, into R's list. */
static void context_privileges( HANDLE token, WCHAR (*names)[64], ULONG *count )
{
    TOKEN_PRIVILEGES *tp;
    DWORD len = 0, i;

    *count = 0;
    GetTokenInformation( token, TokenPrivileges, NULL, 0, &len );
    if (!len || !(tp = malloc( len ))) return;
    if (GetTokenInformation( token, TokenPrivileges, tp, len, &len ))
    {
        for (i = 0; i < tp->PrivilegeCount && *count < CONTEXT_PRIVILEGES; i++)
        {
            DWORD n = 64;
            if (!(tp->Privileges[i].Attributes & SE_PRIVILEGE_ENABLED)) continue;
            if (LookupPrivilegeNameW( NULL, &tp->Privileges[i].Luid, names[*count], &n )) (*count)++;
        }
    }
    free( tp );
}

static void context_add( struct context_record *r, const WCHAR *name, VARIANT *v )
{
    if (r->count == CONTEXT_VALUES) return;
    if (!(r->values[r->count].name = SysAllocString( name ))) return;
    VariantInit( &r->values[r->count].value );
    if (FAILED(VariantCopy( &r->values[r->count].value, v )))
    {
        SysFreeString( r->values[r->count].name );
        return;
    }
    r->count++;
}

void context_record( const WCHAR *method, IWbemContext *ctx )
{
    struct context_record *r = calloc( 1, sizeof(*r) );
    HANDLE token;
    BSTR name;
    VARIANT v;
    ULONG i;

    if (!r) return;
    wcsncpy( r->method, method, ARRAYSIZE(r->method) - 1 );
    if (OpenThreadToken( GetCurrentThread(), TOKEN_QUERY, TRUE, &token ))
    {
        r->thread_token = TRUE;
        context_privileges( token, r->privilege, &r->privileges );
        CloseHandle( token );
    }
    if ((r->context = ctx != NULL))
    {
        if (SUCCEEDED(IWbemContext_BeginEnumeration( ctx, 0 )))
        {
            r->enumerated = TRUE;
            VariantInit( &v );
            while (IWbemContext_Next( ctx, 0, &name, &v ) == WBEM_S_NO_ERROR)
            {
                context_add( r, name, &v );
                SysFreeString( name );
                VariantClear( &v );
            }
            IWbemContext_EndEnumeration( ctx );
        }
        else
        {
            EnterCriticalSection( &testwmi_cs );
            for (i = 0; i < context_name_count; i++)
            {
                VariantInit( &v );
                if (SUCCEEDED(IWbemContext_GetValue( ctx, context_names[i], 0, &v ))) context_add( r, context_names[i], &v );
                VariantClear( &v );
            }
            LeaveCriticalSection( &testwmi_cs );
        }
    }
    EnterCriticalSection( &testwmi_cs );
    if (context_logged < CONTEXT_LOG) context_log[context_logged++] = r, r = NULL;
    LeaveCriticalSection( &testwmi_cs );
    if (r)
    {
        for (i = 0; i < r->count; i++) SysFreeString( r->values[i].name ), VariantClear( &r->values[i].value );
        free( r );
    }
}

void context_reset( void )
{
    ULONG i, j;
    EnterCriticalSection( &testwmi_cs );
    for (i = 0; i < context_logged; i++)
    {
        struct context_record *r = context_log[i];
        for (j = 0; j < r->count; j++) SysFreeString( r->values[j].name ), VariantClear( &r->values[j].value );
        free( r );
    }
    context_logged = 0;
    LeaveCriticalSection( &testwmi_cs );
}

static void push_wide( lua_State *L, const WCHAR *s )
{
    char buf[512];
    if (!WideCharToMultiByte( CP_UTF8, 0, s ? s : L"", -1, buf, sizeof(buf), NULL, NULL )) buf[0] = 0;
    lua_pushstring( L, buf );
}

static void push_value( lua_State *L, const VARIANT *v )
{
    LONG i, lo, hi;
    BSTR s;
    switch (V_VT(v))
    {
    case VT_I4: lua_pushinteger( L, V_I4(v) ); return;
    case VT_BOOL: lua_pushboolean( L, V_BOOL(v) != VARIANT_FALSE ); return;
    case VT_BSTR: push_wide( L, V_BSTR(v) ); return;
    case VT_ARRAY | VT_BSTR:
        lua_newtable( L );
        SafeArrayGetLBound( V_ARRAY(v), 1, &lo );
        SafeArrayGetUBound( V_ARRAY(v), 1, &hi );
        for (i = lo; i <= hi; i++)
        {
            if (FAILED(SafeArrayGetElement( V_ARRAY(v), &i, &s ))) continue;
            push_wide( L, s );
            SysFreeString( s );
            lua_rawseti( L, -2, i - lo + 1 );
        }
        return;
    }
    lua_pushnil( L );
}

/* testwmi.contexts() --> { { method =, context = bool, enumerated = bool, thread_token = bool,
 *   values = { [name] = { vt = n, value = v } }, privileges = { [SeXxxPrivilege] = true } }, ... }
 * in call order (Lua thread; records are only added meanwhile, never changed). */
int context_push_log( lua_State *L )
{
    ULONG i, j, n;
    EnterCriticalSection( &testwmi_cs );
    n = context_logged;
    LeaveCriticalSection( &testwmi_cs );
    lua_createtable( L, n, 0 );
    for (i = 0; i < n; i++)
    {
        struct context_record *r = context_log[i];
        lua_createtable( L, 0, 6 );
        push_wide( L, r->method );
        lua_setfield( L, -2, "method" );
        lua_pushboolean( L, r->context );
        lua_setfield( L, -2, "context" );
        lua_pushboolean( L, r->enumerated );
        lua_setfield( L, -2, "enumerated" );
        lua_pushboolean( L, r->thread_token );
        lua_setfield( L, -2, "thread_token" );
        lua_newtable( L );
        for (j = 0; j < r->count; j++)
        {
            lua_createtable( L, 0, 2 );
            lua_pushinteger( L, V_VT(&r->values[j].value) );
            lua_setfield( L, -2, "vt" );
            push_value( L, &r->values[j].value );
            lua_setfield( L, -2, "value" );
            push_wide( L, r->values[j].name );
            lua_insert( L, -2 );
            lua_settable( L, -3 );
        }
        lua_setfield( L, -2, "values" );
        lua_newtable( L );
        for (j = 0; j < r->privileges; j++)
        {
            push_wide( L, r->privilege[j] );
            lua_pushboolean( L, 1 );
            lua_settable( L, -3 );
        }
        lua_setfield( L, -2, "privileges" );
        lua_rawseti( L, -2, i + 1 );
    }
    return 1;
}

/* testwmi.context_names{ name, ... }: what GetValue is asked for where the context
 * cannot enumerate (Wine's). */
int context_set_names( lua_State *L )
{
    BSTR names[CONTEXT_VALUES];
    ULONG i, n;
    luaL_checktype( L, 1, LUA_TTABLE );
    n = (ULONG)lua_rawlen( L, 1 );
    luaL_argcheck( L, n <= CONTEXT_VALUES, 1, "too many names" );
    for (i = 0; i < n; i++)
    {
        WCHAR w[256];
        lua_rawgeti( L, 1, i + 1 );
        if (!MultiByteToWideChar( CP_UTF8, 0, luaL_checkstring( L, -1 ), -1, w, ARRAYSIZE(w) )) w[0] = 0;
        names[i] = SysAllocString( w );
        lua_pop( L, 1 );
    }
    EnterCriticalSection( &testwmi_cs );
    for (i = 0; i < context_name_count; i++) SysFreeString( context_names[i] );
    for (i = 0; i < n; i++) context_names[i] = names[i];
    context_name_count = n;
    LeaveCriticalSection( &testwmi_cs );
    return 0;
}

/* testwmi.process_privileges() --> { [SeXxxPrivilege] = true } enabled on the process token. */
int context_push_process_privileges( lua_State *L )
{
    WCHAR names[CONTEXT_PRIVILEGES][64];
    HANDLE token;
    ULONG i, n = 0;
    if (!OpenProcessToken( GetCurrentProcess(), TOKEN_QUERY, &token )) return luaL_error( L, "OpenProcessToken failed" );
    context_privileges( token, names, &n );
    CloseHandle( token );
    lua_newtable( L );
    for (i = 0; i < n; i++)
    {
        push_wide( L, names[i] );
        lua_pushboolean( L, 1 );
        lua_settable( L, -3 );
    }
    return 1;
}

/* testwmi.thread_token() --> whether the calling thread has a token of its own. */
int context_thread_token( lua_State *L )
{
    HANDLE token;
    BOOL has = OpenThreadToken( GetCurrentThread(), TOKEN_QUERY, TRUE, &token );
    if (has) CloseHandle( token );
    lua_pushboolean( L, has );
    return 1;
}

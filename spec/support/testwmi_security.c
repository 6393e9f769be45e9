/*
 * IClientSecurity for the server's services, enumerators and call results.
 *
 * On Windows these are DCOM proxies, and a client sets the blanket (authentication
 * level, impersonation level, identity) on each with CoSetProxyBlanket, which
 * QueryInterfaces for IClientSecurity and calls SetBlanket. Here the objects are
 * in-process, so they implement the interface themselves and record each blanket
 * for testwmi.blankets(). Like a proxy, an object keeps the client's
 * COAUTHIDENTITY pointer (CoSetProxyBlanket: it must stay valid while the proxy
 * uses it) and checks at each use that it still holds what was set; the password
 * is never copied, only whether one was given.
 */
#include "testwmi.h"

#include <stdlib.h>
#include <wchar.h>

#include "lua.h"
#include "lauxlib.h"

struct blanket_record
{
    const char *kind;
    DWORD authn_svc, authz_svc, authn_level, imp_level, capabilities;
    WCHAR *user, *domain;
    BOOL identity, password;
    WCHAR *principal;           /* the server principal name given, NULL for COLE_DEFAULT_PRINCIPAL */
};

static struct
{
    struct blanket_record *items;
    size_t count, cap;
} blanket_log;

static inline struct security *impl_from_IClientSecurity( IClientSecurity *iface )
{
    return CONTAINING_RECORD( iface, struct security, IClientSecurity_iface );
}

static HRESULT WINAPI security_QueryInterface( IClientSecurity *iface, REFIID riid, void **obj )
{
    return IUnknown_QueryInterface( impl_from_IClientSecurity( iface )->outer, riid, obj );
}

static ULONG WINAPI security_AddRef( IClientSecurity *iface )
{
    return IUnknown_AddRef( impl_from_IClientSecurity( iface )->outer );
}

static ULONG WINAPI security_Release( IClientSecurity *iface )
{
    return IUnknown_Release( impl_from_IClientSecurity( iface )->outer );
}

static HRESULT WINAPI security_QueryBlanket( IClientSecurity *iface, IUnknown *proxy, DWORD *authn_svc,
                                             DWORD *authz_svc, OLECHAR **principal, DWORD *authn_level,
                                             DWORD *imp_level, void **auth_info, DWORD *capabilities )
{
    struct security *sec = impl_from_IClientSecurity( iface );

    (void)proxy;
    EnterCriticalSection( &testwmi_cs );
    if (authn_svc) *authn_svc = sec->set ? sec->authn_svc : RPC_C_AUTHN_WINNT;
    if (authz_svc) *authz_svc = sec->set ? sec->authz_svc : RPC_C_AUTHZ_NONE;
    if (principal) *principal = NULL;
    if (authn_level) *authn_level = sec->set ? sec->authn_level : RPC_C_AUTHN_LEVEL_CONNECT;
    if (imp_level) *imp_level = sec->set ? sec->imp_level : RPC_C_IMP_LEVEL_IDENTIFY;
    if (auth_info) *auth_info = sec->identity;
    if (capabilities) *capabilities = sec->set ? sec->capabilities : EOAC_NONE;
    LeaveCriticalSection( &testwmi_cs );
    return S_OK;
}

static WCHAR *security_copy( const USHORT *s, ULONG len )
{
    WCHAR *copy;
    if (!s) return NULL;
    if ((copy = malloc( (len + 1) * sizeof(WCHAR) )))
    {
        memcpy( copy, s, len * sizeof(WCHAR) );
        copy[len] = 0;
    }
    return copy;
}

static void security_clear_identity( struct security *sec )
{
    free( sec->user );
    free( sec->domain );
    sec->user = sec->domain = NULL;
    sec->identity = NULL;
    sec->password_length = 0;
}

static HRESULT WINAPI security_SetBlanket( IClientSecurity *iface, IUnknown *proxy, DWORD authn_svc,
                                           DWORD authz_svc, OLECHAR *principal, DWORD authn_level,
                                           DWORD imp_level, void *auth_info, DWORD capabilities )
{
    struct security *sec = impl_from_IClientSecurity( iface );
    COAUTHIDENTITY *id = auth_info == COLE_DEFAULT_AUTHINFO ? NULL : auth_info;
    struct blanket_record r = { sec->kind, authn_svc, authz_svc, authn_level, imp_level, capabilities,
                                NULL, NULL, id != NULL, FALSE, NULL };

    (void)proxy;
    if (principal && principal != COLE_DEFAULT_PRINCIPAL) r.principal = _wcsdup( principal );
    if (id && (id->Flags & SEC_WINNT_AUTH_IDENTITY_UNICODE))
    {
        r.user = security_copy( id->User, id->UserLength );
        r.domain = security_copy( id->Domain, id->DomainLength );
        r.password = id->Password && id->PasswordLength;
    }
    EnterCriticalSection( &testwmi_cs );
    security_clear_identity( sec );
    sec->set = TRUE;
    sec->authn_svc = authn_svc;
    sec->authz_svc = authz_svc;
    sec->authn_level = authn_level;
    sec->imp_level = imp_level;
    sec->capabilities = capabilities;
    if (id)
    {
        sec->identity = id;
        sec->user = security_copy( id->User, id->UserLength );
        sec->domain = security_copy( id->Domain, id->DomainLength );
        sec->password_length = id->PasswordLength;
    }
    if (blanket_log.count == blanket_log.cap)
    {
        size_t cap = blanket_log.cap ? blanket_log.cap * 2 : 32;
        struct blanket_record *items = realloc( blanket_log.items, cap * sizeof(*items) );
        if (items)
        {
            blanket_log.items = items;
            blanket_log.cap = cap;
        }
    }
    if (blanket_log.count < blanket_log.cap)
    {
        blanket_log.items[blanket_log.count++] = r;
        r.user = r.domain = r.principal = NULL;
    }
    LeaveCriticalSection( &testwmi_cs );
    free( r.user );
    free( r.domain );
    free( r.principal );
    testwmi_count( STAT_BLANKETS, 1 );
    return S_OK;
}

/* The objects are in-process: the "copy" is the object itself. */
static HRESULT WINAPI security_CopyProxy( IClientSecurity *iface, IUnknown *proxy, IUnknown **copy )
{
    (void)iface;
    if (!proxy || !copy) return E_INVALIDARG;
    IUnknown_AddRef( proxy );
    *copy = proxy;
    return S_OK;
}

static const IClientSecurityVtbl security_vtbl =
{
    security_QueryInterface,
    security_AddRef,
    security_Release,
    security_QueryBlanket,
    security_SetBlanket,
    security_CopyProxy
};

void security_init( struct security *sec, IUnknown *outer, const char *kind )
{
    memset( sec, 0, sizeof(*sec) );
    sec->IClientSecurity_iface.lpVtbl = &security_vtbl;
    sec->outer = outer;
    sec->kind = kind;
}

/* A proxy the services hands out starts with its blanket, as DCOM's do not: the
 * client must still set it, which the blanket_log shows. Nothing is logged here. */
void security_inherit( struct security *sec, const struct security *from )
{
    (void)sec; (void)from;
}

void security_free( struct security *sec )
{
    EnterCriticalSection( &testwmi_cs );
    security_clear_identity( sec );
    LeaveCriticalSection( &testwmi_cs );
}

/* Reads the client's identity through the pointer it gave, guarded: a client that
 * freed it too early must fail a spec, not crash the process. */
static BOOL security_same( const USHORT *now, ULONG len, const WCHAR *copy )
{
    if (!copy) return !now;
    if (!now || len != wcslen( copy ) || IsBadReadPtr( now, len * sizeof(WCHAR) )) return FALSE;
    return !memcmp( now, copy, len * sizeof(WCHAR) );
}

BOOL security_check( struct security *sec )
{
    COAUTHIDENTITY *id;
    BOOL ok = TRUE;
    ULONG i;

    EnterCriticalSection( &testwmi_cs );
    if ((id = sec->identity))
    {
        ok = !IsBadReadPtr( id, sizeof(*id) ) && security_same( id->User, id->UserLength, sec->user )
             && security_same( id->Domain, id->DomainLength, sec->domain )
             && id->PasswordLength == sec->password_length;
        /* A freed password is zeroed first (the client's rule): all zeros is lost. */
        if (ok && sec->password_length)
        {
            ok = id->Password && !IsBadReadPtr( id->Password, sec->password_length * sizeof(WCHAR) );
            for (i = 0; ok && i < sec->password_length && !id->Password[i]; i++);
            if (ok && i == sec->password_length) ok = FALSE;
        }
    }
    LeaveCriticalSection( &testwmi_cs );
    if (id)
    {
        testwmi_count( STAT_IDENTITY_CHECKS, 1 );
        if (!ok) testwmi_count( STAT_IDENTITY_LOST, 1 );
    }
    return ok;
}

static void security_set_wide( lua_State *L, const char *key, const WCHAR *s )
{
    char buf[512];
    if (!s || !WideCharToMultiByte( CP_UTF8, 0, s, -1, buf, sizeof(buf), NULL, NULL )) return;
    lua_pushstring( L, buf );
    lua_setfield( L, -2, key );
}

static void security_set_integer( lua_State *L, const char *key, DWORD v )
{
    lua_pushinteger( L, v );
    lua_setfield( L, -2, key );
}

/* testwmi.blankets() --> { { kind =, authn_level =, imp_level =, authn_svc =, authz_svc =,
 *   capabilities =, identity = bool, user =, domain =, password = bool, principal = (nil: default) }, ... }
 * in order */
int security_push_log( lua_State *L )
{
    struct blanket_record *copy;
    size_t i, n;

    /* Copy under the lock (strings too), build tables outside it. */
    EnterCriticalSection( &testwmi_cs );
    n = blanket_log.count;
    copy = calloc( n + 1, sizeof(*copy) );
    for (i = 0; copy && i < n; i++)
    {
        copy[i] = blanket_log.items[i];
        copy[i].user = blanket_log.items[i].user ? _wcsdup( blanket_log.items[i].user ) : NULL;
        copy[i].domain = blanket_log.items[i].domain ? _wcsdup( blanket_log.items[i].domain ) : NULL;
        copy[i].principal = blanket_log.items[i].principal ? _wcsdup( blanket_log.items[i].principal ) : NULL;
    }
    LeaveCriticalSection( &testwmi_cs );
    if (!copy) return luaL_error( L, "out of memory" );
    lua_createtable( L, (int)n, 0 );
    for (i = 0; i < n; i++)
    {
        lua_createtable( L, 0, 10 );
        lua_pushstring( L, copy[i].kind );
        lua_setfield( L, -2, "kind" );
        security_set_integer( L, "authn_svc", copy[i].authn_svc );
        security_set_integer( L, "authz_svc", copy[i].authz_svc );
        security_set_integer( L, "authn_level", copy[i].authn_level );
        security_set_integer( L, "imp_level", copy[i].imp_level );
        security_set_integer( L, "capabilities", copy[i].capabilities );
        lua_pushboolean( L, copy[i].identity );
        lua_setfield( L, -2, "identity" );
        lua_pushboolean( L, copy[i].password );
        lua_setfield( L, -2, "password" );
        security_set_wide( L, "user", copy[i].user );
        security_set_wide( L, "domain", copy[i].domain );
        security_set_wide( L, "principal", copy[i].principal );
        lua_rawseti( L, -2, (lua_Integer)i + 1 );
    }
    for (i = 0; i < n; i++)
    {
        free( copy[i].user );
        free( copy[i].domain );
        free( copy[i].principal );
    }
    free( copy );
    return 1;
}

void security_reset_log( void )
{
    size_t i;
    EnterCriticalSection( &testwmi_cs );
    for (i = 0; i < blanket_log.count; i++)
    {
        free( blanket_log.items[i].user );
        free( blanket_log.items[i].domain );
        free( blanket_log.items[i].principal );
    }
    blanket_log.count = 0;
    LeaveCriticalSection( &testwmi_cs );
}

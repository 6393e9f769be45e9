/* Connecting: wmi.connect's options as plain C data, ConnectServer and the proxy
 * blanket on any thread, and the identity a remote connection's proxies share.
 *
 * Split in three so that a connection can be made off the Lua thread: the
 * options are read (raw, no user code) and copied to UTF-16 on the Lua thread;
 * connect_server touches no Lua; services_open wraps the result on the Lua thread. */
#include "luawmi.h"
#include <ctype.h>
#include <string.h>

/* --- the identity -------------------------------------------------------------- */

void identity_addref(struct identity *id)
{
    if (id) InterlockedIncrement(&id->refs);
}

static void connect_free_secret(void *p, size_t bytes)
{
    if (p) SecureZeroMemory(p, bytes);
    free(p);
}

static void connect_free_auth(COAUTHIDENTITY *auth)
{
    if (!auth) return;
    connect_free_secret(auth->User, auth->UserLength * sizeof(WCHAR));
    connect_free_secret(auth->Domain, auth->DomainLength * sizeof(WCHAR));
    connect_free_secret(auth->Password, auth->PasswordLength * sizeof(WCHAR));
    connect_free_secret(auth, sizeof(*auth));
}

void identity_release(struct identity *id)
{
    if (!id || InterlockedDecrement(&id->refs)) return;
    connect_free_auth(id->auth);
    privileges_release(id->privileges);
    free(id->principal);
    free(id);
    InterlockedDecrement(&wmi_stats.identities);
}

/* Kerberos with the authority's principal name: mutual authentication, no
 * silent fall back to NTLM (Microsoft, "Specifying the Server Principal Name");
 * NTLM and Kerberos take RPC_C_AUTHZ_NONE (CoSetProxyBlanket's page). */
static HRESULT identity_set(struct identity *id, IUnknown *proxy)
{
    return CoSetProxyBlanket(proxy, id->service, id->service == RPC_C_AUTHN_DEFAULT ? RPC_C_AUTHZ_DEFAULT
                                                                                    : RPC_C_AUTHZ_NONE,
                             id->principal ? id->principal : COLE_DEFAULT_PRINCIPAL, id->authn, id->imp, id->auth,
                             id->privileges ? EOAC_DYNAMIC_CLOAKING : EOAC_NONE);
}

/* The interface's blanket, then its IUnknown's: a proxy's IUnknown has a blanket of
 * its own, and COM calls through it (QueryInterface, the release's RemRelease)
 * with the default one unless it is set too ("Setting Security on IUnknown"). */
static HRESULT identity_set_both(struct identity *id, IUnknown *proxy)
{
    IUnknown *unknown;
    HRESULT hr = identity_set(id, proxy);
    if (FAILED(hr) || FAILED(IUnknown_QueryInterface(proxy, &IID_IUnknown, (void **)&unknown))) return hr;
    hr = identity_set(id, unknown);
    IUnknown_Release(unknown);
    return hr;
}

HRESULT identity_blanket(struct identity *id, IUnknown *proxy)
{
    HRESULT hr;
    if (!id || !id->proxy || !proxy) return S_OK;
    hr = identity_set_both(id, proxy);
    /* An object served in-process (a local provider, Wine's) is no proxy. */
    return hr == E_NOINTERFACE ? S_OK : hr;
}

/* A NUL-terminated copy of LEN characters at S, for COAUTHIDENTITY. */
static USHORT *connect_copy(const WCHAR *s, size_t len, ULONG *out_len)
{
    WCHAR *w = malloc((len + 1) * sizeof(WCHAR));
    if (!w) return NULL;
    memcpy(w, s, len * sizeof(WCHAR));
    w[len] = 0;
    *out_len = (ULONG)len;
    return (USHORT *)w;
}

static const WCHAR connect_ntlm[] = L"ntlmdomain:", connect_kerberos[] = L"kerberos:";

/* The rest of AUTHORITY after PREFIX (WMI's "ntlmdomain:" or "kerberos:"), or NULL. */
static const WCHAR *connect_authority(const WCHAR *authority, const WCHAR *prefix, size_t prefix_len)
{
    return authority && !_wcsnicmp(authority, prefix, prefix_len) ? authority + prefix_len : NULL;
}
#define CONNECT_AUTHORITY(a, prefix) connect_authority((a)->authority, prefix, ARRAYSIZE(prefix) - 1)

/* The domain: "DOMAIN\user" names it, else the authority: "ntlmdomain:DOMAIN" or
 * "kerberos:DOMAIN\HOST" (WMI's own conventions); a "user@domain" name carries its own. */
static HRESULT connect_make_auth(const struct connect_args *a, COAUTHIDENTITY **out)
{
    COAUTHIDENTITY *auth = calloc(1, sizeof(*auth));
    const WCHAR *user = a->user, *slash = wcschr(a->user, '\\');
    const WCHAR *ntlm = CONNECT_AUTHORITY(a, connect_ntlm), *kerberos = CONNECT_AUTHORITY(a, connect_kerberos);

    *out = NULL;
    if (!auth) return E_OUTOFMEMORY;
    auth->Flags = SEC_WINNT_AUTH_IDENTITY_UNICODE;
    if (slash)
    {
        if (!(auth->Domain = connect_copy(a->user, slash - a->user, &auth->DomainLength))) goto fail;
        user = slash + 1;
    }
    else if (ntlm)
    {
        if (!(auth->Domain = connect_copy(ntlm, wcslen(ntlm), &auth->DomainLength))) goto fail;
    }
    else if (kerberos && wcschr(kerberos, '\\') && !wcschr(user, '@'))
    {
        if (!(auth->Domain = connect_copy(kerberos, wcschr(kerberos, '\\') - kerberos, &auth->DomainLength)))
            goto fail;
    }
    if (!(auth->User = connect_copy(user, wcslen(user), &auth->UserLength))) goto fail;
    if (a->password && !(auth->Password = connect_copy(a->password, SysStringLen(a->password),
                                                       &auth->PasswordLength)))
        goto fail;
    *out = auth;
    return S_OK;
fail:
    connect_free_auth(auth);
    return E_OUTOFMEMORY;
}

HRESULT connect_server(const struct connect_args *a, IWbemServices **out, struct identity **out_id)
{
    IWbemLocator *locator = NULL;
    IWbemServices *svc = NULL;
    IWbemContext *context = NULL;
    struct identity *id = NULL;
    HRESULT hr;

    *out = NULL;
    *out_id = NULL;
    if (!(id = calloc(1, sizeof(*id)))) return E_OUTOFMEMORY;
    InterlockedIncrement(&wmi_stats.identities);
    id->refs = 1;
    id->authn = a->authn;
    id->imp = a->imp;
    id->proxy = TRUE;
    id->remote = a->remote;
    /* Another host needs none: "necessary only if the provider is local to the
     * client" (Microsoft, "Executing Privileged Operations Using C++"). The
     * local provider sees the thread's token through cloaking (step 5 there). */
    if (!a->remote)
    {
        id->privileges = a->privileges;
        privileges_addref(id->privileges);
    }
    id->service = CONNECT_AUTHORITY(a, connect_kerberos) ? RPC_C_AUTHN_GSS_KERBEROS
                : CONNECT_AUTHORITY(a, connect_ntlm) ? RPC_C_AUTHN_WINNT : RPC_C_AUTHN_DEFAULT;
    if (id->service == RPC_C_AUTHN_GSS_KERBEROS && !(id->principal = _wcsdup(CONNECT_AUTHORITY(a, connect_kerberos))))
    {
        hr = E_OUTOFMEMORY;
        goto done;
    }
    hr = CoCreateInstance(&a->locator, NULL, CLSCTX_INPROC_SERVER, &IID_IWbemLocator, (void **)&locator);
    if (SUCCEEDED(hr)) hr = context_make(a->context, &context);
    if (FAILED(hr)) goto done;
    hr = IWbemLocator_ConnectServer(locator, a->resource, a->user, a->password, a->locale,
                                    WBEM_FLAG_CONNECT_USE_MAX_WAIT, a->authority, context, &svc);
    if (FAILED(hr)) goto done;
    /* Explicit credentials for another host travel in the blanket of every proxy. */
    if (a->remote && a->user && FAILED(hr = connect_make_auth(a, &id->auth))) goto done;
    hr = identity_set_both(id, (IUnknown *)svc);
    /* No proxy: neither is what it hands out, and no blanket is needed anywhere. */
    if (hr == E_NOINTERFACE)
    {
        id->proxy = FALSE;
        hr = S_OK;
    }
done:
    if (context) IWbemContext_Release(context);
    if (locator) IWbemLocator_Release(locator);
    if (FAILED(hr))
    {
        if (svc) IWbemServices_Release(svc);
        identity_release(id);
        return hr;
    }
    *out = svc;
    *out_id = id;
    return S_OK;
}

/* --- the options ---------------------------------------------------------------- */

static const char *const connect_authn_names[] = {
    "default", "none", "connect", "call", "packet", "integrity", "privacy", NULL };
static const DWORD connect_authn_levels[] = {
    RPC_C_AUTHN_LEVEL_DEFAULT, RPC_C_AUTHN_LEVEL_NONE, RPC_C_AUTHN_LEVEL_CONNECT,
    RPC_C_AUTHN_LEVEL_CALL, RPC_C_AUTHN_LEVEL_PKT, RPC_C_AUTHN_LEVEL_PKT_INTEGRITY,
    RPC_C_AUTHN_LEVEL_PKT_PRIVACY };
static const char *const connect_imp_names[] = {
    "anonymous", "identify", "impersonate", "delegate", NULL };
static const DWORD connect_imp_levels[] = {
    RPC_C_IMP_LEVEL_ANONYMOUS, RPC_C_IMP_LEVEL_IDENTIFY, RPC_C_IMP_LEVEL_IMPERSONATE,
    RPC_C_IMP_LEVEL_DELEGATE };

void connect_opt_levels(lua_State *L, int idx, const char *func, const char *authn_def, DWORD *authn,
                        const char *imp_def, DWORD *imp)
{
    *authn = connect_authn_levels[core_opt_choice(L, idx, func, "authentication", authn_def, connect_authn_names)];
    *imp = connect_imp_levels[core_opt_choice(L, idx, func, "impersonation", imp_def, connect_imp_names)];
    /* Fail closed: DCOM-hardened servers (KB5004442, CVE-2021-26414) refuse calls
     * below packet integrity; a weaker level must be asked for knowingly. */
    if (*authn != RPC_C_AUTHN_LEVEL_DEFAULT && *authn < RPC_C_AUTHN_LEVEL_PKT_INTEGRITY)
    {
        BOOL insecure = core_opt_field(L, idx, "insecure") == LUA_TBOOLEAN && lua_toboolean(L, -1);
        lua_pop(L, 1);
        if (!insecure)
            luaL_error(L, "bad option 'authentication' to '%s' (below packet integrity: DCOM-hardened hosts "
                          "refuse it; set insecure = true to use it anyway)", func);
    }
}

/* Whether S is written as a host name is: DNS (RFC 1123 labels), NetBIOS, IPv4, or
 * an IPv6 literal (in brackets or not, with a %zone or not) take letters, digits and
 * "-_.:%[]" only. Nothing else may reach the "\\host\namespace" path: a '\' or '/'
 * in it would change the namespace. */
static BOOL connect_host_ok(const char *s, size_t len)
{
    size_t i;
    if (len == 0 || len > 255) return FALSE;
    for (i = 0; i < len; i++)
    {
        unsigned char c = (unsigned char)s[i];
        if (!(c < 0x80 && (isalnum(c) || strchr("-_.:%[]", c)))) return FALSE;
    }
    return TRUE;
}

/*** Whether `connect` would take NAME as a host.
 * A DNS, NetBIOS, IPv4 or IPv6 name: letters, digits and `-_.:%[]`.
 * @function valid_host
 * @tparam string name
 * @treturn boolean true, or false and the reason
 */
/* wmi.valid_host(name) --> true | false, reason: whether connect would take NAME as a host. */
int connect_valid_host(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    if (connect_host_ok(s, len))
    {
        lua_pushboolean(L, 1);
        lua_pushnil(L);
    }
    else
    {
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "not a host name (DNS, NetBIOS, IPv4 or IPv6; no '\\', '/' or spaces)");
    }
    return 2;
}

void connect_args_free(struct connect_args *a)
{
    if (a->password) SecureZeroMemory(a->password, SysStringByteLen(a->password));
    SysFreeString(a->password);
    SysFreeString(a->resource);
    SysFreeString(a->user);
    SysFreeString(a->locale);
    SysFreeString(a->authority);
    context_release(a->context);
    privileges_release(a->privileges);
    free(a->label);
    memset(a, 0, sizeof(*a));
}

/* Every string option is checked (type, UTF-8) before the first copy is made, so
 * a misuse raises with nothing to free. */
enum { CONNECT_NAMESPACE, CONNECT_HOST, CONNECT_USER, CONNECT_PASSWORD, CONNECT_AUTHORITY, CONNECT_LOCALE,
       CONNECT_STRINGS };
static const char *const connect_string_names[CONNECT_STRINGS] = {
    "namespace", "host", "user", "password", "authority", "locale" };
static const char *const connect_option_names[] = {
    "namespace", "host", "user", "password", "authority", "locale", "authentication", "impersonation",
    "apartment", "locator", "insecure", "context", "privileges", NULL };

/* Whether NS is a UNC path naming another machine ("\\\\srv\\root\\cimv2" or
 * "//srv/root/cimv2"; "." and "localhost" are this one): credentials for it must
 * travel in the blanket as for `host`. */
static BOOL connect_unc_remote(const char *ns)
{
    size_t n;
    if ((ns[0] != '\\' && ns[0] != '/') || ns[1] != ns[0]) return FALSE;
    ns += 2;
    n = strcspn(ns, "\\/");
    return n && !(n == 1 && ns[0] == '.') && !(n == 9 && !_strnicmp(ns, "localhost", 9));
}

void connect_args_read(lua_State *L, int idx, const char *func, struct connect_args *a)
{
    const char *s[CONNECT_STRINGS] = { NULL };
    size_t len[CONNECT_STRINGS] = { 0 };
    BSTR *dst[CONNECT_STRINGS] = { NULL, NULL, &a->user, &a->password, &a->authority, &a->locale };
    struct context *context;
    HRESULT hr = S_OK;
    int i, top = lua_gettop(L);

    memset(a, 0, sizeof(*a));
    idx = lua_absindex(L, idx);
    luaL_checkstack(L, CONNECT_STRINGS + 8, NULL);
    switch (lua_type(L, idx))
    {
    case LUA_TNONE:
    case LUA_TNIL:
        break;
    case LUA_TSTRING:
        lua_pushvalue(L, idx);
        s[CONNECT_NAMESPACE] = lua_tolstring(L, -1, &len[CONNECT_NAMESPACE]);
        if (!str_is_utf8(s[CONNECT_NAMESPACE], len[CONNECT_NAMESPACE])) luaL_argerror(L, idx, "invalid UTF-8");
        break;
    case LUA_TTABLE:
        core_opt_check(L, idx, func, "option", connect_option_names);
        for (i = 0; i < CONNECT_STRINGS; i++)
            if ((s[i] = core_opt_string(L, idx, func, connect_string_names[i]))) len[i] = lua_rawlen(L, -1);
        if (core_opt_field(L, idx, "apartment") != LUA_TNIL)
        {
            if (!luaL_testudata(L, -1, WMI_APARTMENT))
                luaL_error(L, "bad option 'apartment' to '%s' (%s expected, got %s)", func, WMI_APARTMENT,
                           luaL_typename(L, -1));
            apartment_check(L, -1);
        }
        break;
    default:
        luaL_typeerror(L, idx, "nil, string or table");
    }
    /* A NUL would cut the namespace (or host) where Windows reads it. */
    for (i = CONNECT_NAMESPACE; i <= CONNECT_HOST; i++)
        if (s[i] && strlen(s[i]) != len[i])
        {
            if (lua_type(L, idx) == LUA_TSTRING) luaL_argerror(L, idx, "string contains a NUL");
            luaL_error(L, "bad option '%s' to '%s' (string contains a NUL)", connect_string_names[i], func);
        }
    if (s[CONNECT_HOST] && !connect_host_ok(s[CONNECT_HOST], len[CONNECT_HOST]))
        luaL_error(L, "bad option 'host' to '%s' (not a host name: DNS, NetBIOS, IPv4 or IPv6; no '\\', '/' "
                      "or spaces)", func);
    if (s[CONNECT_PASSWORD] && !s[CONNECT_USER])
        luaL_error(L, "bad option 'password' to '%s' (a password needs a user)", func);
    connect_opt_levels(L, idx, func, "privacy", &a->authn, "impersonate", &a->imp);
    core_opt_clsid(L, idx, func, "locator", &CLSID_WbemLocator, &a->locator);
    context = context_push(L, idx, func);   /* kept by the value pushed until the end */
    if (!s[CONNECT_NAMESPACE]) s[CONNECT_NAMESPACE] = "root\\cimv2";
    a->remote = s[CONNECT_HOST] != NULL || connect_unc_remote(s[CONNECT_NAMESPACE]);
    if (s[CONNECT_HOST]) lua_pushfstring(L, "\\\\%s\\%s", s[CONNECT_HOST], s[CONNECT_NAMESPACE]);
    else lua_pushstring(L, s[CONNECT_NAMESPACE]);
    a->privileges = privileges_read(L, idx, func, &hr);

    /* Nothing raises from here on but a failed allocation, once all is freed. */
    a->context = context;
    context_addref(context);
    if (SUCCEEDED(hr) && !(a->label = _strdup(lua_tostring(L, -1)))) hr = E_OUTOFMEMORY;
    if (SUCCEEDED(hr)) hr = str_to_bstr(lua_tostring(L, -1), lua_rawlen(L, -1), &a->resource);
    for (i = 0; i < CONNECT_STRINGS && SUCCEEDED(hr); i++)
        if (dst[i] && s[i]) hr = str_to_bstr(s[i], len[i], dst[i]);
    lua_settop(L, top);
    if (FAILED(hr))
    {
        connect_args_free(a);
        luaL_error(L, "not enough memory");
    }
}

/* Privileges a connection enables for each call to a local provider, read from a
 * `privileges = { "Shutdown", "SeSecurityPrivilege", ... }` option of wmi.connect.
 *
 * Microsoft, "Executing Privileged Operations Using C++": when the provider is local
 * the client must enable the privilege itself, and a library may not change its
 * host's process token; so around each call the calling thread gets a token of its
 * own (ImpersonateSelf), the privileges are enabled on that token
 * (AdjustTokenPrivileges), and after the call the thread reverts. The privilege
 * must be on the thread that makes the COM call: local calls start on the Lua
 * thread (call.c starts another host's on the pool, and those need none).
 * A privilege the account does not hold is an error that names it
 * (ERROR_NOT_ALL_ASSIGNED), never a call made without it. */
#include "luawmi.h"
#include <stdio.h>
#include <string.h>


struct privileges
{
    LONG refs;
    ULONG count;
    struct privilege { LUID luid; WCHAR name[PRIVILEGE_NAME]; } items[1];
};

/* WMI's names (WbemPrivilegeEnum: "Shutdown", "Security", "PrimaryToken"...) and
 * Windows' own ("SeShutdownPrivilege"), case-insensitively, as "SeXxxPrivilege"
 * in OUT; FALSE when NAME is no privilege the system knows. */
static BOOL privilege_lookup(const char *name, size_t len, WCHAR *out, LUID *luid)
{
    WCHAR wide[PRIVILEGE_NAME];
    size_t n = len;
    if (!str_to_wide_ascii(name, len, wide, PRIVILEGE_NAME)) return FALSE;
    if (len > 11 && !_wcsnicmp(wide, L"Se", 2) && !_wcsicmp(wide + len - 9, L"Privilege"))
        wcscpy(out, wide);
    else if (!_wcsicmp(wide, L"PrimaryToken"))     /* WMI's one name that is not "Se" + it + "Privilege" */
        wcscpy(out, L"SeAssignPrimaryTokenPrivilege");
    else if (n + 12 < PRIVILEGE_NAME)
    {
        wcscpy(out, L"Se");
        wcscat(out, wide);
        wcscat(out, L"Privilege");
    }
    else return FALSE;
    return LookupPrivilegeValueW(NULL, out, luid);
}

void privileges_addref(struct privileges *p)
{
    if (p) InterlockedIncrement(&p->refs);
}

void privileges_release(struct privileges *p)
{
    if (p && !InterlockedDecrement(&p->refs)) free(p);
}

/* Checks option 'privileges' at IDX: a list of names, each one the system knows
 * (an argument error names the first that is not). Returns how many. */
static ULONG privileges_check(lua_State *L, int idx, const char *func)
{
    lua_Integer i, n;
    int t = core_opt_field(L, idx, "privileges");
    if (t == LUA_TNIL)
    {
        lua_pop(L, 1);
        return 0;
    }
    if (t != LUA_TTABLE)
        luaL_error(L, "bad option 'privileges' to '%s' (list of names expected, got %s)", func, luaL_typename(L, -1));
    n = (lua_Integer)lua_rawlen(L, -1);
    for (i = 1; i <= n; i++)
    {
        WCHAR name[PRIVILEGE_NAME];
        LUID luid;
        if (lua_rawgeti(L, -1, i) != LUA_TSTRING)
            luaL_error(L, "bad option 'privileges' to '%s' (names must be strings, got %s)", func, luaL_typename(L, -1));
        if (!privilege_lookup(lua_tostring(L, -1), lua_rawlen(L, -1), name, &luid))
            luaL_error(L, "bad option 'privileges' to '%s' (unknown privilege '%s')", func, lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return (ULONG)n;
}

/*** The `privileges` option of wmi.connect (and wmi.connect_async, wmi.fanout):
 * privileges enabled around each call to a local provider, on a thread token of
 * the calling thread (the process token is never changed). Another host needs none
 * and gets none.
 * @table privileges
 * @field 1 a name: WMI's ("Shutdown", "Security", "Backup", "TakeOwnership",
 *   "PrimaryToken"...) or Windows' ("SeShutdownPrivilege"), case-insensitively; an
 *   unknown name is an argument error. A privilege the account does not hold fails
 *   each call with nil, "privilege SeXxxPrivilege is not held by the account: ...",
 *   0x80070514 (ERROR_NOT_ALL_ASSIGNED).
 * @usage local svc = assert(wmi.connect{ privileges = { "Shutdown" } })
 */
struct privileges *privileges_read(lua_State *L, int idx, const char *func, HRESULT *hr)
{
    ULONG i, n = privileges_check(L, idx, func);
    struct privileges *p;

    *hr = S_OK;
    if (!n) return NULL;
    if (!(p = calloc(1, sizeof(*p) + (n - 1) * sizeof(p->items[0]))))
    {
        *hr = E_OUTOFMEMORY;
        return NULL;
    }
    p->refs = 1;
    p->count = n;
    core_opt_field(L, idx, "privileges");
    for (i = 0; i < n; i++)
    {
        lua_rawgeti(L, -1, i + 1);
        privilege_lookup(lua_tostring(L, -1), lua_rawlen(L, -1), p->items[i].name, &p->items[i].luid);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return p;
}

HRESULT privileges_enter(const struct privileges *p, struct privilege_scope *scope)
{
    HANDLE token = NULL;
    HRESULT hr = S_OK;
    ULONG i;

    memset(scope, 0, sizeof(*scope));
    if (!p) return S_OK;
    /* A host's own impersonation is put back afterwards, not lost. */
    if (!OpenThreadToken(GetCurrentThread(), TOKEN_IMPERSONATE, TRUE, &scope->previous)) scope->previous = NULL;
    if (!ImpersonateSelf(SecurityImpersonation)) return HRESULT_FROM_WIN32(GetLastError());
    scope->active = TRUE;
    if (!OpenThreadToken(GetCurrentThread(), TOKEN_ADJUST_PRIVILEGES | TOKEN_QUERY, TRUE, &token))
        hr = HRESULT_FROM_WIN32(GetLastError());
    /* One at a time: AdjustTokenPrivileges succeeds with ERROR_NOT_ALL_ASSIGNED for
     * a privilege the token lacks, and the error must say which. */
    for (i = 0; i < p->count && SUCCEEDED(hr); i++)
    {
        TOKEN_PRIVILEGES tp;
        DWORD error;
        tp.PrivilegeCount = 1;
        tp.Privileges[0].Luid = p->items[i].luid;
        tp.Privileges[0].Attributes = SE_PRIVILEGE_ENABLED;
        SetLastError(ERROR_SUCCESS);
        AdjustTokenPrivileges(token, FALSE, &tp, 0, NULL, NULL);   /* its last error says, success or not */
        if ((error = GetLastError()) == ERROR_SUCCESS) continue;
        hr = HRESULT_FROM_WIN32(error);
        if (error == ERROR_NOT_ALL_ASSIGNED) WideCharToMultiByte(CP_UTF8, 0, p->items[i].name, -1, scope->missing,
                                                                 sizeof(scope->missing), NULL, NULL);
    }
    if (token) CloseHandle(token);
    if (FAILED(hr)) privileges_leave(scope);
    return hr;
}

void privileges_leave(struct privilege_scope *scope)
{
    if (scope->active)
    {
        /* SetThreadToken(NULL, NULL) is RevertToSelf. */
        if (scope->previous) SetThreadToken(NULL, scope->previous);
        else RevertToSelf();
        scope->active = FALSE;
    }
    if (scope->previous) CloseHandle(scope->previous);
    scope->previous = NULL;
}

int privileges_fail(lua_State *L, const struct privilege_scope *scope, HRESULT hr)
{
    char what[sizeof(scope->missing) + 40];
    if (!scope->missing[0]) return hresult_fail(L, hr);
    snprintf(what, sizeof(what), "privilege %s is not held by the account", scope->missing);
    return hresult_fail_msg(L, hr, what);
}

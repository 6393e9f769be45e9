/* UTF-8 (Lua) <-> UTF-16 (COM). Characters outside the BMP travel as surrogate
 * pairs both ways; invalid UTF-8 is refused rather than silently replaced, so a
 * name or value never reaches WMI altered. */
#include <limits.h>

#include "luawmi.h"

HRESULT str_to_bstr(const char *s, size_t len, BSTR *out)
{
    int n;

    *out = NULL;
    /* MultiByteToWideChar reports an empty input as an error. */
    if (!len) return (*out = SysAllocStringLen(L"", 0)) ? S_OK : E_OUTOFMEMORY;
    if (len > INT_MAX) return E_INVALIDARG;
    n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, (int)len, NULL, 0);
    if (n <= 0) return E_INVALIDARG;
    if (!(*out = SysAllocStringLen(NULL, n))) return E_OUTOFMEMORY;
    MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, (int)len, *out, n);
    return S_OK;
}

BOOL str_is_utf8(const char *s, size_t len)
{
    return !len || (len <= INT_MAX && MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, (int)len, NULL, 0) > 0);
}

int str_to_wide_ascii(const char *s, size_t len, WCHAR *buf, size_t cap)
{
    size_t i;
    if (len >= cap) return 0;
    for (i = 0; i < len; i++)
    {
        if ((unsigned char)s[i] >= 0x80 || !s[i]) return 0;
        buf[i] = (unsigned char)s[i];
    }
    buf[len] = 0;
    return 1;
}

/* Short ASCII text (most property names and values) skips the conversion calls. */
static BOOL str_push_ascii(lua_State *L, const WCHAR *s, int len)
{
    char buf[256];
    int i;
    if (len > (int)sizeof(buf)) return FALSE;
    for (i = 0; i < len; i++)
    {
        if (s[i] >= 0x80) return FALSE;
        buf[i] = (char)s[i];
    }
    lua_pushlstring(L, buf, len);
    return TRUE;
}

void str_push_wide(lua_State *L, const WCHAR *s, int len)
{
    luaL_Buffer buf;
    char *p;
    int n;

    if (!s) len = 0;
    else if (len < 0) len = lstrlenW(s);
    if (!len)
    {
        lua_pushliteral(L, "");
        return;
    }
    if (str_push_ascii(L, s, len)) return;
    /* No WC_ERR_INVALID_CHARS: a lone surrogate (which WMI may well hold)
     * becomes U+FFFD instead of losing the whole string. */
    n = WideCharToMultiByte(CP_UTF8, 0, s, len, NULL, 0, NULL, NULL);
    if (n <= 0)
    {
        lua_pushliteral(L, "");
        return;
    }
    p = luaL_buffinitsize(L, &buf, n);
    n = WideCharToMultiByte(CP_UTF8, 0, s, len, p, n, NULL, NULL);
    luaL_pushresultsize(&buf, n > 0 ? n : 0);
}

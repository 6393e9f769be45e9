/*
 * TestWmi_Item: a class the test WMI server serves itself, whose Name values are
 * the strings a WQL string literal finds hardest (both quotes, a lone backslash,
 * a newline, non-ASCII text, a value that reads as WQL). Wine's WQL lexer has no
 * escapes (a string runs to the next quote of its kind), so Wine cannot be asked
 * for such values; this server reads
 *     SELECT * | names FROM TestWmi_Item [WHERE Name = literal]
 * with the string literals of Windows' WQL ("WHERE Clause (WMI)": a string in
 * single or double quotes; a backslash, double quote or single quote inside it is
 * escaped by a backslash) and answers WBEM_E_INVALID_QUERY for any other text.
 */
#include "testwmi.h"

#include <wchar.h>
#include <wctype.h>

static const WCHAR *const item_names[] =
{
    L"' OR Name LIKE '%",
    L"\\",
    L"\\\\",
    L"\"both\" 'quotes'",
    L"line\nbreak",
    L"na\u00efve caf\u00e9 \u2615 \u65e5\u672c",
    L"plain",
    L"",
};

static const WCHAR *items_space( const WCHAR *p )
{
    while (iswspace( *p )) p++;
    return p;
}

/* P past the word W (case-insensitive, followed by a non-name character), or NULL. */
static const WCHAR *items_word( const WCHAR *p, const WCHAR *w )
{
    size_t n = wcslen( w );
    p = items_space( p );
    if (_wcsnicmp( p, w, n )) return NULL;
    if (iswalnum( p[n] ) || p[n] == '_') return NULL;
    return p + n;
}

/* A string literal at P into BUF (CAP characters); P past it, or NULL. */
static const WCHAR *items_literal( const WCHAR *p, WCHAR *buf, size_t cap )
{
    WCHAR quote;
    size_t n = 0;

    p = items_space( p );
    if (*p != '"' && *p != '\'') return NULL;
    for (quote = *p++; *p != quote; p++)
    {
        if (!*p || n + 1 >= cap) return NULL;
        if (*p == '\\')
        {
            p++;
            if (*p != '\\' && *p != '"' && *p != '\'') return NULL;
        }
        buf[n++] = *p;
    }
    buf[n] = 0;
    return p + 1;
}

static IWbemClassObject *items_object( ULONG id, const WCHAR *name )
{
    struct bag_prop props[2];

    props[0].name = L"Id";
    props[0].type = CIM_UINT32;
    V_VT( &props[0].value ) = VT_I4;
    V_I4( &props[0].value ) = id;
    props[1].name = L"Name";
    props[1].type = CIM_STRING;
    V_VT( &props[1].value ) = VT_BSTR;
    V_BSTR( &props[1].value ) = SysAllocString( name );
    if (!V_BSTR( &props[1].value )) return NULL;
    return bag_create( L"TestWmi_Item", props, ARRAYSIZE(props) );
}

HRESULT items_query( const WCHAR *wql, struct objects *out )
{
    WCHAR value[256];
    const WCHAR *p, *where, *match = NULL;
    ULONG i;
    HRESULT hr = S_OK;

    if (!wql || !(p = items_word( wql, L"SELECT" ))) return S_FALSE;
    /* "*" or a list of names: every object has all its properties anyway. */
    for (p = items_space( p ); *p == '*' || *p == ',' || *p == '_' || iswalnum( *p ); p = items_space( p + 1 ))
        if (items_word( p, L"FROM" )) break;
    if (!(p = items_word( p, L"FROM" )) || !(p = items_word( p, L"TestWmi_Item" ))) return S_FALSE;
    if ((where = items_word( p, L"WHERE" )))
    {
        if (!(p = items_word( where, L"Name" ))) return WBEM_E_INVALID_QUERY;
        p = items_space( p );
        if (*p != '=' || !(p = items_literal( p + 1, value, ARRAYSIZE(value) ))) return WBEM_E_INVALID_QUERY;
        match = value;
    }
    if (*items_space( p )) return WBEM_E_INVALID_QUERY;
    for (i = 0; i < ARRAYSIZE(item_names) && SUCCEEDED(hr); i++)
    {
        IWbemClassObject *obj;
        /* WQL compares strings case-insensitively, as Windows does. */
        if (match && _wcsicmp( match, item_names[i] )) continue;
        hr = (obj = items_object( i + 1, item_names[i] )) ? objects_add( out, obj ) : E_OUTOFMEMORY;
    }
    if (FAILED(hr)) objects_free( out );
    return hr;
}

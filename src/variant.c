/* VARIANT <-> Lua values.
 *
 * A property's VARTYPE is only the carrier WMI chose; its CIM type says what the
 * value means (uint32 travels as VT_I4, sint64 and uint64 as decimal BSTRs), so
 * both directions are driven by the CIM type and fall back on the VARTYPE (or the
 * Lua type) only when the CIM type is unknown. */
#include <float.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "luawmi.h"

/* "NAME expected, got TYPE" for every lua_type(), as constant strings: callers
 * report them after releasing what they hold, so nothing may be built on the fly. */
#define VARIANT_GOT(e) { \
    e " expected, got nil", e " expected, got boolean", e " expected, got userdata", \
    e " expected, got number", e " expected, got string", e " expected, got table", \
    e " expected, got function", e " expected, got userdata", e " expected, got thread" }

struct variant_cim
{
    CIMTYPE type;
    VARTYPE vt;                 /* the carrier WMI expects for this CIM type */
    lua_Integer min, max;       /* range of the integer types */
    const char *name, *array_name, *range;
    const char *got[9], *array_got[9];
};

#define VARIANT_CIM(t, vt, min, max, n) \
    { t, vt, min, max, n, n "[]", "out of range for " n, VARIANT_GOT(n), VARIANT_GOT(n "[]") }

static const struct variant_cim variant_cims[] =
{
    VARIANT_CIM(CIM_SINT8, VT_I2, -128, 127, "sint8"),
    VARIANT_CIM(CIM_UINT8, VT_UI1, 0, 255, "uint8"),
    VARIANT_CIM(CIM_SINT16, VT_I2, -32768, 32767, "sint16"),
    VARIANT_CIM(CIM_UINT16, VT_I4, 0, 65535, "uint16"),
    VARIANT_CIM(CIM_SINT32, VT_I4, -2147483647 - 1, 2147483647, "sint32"),
    VARIANT_CIM(CIM_UINT32, VT_I4, 0, 4294967295LL, "uint32"),
    VARIANT_CIM(CIM_SINT64, VT_BSTR, LUA_MININTEGER, LUA_MAXINTEGER, "sint64"),
    VARIANT_CIM(CIM_UINT64, VT_BSTR, LUA_MININTEGER, LUA_MAXINTEGER, "uint64"),
    VARIANT_CIM(CIM_REAL32, VT_R4, 0, 0, "real32"),
    VARIANT_CIM(CIM_REAL64, VT_R8, 0, 0, "real64"),
    VARIANT_CIM(CIM_BOOLEAN, VT_BOOL, 0, 0, "boolean"),
    VARIANT_CIM(CIM_STRING, VT_BSTR, 0, 0, "string"),
    VARIANT_CIM(CIM_DATETIME, VT_BSTR, 0, 0, "datetime"),
    VARIANT_CIM(CIM_REFERENCE, VT_BSTR, 0, 0, "reference"),
    VARIANT_CIM(CIM_CHAR16, VT_I2, 0, 65535, "char16"),
    VARIANT_CIM(CIM_OBJECT, VT_UNKNOWN, 0, 0, "object"),
};

/* A method's sint32 parameter also takes 2^31..2^32-1 as a bit pattern: Wine
 * declares StdRegProv's hDefKey sint32 where Windows has uint32, and
 * HKEY_CURRENT_USER written as 0x80000001 must arrive intact on both. A
 * property of an instance keeps its range. */
static const struct variant_cim variant_sint32_param =
    VARIANT_CIM(CIM_SINT32, VT_I4, -2147483647 - 1, 4294967295LL, "sint32");

static const char *const variant_any_got[9] = VARIANT_GOT("number, string, boolean, table or wmi.Object");
static const char *const variant_table_got[9] = VARIANT_GOT("table");
/* An element of an untyped array: arrays do not nest. */
static const char *const variant_element_got[9] = VARIANT_GOT("number, string, boolean or wmi.Object");

static const char variant_no_memory[] = "not enough memory";
static const char variant_not_integer[] = "number has no integer representation";
static const char variant_bad_utf8[] = "string is not valid UTF-8";
static const char variant_closed[] = "attempt to use a closed wmi.Object";

static const struct variant_cim *variant_find(CIMTYPE type)
{
    size_t i;
    if (type == (CIM_SINT32 | VARIANT_PARAM)) return &variant_sint32_param;
    type &= ~VARIANT_PARAM;
    for (i = 0; i < ARRAYSIZE(variant_cims); i++)
        if (variant_cims[i].type == type) return &variant_cims[i];
    return NULL;
}

const char *variant_cimtype_name(CIMTYPE type)
{
    const struct variant_cim *c = variant_find(type & ~CIM_FLAG_ARRAY);
    if (c) return type & CIM_FLAG_ARRAY ? c->array_name : c->name;
    return type == CIM_EMPTY ? "empty" : "unknown";
}

/* lua_type() as an index into the "got" tables (LUA_TNONE reads as nil). */
static int variant_lua_type(lua_State *L, int idx)
{
    int t = lua_type(L, idx);
    return t < 0 ? LUA_TNIL : t;
}

/* --- decimal integers (sint64 and uint64 travel as strings) ----------------- */

enum variant_decimal { VARIANT_DECIMAL_OK, VARIANT_DECIMAL_BAD, VARIANT_DECIMAL_RANGE };

/* Parses an optionally signed decimal. uint64 above math.maxinteger wraps, as
 * string.unpack("J") does, so every uint64 has a Lua integer. */
static enum variant_decimal variant_parse_decimal(const char *s, size_t len, BOOL is_unsigned,
                                                  lua_Integer *out)
{
    unsigned long long u = 0;
    BOOL neg = FALSE, range = FALSE;
    size_t i = 0;

    if (len && (s[0] == '-' || s[0] == '+')) neg = s[i++] == '-';
    if (i == len) return VARIANT_DECIMAL_BAD;
    for (; i < len; i++)
    {
        unsigned d = (unsigned char)s[i] - '0';
        if (d > 9) return VARIANT_DECIMAL_BAD;
        if (u > (ULLONG_MAX - d) / 10) range = TRUE;
        u = u * 10 + d;
    }
    if (range) return VARIANT_DECIMAL_RANGE;
    if (is_unsigned ? neg && u : u > (neg ? 0x8000000000000000ULL : 0x7fffffffffffffffULL))
        return VARIANT_DECIMAL_RANGE;
    *out = (lua_Integer)(neg ? 0 - u : u);
    return VARIANT_DECIMAL_OK;
}

/* The decimal text of I (as unsigned when IS_UNSIGNED) as a new BSTR. */
static BSTR variant_decimal_bstr(lua_Integer i, BOOL is_unsigned)
{
    WCHAR buf[24], *p = buf + ARRAYSIZE(buf) - 1;
    unsigned long long u = (unsigned long long)i;
    BOOL neg = !is_unsigned && i < 0;

    if (neg) u = 0 - u;
    *p = 0;
    do *--p = L'0' + (WCHAR)(u % 10); while (u /= 10);
    if (neg) *--p = L'-';
    return SysAllocString(p);
}

/* --- VARIANT -> Lua ------------------------------------------------------------ */

/* VARIANTs in VARIANTs (VT_VARIANT elements, VT_BYREF|VT_VARIANT) nest no deeper
 * than this: WMI never nests them at all, and a VARIANT referring to itself must
 * give an error, not exhaust the C stack. */
#define VARIANT_MAX_DEPTH 100

static void variant_push_value(lua_State *L, VARTYPE vt, const void *p, CIMTYPE type, int depth);
static void variant_push_nested(lua_State *L, const VARIANT *v, CIMTYPE type, int depth);

/* Raises "unsupported VARIANT type 0x...": lua_pushfstring has no %x. */
static int variant_unsupported(lua_State *L, VARTYPE vt)
{
    char buf[8];
    snprintf(buf, sizeof(buf), "%x", (unsigned)vt);
    return luaL_error(L, "unsupported VARIANT type 0x%s", buf);
}

/* CIM strings hold no NUL, so a string ends at the first one: Wine sizes some
 * BSTRs (__RELPATH, __PATH, object text) generously and pads them with NULs.
 * A NULL BSTR reads as "". */
static void variant_push_bstr(lua_State *L, BSTR s, CIMTYPE type)
{
    UINT len = (UINT)lstrlenW(s);
    char buf[32];
    lua_Integer i;
    UINT k;

    if ((type == CIM_SINT64 || type == CIM_UINT64) && len < sizeof(buf))
    {
        for (k = 0; k < len && s[k] < 128; k++) buf[k] = (char)s[k];
        if (k == len && variant_parse_decimal(buf, len, type == CIM_UINT64, &i) == VARIANT_DECIMAL_OK)
        {
            lua_pushinteger(L, i);
            return;
        }
    }
    str_push_wide(L, s, (int)len);
}

static void variant_push_object(lua_State *L, IUnknown *unk)
{
    IWbemClassObject *obj;

    if (!unk)
    {
        lua_pushnil(L);
        return;
    }
    if (FAILED(IUnknown_QueryInterface(unk, &IID_IWbemClassObject, (void **)&obj)))
    {
        luaL_error(L, "unsupported object in a VARIANT (not an IWbemClassObject)");
        return;
    }
    object_push(L, obj);
    IWbemClassObject_Release(obj);
}

/* An integer carrier of an unsigned CIM type is read as unsigned: WMI sends
 * uint32 as VT_I4 and uint16 or char16 may come as VT_I2. */
static lua_Integer variant_integer(LONGLONG v, CIMTYPE type)
{
    switch (type)
    {
    case CIM_UINT8: return (BYTE)v;
    case CIM_UINT16:
    case CIM_CHAR16: return (USHORT)v;
    case CIM_UINT32: return (ULONG)v;
    default: return (lua_Integer)v;
    }
}

/* The size of an array element of type VT, 0 for a type no array of ours holds. */
static UINT variant_element_size(VARTYPE vt)
{
    switch (vt)
    {
    case VT_I1: case VT_UI1: return 1;
    case VT_BOOL: case VT_I2: case VT_UI2: return 2;
    case VT_I4: case VT_UI4: case VT_INT: case VT_UINT: case VT_R4: return 4;
    case VT_I8: case VT_UI8: case VT_R8: return 8;
    case VT_BSTR: return sizeof(BSTR);
    case VT_UNKNOWN: case VT_DISPATCH: return sizeof(IUnknown *);
    case VT_VARIANT: return sizeof(VARIANT);
    default: return 0;
    }
}

/* A SAFEARRAY's elements are read in place: the VARIANT's owner keeps the array
 * alive meanwhile, and with no lock taken a Lua error half-way (out of memory)
 * leaves nothing to undo. */
static void variant_push_array(lua_State *L, const SAFEARRAY *sa, VARTYPE vt, CIMTYPE type, int depth)
{
    UINT size = variant_element_size(vt);
    const BYTE *data;
    VARTYPE own;
    LONG i, n;

    if (!sa)
    {
        lua_pushnil(L);
        return;
    }
    if (sa->cDims != 1)
        luaL_error(L, "unsupported %d-dimensional array in a VARIANT", (int)sa->cDims);
    if (!size) variant_unsupported(L, vt | VT_ARRAY);
    luaL_checkstack(L, 3, "nested arrays");
    data = sa->pvData;
    /* Elements are read as VT says: the array must hold N of that size... */
    if (sa->cbElements != size)
        luaL_error(L, "malformed array in a VARIANT (%d-byte elements where %d-byte ones are due)",
                   (int)sa->cbElements, (int)size);
    /* ...and of that type: on x64 BSTR, IUnknown *, LONGLONG and double are all 8
     * bytes, so only the array's own type tells numbers from pointers. Arrays of
     * pointers must say theirs (SafeArrayCreate's always do). */
    if (FAILED(SafeArrayGetVartype((SAFEARRAY *)sa, &own)) ? vt == VT_BSTR || vt == VT_UNKNOWN || vt == VT_DISPATCH
                                                            || vt == VT_VARIANT
                                                          : own != vt && !(own == VT_INT && vt == VT_I4)
                                                            && !(own == VT_UINT && vt == VT_UI4))
    {
        char buf[8];
        snprintf(buf, sizeof(buf), "%x", (unsigned)vt);
        luaL_error(L, "malformed array in a VARIANT (its elements are not of the VARIANT's type 0x%s)", buf);
    }
    /* A count that fits no Lua table (nor memory) is a lie. */
    if (sa->rgsabound[0].cElements > (ULONG)INT_MAX / size)
        luaL_error(L, "malformed array in a VARIANT (%I elements)", (lua_Integer)sa->rgsabound[0].cElements);
    n = (LONG)sa->rgsabound[0].cElements;
    if (n && !data) luaL_error(L, "malformed array in a VARIANT (%d elements, no data)", (int)n);
    lua_createtable(L, n, 0);
    for (i = 0; i < n; i++)
    {
        variant_push_value(L, vt, data + (size_t)i * size, type, depth);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

/* Pushes the value of carrier type VT stored at P (a VARIANT's union, a BYREF
 * target or an array element). */
static void variant_push_value(lua_State *L, VARTYPE vt, const void *p, CIMTYPE type, int depth)
{
    switch (vt)
    {
    case VT_EMPTY:
    case VT_NULL: lua_pushnil(L); break;
    case VT_BSTR: variant_push_bstr(L, *(const BSTR *)p, type); break;
    case VT_BOOL: lua_pushboolean(L, *(const VARIANT_BOOL *)p != VARIANT_FALSE); break;
    case VT_I1: lua_pushinteger(L, variant_integer(*(const signed char *)p, type)); break;
    case VT_UI1: lua_pushinteger(L, *(const BYTE *)p); break;
    case VT_I2: lua_pushinteger(L, variant_integer(*(const SHORT *)p, type)); break;
    case VT_UI2: lua_pushinteger(L, *(const USHORT *)p); break;
    case VT_I4:
    case VT_INT: lua_pushinteger(L, variant_integer(*(const LONG *)p, type)); break;
    case VT_UI4:
    case VT_UINT: lua_pushinteger(L, *(const ULONG *)p); break;
    case VT_I8: lua_pushinteger(L, (lua_Integer)*(const LONGLONG *)p); break;
    case VT_UI8: lua_pushinteger(L, (lua_Integer)*(const ULONGLONG *)p); break;
    case VT_R4: lua_pushnumber(L, *(const float *)p); break;
    case VT_R8: lua_pushnumber(L, *(const double *)p); break;
    case VT_UNKNOWN:
    case VT_DISPATCH: variant_push_object(L, *(IUnknown *const *)p); break;
    /* only as an element or BYREF target */
    case VT_VARIANT: variant_push_nested(L, p, type, depth + 1); break;
    default: variant_unsupported(L, vt);
    }
}

static void variant_push_nested(lua_State *L, const VARIANT *v, CIMTYPE type, int depth)
{
    VARTYPE vt = V_VT(v);
    const void *p = &V_UI1(v);

    if (depth > VARIANT_MAX_DEPTH)
        luaL_error(L, "unsupported VARIANT (VARIANTs nested more than %d deep)", VARIANT_MAX_DEPTH);
    if (vt & VT_BYREF)
    {
        if (!(p = V_BYREF(v)))
        {
            lua_pushnil(L);
            return;
        }
        vt &= ~VT_BYREF;
    }
    else if (vt == VT_VARIANT) /* a VARIANT never holds one by value */
        variant_unsupported(L, vt);
    if (vt & VT_ARRAY)
        variant_push_array(L, *(SAFEARRAY *const *)p, vt & VT_TYPEMASK, type & ~CIM_FLAG_ARRAY, depth);
    else
        variant_push_value(L, vt, p, type & ~CIM_FLAG_ARRAY, depth);
}

void variant_push(lua_State *L, const VARIANT *v, CIMTYPE type)
{
    variant_push_nested(L, v, type, 0);
}

/* --- Lua -> VARIANT --------------------------------------------------------------
 * Each converter checks the value at IDX against C and, when OUT is not NULL,
 * fills OUT; with OUT NULL it only checks, so arrays are validated before any
 * memory is allocated. */

static const char *variant_to_integer(lua_State *L, int idx, const struct variant_cim *c,
                                      lua_Integer *i)
{
    int t = variant_lua_type(L, idx), isnum;
    size_t len;
    const char *s;

    /* sint64 and uint64 accept every decimal string in their range, uint64 up
     * to 2^64-1, which lua_tointegerx would turn into a float. A negative Lua
     * integer written to a uint64 wraps, the way reading one gave it. */
    if (t == LUA_TSTRING && (c->type == CIM_SINT64 || c->type == CIM_UINT64))
    {
        s = lua_tolstring(L, idx, &len);
        switch (variant_parse_decimal(s, len, c->type == CIM_UINT64, i))
        {
        case VARIANT_DECIMAL_OK: return NULL;
        case VARIANT_DECIMAL_RANGE: return c->range;
        case VARIANT_DECIMAL_BAD: break;
        }
    }
    *i = lua_tointegerx(L, idx, &isnum);
    if (!isnum)
    {
        if (t == LUA_TNUMBER || (t == LUA_TSTRING && lua_isnumber(L, idx))) return variant_not_integer;
        return c->got[t];
    }
    if (*i < c->min || *i > c->max) return c->range;
    return NULL;
}

/* A number given for a string property reads as Lua's tostring would show it,
 * formatted here because lua_tolstring would change the value in place. */
static const char *variant_number_bstr(lua_State *L, int idx, VARIANT *out)
{
    char buf[64];

    if (lua_isinteger(L, idx))
        V_BSTR(out) = variant_decimal_bstr(lua_tointeger(L, idx), FALSE);
    else
    {
        snprintf(buf, sizeof(buf), "%.14g", (double)lua_tonumber(L, idx));
        if (buf[strspn(buf, "-0123456789")] == 0) strcat(buf, ".0");
        str_to_bstr(buf, strlen(buf), &V_BSTR(out));
    }
    if (!V_BSTR(out)) return variant_no_memory;
    V_VT(out) = VT_BSTR;
    return NULL;
}

static const char *variant_string(lua_State *L, int idx, const struct variant_cim *c, VARIANT *out)
{
    int t = variant_lua_type(L, idx);
    const char *s;
    size_t len;

    if (t == LUA_TNUMBER) return out ? variant_number_bstr(L, idx, out) : NULL;
    if (t != LUA_TSTRING) return c->got[t];
    s = lua_tolstring(L, idx, &len);
    if (!out) return str_is_utf8(s, len) ? NULL : variant_bad_utf8;
    switch (str_to_bstr(s, len, &V_BSTR(out)))
    {
    case S_OK: break;
    case E_INVALIDARG: return variant_bad_utf8;
    default: return variant_no_memory;
    }
    V_VT(out) = VT_BSTR;
    return NULL;
}

static const char *variant_object(lua_State *L, int idx, const struct variant_cim *c, VARIANT *out)
{
    IWbemClassObject *obj = object_test(L, idx);

    if (!obj) return luaL_testudata(L, idx, WMI_OBJECT) ? variant_closed : c->got[variant_lua_type(L, idx)];
    if (out)
    {
        IWbemClassObject_AddRef(obj);
        V_VT(out) = VT_UNKNOWN;
        V_UNKNOWN(out) = (IUnknown *)obj;
    }
    return NULL;
}

static const char *variant_scalar(lua_State *L, int idx, const struct variant_cim *c, VARIANT *out)
{
    const char *why;
    lua_Integer i;
    lua_Number n;
    int isnum;

    switch (c->type)
    {
    case CIM_STRING:
    case CIM_DATETIME:
    case CIM_REFERENCE:
        return variant_string(L, idx, c, out);
    case CIM_OBJECT:
        return variant_object(L, idx, c, out);
    case CIM_BOOLEAN:
        if (!lua_isboolean(L, idx)) return c->got[variant_lua_type(L, idx)];
        if (out)
        {
            V_VT(out) = VT_BOOL;
            V_BOOL(out) = lua_toboolean(L, idx) ? VARIANT_TRUE : VARIANT_FALSE;
        }
        return NULL;
    case CIM_REAL32:
    case CIM_REAL64:
        n = lua_tonumberx(L, idx, &isnum);
        if (!isnum) return c->got[variant_lua_type(L, idx)];
        if (c->type == CIM_REAL32 && (n > FLT_MAX || n < -FLT_MAX) && n - n == 0) return c->range;
        if (out)
        {
            V_VT(out) = c->vt;
            if (c->vt == VT_R4) V_R4(out) = (float)n;
            else V_R8(out) = (double)n;
        }
        return NULL;
    default: /* the integers */
        if ((why = variant_to_integer(L, idx, c, &i)) || !out) return why;
        switch (c->vt)
        {
        case VT_UI1: V_UI1(out) = (BYTE)i; break;
        case VT_I2: V_I2(out) = (SHORT)i; break;       /* char16 keeps its bit pattern */
        case VT_I4: V_I4(out) = (LONG)i; break;        /* so does uint32: 0x80000001 arrives intact */
        case VT_BSTR:
            if (!(V_BSTR(out) = variant_decimal_bstr(i, c->type == CIM_UINT64))) return variant_no_memory;
            break;
        }
        V_VT(out) = c->vt;
        return NULL;
    }
}

/* The CIM type a Lua value suggests when the property's is unknown. */
static const struct variant_cim *variant_infer(lua_State *L, int idx)
{
    lua_Integer i;

    switch (lua_type(L, idx))
    {
    case LUA_TNUMBER:
        if (!lua_isinteger(L, idx)) return variant_find(CIM_REAL64);
        i = lua_tointeger(L, idx);
        return variant_find(i >= INT_MIN && i <= INT_MAX ? CIM_SINT32 : CIM_SINT64);
    case LUA_TSTRING: return variant_find(CIM_STRING);
    case LUA_TBOOLEAN: return variant_find(CIM_BOOLEAN);
    case LUA_TUSERDATA: return luaL_testudata(L, idx, WMI_OBJECT) ? variant_find(CIM_OBJECT) : NULL;
    default: return NULL;
    }
}

/* The element type of an untyped array of N elements: its first element's,
 * widened when a number type does not hold every element (1, 2.5 -> real64;
 * 1, 2^40 -> sint64). */
static const struct variant_cim *variant_infer_array(lua_State *L, int idx, lua_Integer n)
{
    const struct variant_cim *c, *widest;
    lua_Integer i;

    lua_rawgeti(L, idx, 1);
    widest = variant_infer(L, -1);
    lua_pop(L, 1);
    if (!widest || (widest->type != CIM_SINT32 && widest->type != CIM_SINT64)) return widest;
    for (i = 2; i <= n; i++)
    {
        lua_rawgeti(L, idx, i);
        c = lua_type(L, -1) == LUA_TNUMBER ? variant_infer(L, -1) : NULL;
        lua_pop(L, 1);
        if (c && (c->type == CIM_REAL64 || (c->type == CIM_SINT64 && widest->type == CIM_SINT32)))
            widest = c;
    }
    return widest;
}

static const char *variant_array(lua_State *L, int idx, CIMTYPE elem, VARIANT *out)
{
    const struct variant_cim *c = variant_find(elem);
    const char *why = NULL;
    lua_Integer n, i;
    SAFEARRAY *sa;
    BYTE *data;
    UINT size;
    VARIANT v;

    if (!lua_istable(L, idx))
        return (c ? c->array_got : variant_table_got)[variant_lua_type(L, idx)];
    n = (lua_Integer)lua_rawlen(L, idx);
    if (n > LONG_MAX || !lua_checkstack(L, 2)) return variant_no_memory;
    if (!c)
    {
        /* Nothing to infer an element type from: NULL is what WMI itself hands
         * out for an empty array of unknown type. */
        if (!n)
        {
            V_VT(out) = VT_NULL;
            return NULL;
        }
        if (!(c = variant_infer_array(L, idx, n)))
        {
            lua_rawgeti(L, idx, 1);
            why = variant_element_got[variant_lua_type(L, -1)];
            lua_pop(L, 1);
            return why;
        }
    }
    for (i = 1; i <= n && !why; i++)
    {
        lua_rawgeti(L, idx, i);
        why = variant_scalar(L, -1, c, NULL);
        lua_pop(L, 1);
    }
    if (why) return why;

    if (!(sa = SafeArrayCreateVector(c->vt, 0, (ULONG)n))) return variant_no_memory;
    if (FAILED(SafeArrayAccessData(sa, (void **)&data)))
    {
        SafeArrayDestroy(sa);
        return variant_no_memory;
    }
    size = SafeArrayGetElemsize(sa);
    for (i = 0; i < n && !why; i++)
    {
        lua_rawgeti(L, idx, i + 1);
        why = variant_scalar(L, -1, c, &v);
        lua_pop(L, 1);
        /* Moves what V owns (a BSTR, an object reference) into the array, whose
         * SafeArrayDestroy then frees it. */
        if (!why) memcpy(data + (size_t)i * size, &V_UI1(&v), size);
    }
    SafeArrayUnaccessData(sa);
    if (why)
    {
        SafeArrayDestroy(sa);
        return why;
    }
    V_VT(out) = VT_ARRAY | c->vt;
    V_ARRAY(out) = sa;
    return NULL;
}

const char *variant_from_lua(lua_State *L, int idx, CIMTYPE type, VARIANT *out)
{
    const struct variant_cim *c;

    VariantInit(out);
    idx = lua_absindex(L, idx);
    if (lua_isnoneornil(L, idx))
    {
        V_VT(out) = VT_NULL;
        return NULL;
    }
    if (type & CIM_FLAG_ARRAY) return variant_array(L, idx, type & ~CIM_FLAG_ARRAY, out);
    if (type == VARIANT_PARAM) type = CIM_EMPTY;
    if (!(c = variant_find(type)))
    {
        /* CIM_EMPTY, or a type this module does not know: go by the Lua value. */
        if (lua_istable(L, idx)) return variant_array(L, idx, CIM_EMPTY, out);
        if (!(c = variant_infer(L, idx))) return variant_any_got[variant_lua_type(L, idx)];
    }
    return variant_scalar(L, idx, c, out);
}

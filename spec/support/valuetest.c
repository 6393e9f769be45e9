/*
 * Test-only Lua module "valuetest": drives the module's VARIANT conversions
 * (src/variant.c, and src/object.c's property reads and writes) with every CIM
 * type and with VARIANTs crafted as WMI could send them.
 *
 * Why a test-only DLL: Wine 8's WMI has no class that round-trips sint64,
 * uint64, real32/64, boolean, char16, object or NULL (its built-in classes are
 * read-only, its method parameters take only string, sint32, uint32 and
 * uint8[]), none holds an embedded object, and it never sends the odd VARIANTs
 * (VT_CY, 2-dimensional arrays, foreign interfaces) whose handling we promise.
 *
 * The DLL is built from this file and ALL the .c files of src/ (spec/support/valuetest.mk):
 * it holds its own copy of the module, with its own wmi_stats, and with its own
 * metatable names ("valuetest.Object"...; spec/support/valuetest.h, force-included)
 * so that it never touches the real wmi.core loaded in the same Lua state. Its
 * objects are the copy's wmi.Object: same code, other name. Only luaopen_valuetest
 * is exported; the copy's luaopen_wmi_core is never called.
 *
 *   valuetest.roundtrip(value, cimtype [, read_as]) --> value, vartype | nil, reason
 *       Lua -> VARIANT (variant_from_lua with CIMTYPE) -> Lua (variant_push with
 *       READ_AS, by default CIMTYPE); VARTYPE is the carrier's V_VT.
 *   valuetest.push(kind [, cimtype [, n]]) --> value (or the module's error)
 *       pushes a crafted VARIANT (see valuetest_kinds) read as CIMTYPE (each kind
 *       has a default); N sizes the kinds that take one.
 *   valuetest.object(path) --> wmi.Object (the copy's) | nil, message, hresult
 *       IWbemServices::GetObject in root\cimv2: a real IWbemClassObject.
 *   valuetest.fake() --> wmi.Object (the copy's) over a fake IWbemClassObject:
 *       one property per CIM type named as the type ("uint64", "uint64[]"), which
 *       takes in Put only WMI's documented carrier of its type (else
 *       WBEM_E_TYPE_MISMATCH) and gives back what it was given; and one read-only
 *       property per crafted kind, whose Get hands out that kind's VARIANT.
 *   valuetest.cimtype(name) --> CIMTYPE, variant_cimtype_name(CIMTYPE)
 *   valuetest.stats() --> { objects = the copy's live wmi.Objects,
 *       fakes = live fake objects, probes = live foreign IUnknowns }
 *   valuetest.method_enums() --> method enumerations of fakes begun and not ended
 *   valuetest.credential(name, user, password) stores a generic credential (CredWriteW);
 *       valuetest.credential(name) deletes it (for wmiq --credential)
 *   valuetest.state(code [, apartment]) --> true, results... | false, message
 *       runs the Lua chunk CODE in a new Lua state (standard libraries, the
 *       caller's package.path and cpath: `require "wmi"` loads the real module),
 *       closed at the end; results come back as strings (tostring). Its allocator
 *       fails on demand: in the state, oom(n) makes every allocation that grows
 *       memory fail after n more succeed, oom(false) stops that, and oom() returns
 *       how many failed. APARTMENT "sta" or "mta": the state runs on a new thread
 *       whose COM apartment is that one (else on the caller's thread).
 *
 * CIM type names: "sint8", "uint8", ..., "object" as in MOF, "[]" appended for an
 * array (CIM_FLAG_ARRAY), "" for none (CIM_EMPTY, 0).
 */
#include <limits.h>
#include <string.h>

#include "valuetest.h"
#include <lualib.h>
#include <wincred.h>

#define VALUETEST_BOX "valuetest.VARIANT"
#define VALUETEST_FAKE_CLASS L"ValuetestFake"

/* --- CIM types ----------------------------------------------------------------- */

/* Each CIM type with the VARIANT type WMI documents for it ("Numbers" and
 * "CIM types" in the WMI docs): the fake object takes nothing else. */
static const struct
{
    const char *name;
    CIMTYPE type;
    VARTYPE carrier;
} valuetest_cims[] =
{
    { "sint8", CIM_SINT8, VT_I2 },
    { "uint8", CIM_UINT8, VT_UI1 },
    { "sint16", CIM_SINT16, VT_I2 },
    { "uint16", CIM_UINT16, VT_I4 },
    { "sint32", CIM_SINT32, VT_I4 },
    { "uint32", CIM_UINT32, VT_I4 },
    { "sint64", CIM_SINT64, VT_BSTR },
    { "uint64", CIM_UINT64, VT_BSTR },
    { "real32", CIM_REAL32, VT_R4 },
    { "real64", CIM_REAL64, VT_R8 },
    { "boolean", CIM_BOOLEAN, VT_BOOL },
    { "string", CIM_STRING, VT_BSTR },
    { "datetime", CIM_DATETIME, VT_BSTR },
    { "reference", CIM_REFERENCE, VT_BSTR },
    { "char16", CIM_CHAR16, VT_I2 },
    { "object", CIM_OBJECT, VT_UNKNOWN },
};
#define VALUETEST_NCIMS ((int)ARRAYSIZE(valuetest_cims))

/* The CIMTYPE named NAME, or -1. */
static LONG valuetest_parse_cim(const char *name)
{
    size_t len = strlen(name), base = len;
    CIMTYPE flags = 0;
    int i;

    if (!len) return CIM_EMPTY;
    if (len > 2 && !strcmp(name + len - 2, "[]"))
    {
        base = len - 2;
        flags = CIM_FLAG_ARRAY;
    }
    for (i = 0; i < VALUETEST_NCIMS; i++)
        if (strlen(valuetest_cims[i].name) == base && !strncmp(valuetest_cims[i].name, name, base))
            return valuetest_cims[i].type | flags;
    return -1;
}

static CIMTYPE valuetest_check_cim(lua_State *L, int arg)
{
    LONG type = valuetest_parse_cim(luaL_checkstring(L, arg));
    if (type < 0) luaL_argerror(L, arg, lua_pushfstring(L, "unknown CIM type '%s'", lua_tostring(L, arg)));
    return (CIMTYPE)type;
}

/* --- a VARIANT owned by the Lua stack -------------------------------------------- */

/* Pushes a to-be-closed userdata holding a VT_EMPTY VARIANT: whatever it holds
 * is cleared when the C function returns or raises (variant_push raises on a
 * VARIANT it cannot convert). */
static VARIANT *valuetest_box(lua_State *L)
{
    VARIANT *v = lua_newuserdatauv(L, sizeof(*v), 0);

    VariantInit(v);
    luaL_setmetatable(L, VALUETEST_BOX);
    lua_toclose(L, -1);
    return v;
}

static int valuetest_box_clear(lua_State *L)
{
    VariantClear(luaL_checkudata(L, 1, VALUETEST_BOX));
    return 0;
}

/* --- a foreign COM object (an IUnknown that is no IWbemClassObject) ------------- */

static LONG valuetest_probes;

struct probe
{
    IUnknown IUnknown_iface;
    LONG refs;
};

static HRESULT STDMETHODCALLTYPE probe_QueryInterface(IUnknown *iface, REFIID riid, void **out)
{
    if (!IsEqualIID(riid, &IID_IUnknown))
    {
        *out = NULL;
        return E_NOINTERFACE;
    }
    *out = iface;
    IUnknown_AddRef(iface);
    return S_OK;
}

static ULONG STDMETHODCALLTYPE probe_AddRef(IUnknown *iface)
{
    struct probe *p = CONTAINING_RECORD(iface, struct probe, IUnknown_iface);
    return (ULONG)InterlockedIncrement(&p->refs);
}

static ULONG STDMETHODCALLTYPE probe_Release(IUnknown *iface)
{
    struct probe *p = CONTAINING_RECORD(iface, struct probe, IUnknown_iface);
    LONG refs = InterlockedDecrement(&p->refs);

    if (!refs)
    {
        HeapFree(GetProcessHeap(), 0, p);
        InterlockedDecrement(&valuetest_probes);
    }
    return (ULONG)refs;
}

static IUnknownVtbl probe_vtbl = { probe_QueryInterface, probe_AddRef, probe_Release };

static IUnknown *probe_new(void)
{
    struct probe *p = HeapAlloc(GetProcessHeap(), 0, sizeof(*p));

    if (!p) return NULL;
    p->IUnknown_iface.lpVtbl = &probe_vtbl;
    p->refs = 1;
    InterlockedIncrement(&valuetest_probes);
    return &p->IUnknown_iface;
}

/* --- crafted VARIANTs -------------------------------------------------------------- */

/* The kinds of VARIANT valuetest.push and the fake object's read-only properties
 * hand out, each with the CIM type it is read as by default. */
enum kind
{
    K_NULL_BSTR, K_NUL_IN_BSTR, K_LONE_SURROGATE, K_VT_EMPTY, K_VT_NULL, K_EMPTY_ARRAY_NULL,
    K_EMPTY_SAFEARRAY, K_NULL_SAFEARRAY, K_NULL_BSTR_ARRAY, K_UINT64_MAX, K_UINT64_OVER,
    K_SINT64_MIN, K_UINT64_ARRAY, K_UINT32_MAX, K_UINT32_ARRAY, K_UINT16_I2, K_CHAR16_I2, K_I1, K_UI1,
    K_I8, K_UI8, K_UI4, K_BOOL_ONE, K_R4, K_BYREF_I4, K_BYREF_NULL, K_VARIANT_ARRAY, K_NESTED_ARRAY,
    K_NESTED, K_NULL_UNKNOWN, K_NULL_DISPATCH, K_VARIANT_BY_VALUE, K_CY, K_DATE, K_DECIMAL,
    K_RECORD, K_ERROR, K_CY_ARRAY, K_MATRIX, K_NOT_WBEM, K_NOT_WBEM_ARRAY, K_BYREF_LOOP,
    K_ELEMSIZE_MISMATCH, K_NO_DATA,
};

static const struct
{
    const char *name;
    enum kind kind;
    CIMTYPE type;
} valuetest_kinds[] =
{
    { "null_bstr", K_NULL_BSTR, CIM_STRING },               /* VT_BSTR holding NULL */
    { "nul_in_bstr", K_NUL_IN_BSTR, CIM_STRING },           /* "ab\0cd" */
    { "lone_surrogate", K_LONE_SURROGATE, CIM_STRING },     /* "a" U+D800 "b" */
    { "vt_empty", K_VT_EMPTY, CIM_EMPTY },
    { "vt_null", K_VT_NULL, CIM_STRING },
    { "empty_array_null", K_EMPTY_ARRAY_NULL, CIM_STRING | CIM_FLAG_ARRAY },  /* VT_NULL */
    { "empty_safearray", K_EMPTY_SAFEARRAY, CIM_STRING | CIM_FLAG_ARRAY },    /* 0 elements */
    { "null_safearray", K_NULL_SAFEARRAY, CIM_STRING | CIM_FLAG_ARRAY },      /* VT_ARRAY|VT_BSTR, NULL parray */
    { "null_bstr_array", K_NULL_BSTR_ARRAY, CIM_STRING | CIM_FLAG_ARRAY },    /* { NULL, "x" } */
    { "uint64_max", K_UINT64_MAX, CIM_UINT64 },             /* "18446744073709551615" */
    { "uint64_over", K_UINT64_OVER, CIM_UINT64 },           /* "18446744073709551616" */
    { "sint64_min", K_SINT64_MIN, CIM_SINT64 },             /* "-9223372036854775808" */
    { "uint64_array", K_UINT64_ARRAY, CIM_UINT64 | CIM_FLAG_ARRAY }, /* { 2^64-1, 2^63, 0 } as BSTRs */
    { "uint32_max", K_UINT32_MAX, CIM_UINT32 },             /* VT_I4 -1 */
    { "uint32_array", K_UINT32_ARRAY, CIM_UINT32 | CIM_FLAG_ARRAY }, /* VT_I4 { -1, 0x80000001 } */
    { "uint16_i2", K_UINT16_I2, CIM_UINT16 },               /* VT_I2 -1 */
    { "char16_i2", K_CHAR16_I2, CIM_CHAR16 },               /* VT_I2 -3 (U+FFFD) */
    { "i1", K_I1, CIM_SINT8 },                              /* VT_I1 -1 */
    { "ui1", K_UI1, CIM_UINT8 },                            /* VT_UI1 255 */
    { "i8", K_I8, CIM_SINT64 },                             /* VT_I8 -2^63 */
    { "ui8", K_UI8, CIM_UINT64 },                           /* VT_UI8 2^64-1 */
    { "ui4", K_UI4, CIM_UINT32 },                           /* VT_UI4 2^32-1 */
    { "bool_one", K_BOOL_ONE, CIM_BOOLEAN },                /* VT_BOOL 1, not VARIANT_TRUE */
    { "r4", K_R4, CIM_REAL32 },                             /* VT_R4 0.1f */
    { "byref_i4", K_BYREF_I4, CIM_SINT32 },                 /* VT_BYREF|VT_I4 -> 42 */
    { "byref_null", K_BYREF_NULL, CIM_STRING },             /* VT_BYREF|VT_BSTR, NULL pointer */
    { "variant_array", K_VARIANT_ARRAY, CIM_EMPTY },        /* VT_VARIANT { 1, "x", NULL, true } */
    { "nested_array", K_NESTED_ARRAY, CIM_EMPTY },          /* VT_VARIANT { VT_I4 { 1, 2 }, 3 } */
    { "nested", K_NESTED, CIM_EMPTY },                      /* 7, in N VT_VARIANT arrays of one */
    { "null_unknown", K_NULL_UNKNOWN, CIM_OBJECT },         /* VT_UNKNOWN NULL */
    { "null_dispatch", K_NULL_DISPATCH, CIM_OBJECT },       /* VT_DISPATCH NULL */
    { "variant_by_value", K_VARIANT_BY_VALUE, CIM_EMPTY },  /* V_VT VT_VARIANT, never valid */
    { "cy", K_CY, CIM_EMPTY },
    { "unknown_vt", K_RECORD, CIM_EMPTY },                  /* the same as "record" */
    { "date", K_DATE, CIM_DATETIME },
    { "decimal", K_DECIMAL, CIM_EMPTY },
    { "record", K_RECORD, CIM_EMPTY },                      /* VT_RECORD with no record */
    { "error", K_ERROR, CIM_EMPTY },                        /* VT_ERROR */
    { "cy_array", K_CY_ARRAY, CIM_EMPTY },                  /* VT_ARRAY|VT_CY */
    { "matrix", K_MATRIX, CIM_SINT32 | CIM_FLAG_ARRAY },    /* 2 x 2 VT_I4 */
    { "not_wbem", K_NOT_WBEM, CIM_OBJECT },                 /* VT_UNKNOWN, no IWbemClassObject */
    { "not_wbem_array", K_NOT_WBEM_ARRAY, CIM_OBJECT | CIM_FLAG_ARRAY }, /* { NULL, that } */
    { "byref_loop", K_BYREF_LOOP, CIM_EMPTY },              /* VT_BYREF|VT_VARIANT referring to itself */
    { "elemsize_mismatch", K_ELEMSIZE_MISMATCH, CIM_SINT64 | CIM_FLAG_ARRAY }, /* VT_I8 over a VT_I4 array */
    { "no_data", K_NO_DATA, CIM_SINT32 | CIM_FLAG_ARRAY },  /* 3 elements, no data */
};
#define VALUETEST_NKINDS ((int)ARRAYSIZE(valuetest_kinds))

static int valuetest_find_kind(const WCHAR *wname, const char *name)
{
    WCHAR buf[64];
    int i;

    for (i = 0; i < VALUETEST_NKINDS; i++)
    {
        if (name && !strcmp(valuetest_kinds[i].name, name)) return i;
        if (wname && MultiByteToWideChar(CP_UTF8, 0, valuetest_kinds[i].name, -1, buf, ARRAYSIZE(buf)) &&
            !lstrcmpiW(buf, wname))
            return i;
    }
    return -1;
}

/* A vector of N elements of type VT in V; *DATA is its memory (the array is
 * ours alone, so it is filled without a lock). */
static HRESULT valuetest_vector(VARIANT *v, VARTYPE vt, ULONG n, void *data)
{
    SAFEARRAY *sa = SafeArrayCreateVector(vt, 0, n);

    if (!sa) return E_OUTOFMEMORY;
    V_VT(v) = VT_ARRAY | vt;
    V_ARRAY(v) = sa;
    *(void **)data = sa->pvData;
    return S_OK;
}

static HRESULT valuetest_bstr(BSTR *out, const WCHAR *s, UINT len)
{
    return (*out = SysAllocStringLen(s, len)) ? S_OK : E_OUTOFMEMORY;
}
#define BSTR_LIT(out, s) valuetest_bstr(out, s, ARRAYSIZE(s) - 1)

/* A VARIANT referring to itself by reference: it never changes, so it may live
 * in static storage (clearing a VT_BYREF frees nothing). */
static VARIANT valuetest_loop;

/* Fills V (VT_EMPTY) with KIND; on failure V may hold part of it: clear it. */
static HRESULT valuetest_craft(enum kind kind, lua_Integer n, VARIANT *v)
{
    static LONG forty_two = 42;
    SAFEARRAYBOUND bounds[2] = { { 2, 0 }, { 2, 0 } };
    IUnknown **unks;
    VARIANT *vars;
    SAFEARRAY *sa;
    LONG *i4s;
    BSTR *bstrs;
    HRESULT hr;

    switch (kind)
    {
    case K_NULL_BSTR:
        V_VT(v) = VT_BSTR;
        V_BSTR(v) = NULL;
        return S_OK;
    case K_NUL_IN_BSTR:
        V_VT(v) = VT_BSTR;
        return valuetest_bstr(&V_BSTR(v), L"ab\0cd", 5);
    case K_LONE_SURROGATE:
    {
        static const WCHAR s[] = { 'a', 0xd800, 'b', 0 };
        V_VT(v) = VT_BSTR;
        return BSTR_LIT(&V_BSTR(v), s);
    }
    case K_VT_EMPTY:
        return S_OK;
    case K_VT_NULL:
    case K_EMPTY_ARRAY_NULL:
        V_VT(v) = VT_NULL;
        return S_OK;
    case K_EMPTY_SAFEARRAY:
        return valuetest_vector(v, VT_BSTR, 0, &bstrs);
    case K_NULL_SAFEARRAY:
        V_VT(v) = VT_ARRAY | VT_BSTR;
        V_ARRAY(v) = NULL;
        return S_OK;
    case K_NULL_BSTR_ARRAY:
        if (FAILED(hr = valuetest_vector(v, VT_BSTR, 2, &bstrs))) return hr;
        return BSTR_LIT(&bstrs[1], L"x");
    case K_UINT64_MAX:
        V_VT(v) = VT_BSTR;
        return BSTR_LIT(&V_BSTR(v), L"18446744073709551615");
    case K_UINT64_OVER:
        V_VT(v) = VT_BSTR;
        return BSTR_LIT(&V_BSTR(v), L"18446744073709551616");
    case K_SINT64_MIN:
        V_VT(v) = VT_BSTR;
        return BSTR_LIT(&V_BSTR(v), L"-9223372036854775808");
    case K_UINT64_ARRAY:
        if (FAILED(hr = valuetest_vector(v, VT_BSTR, 3, &bstrs))) return hr;
        if (FAILED(hr = BSTR_LIT(&bstrs[0], L"18446744073709551615"))) return hr;
        if (FAILED(hr = BSTR_LIT(&bstrs[1], L"9223372036854775808"))) return hr;
        return BSTR_LIT(&bstrs[2], L"0");
    case K_UINT32_MAX:
        V_VT(v) = VT_I4;
        V_I4(v) = -1;
        return S_OK;
    case K_UINT32_ARRAY:
        if (FAILED(hr = valuetest_vector(v, VT_I4, 2, &i4s))) return hr;
        i4s[0] = -1;
        i4s[1] = (LONG)0x80000001u;
        return S_OK;
    case K_UINT16_I2:
        V_VT(v) = VT_I2;
        V_I2(v) = -1;
        return S_OK;
    case K_CHAR16_I2:
        V_VT(v) = VT_I2;
        V_I2(v) = -3;
        return S_OK;
    case K_I1:
        V_VT(v) = VT_I1;
        V_I1(v) = -1;
        return S_OK;
    case K_UI1:
        V_VT(v) = VT_UI1;
        V_UI1(v) = 255;
        return S_OK;
    case K_I8:
        V_VT(v) = VT_I8;
        V_I8(v) = LLONG_MIN;
        return S_OK;
    case K_UI8:
        V_VT(v) = VT_UI8;
        V_UI8(v) = ULLONG_MAX;
        return S_OK;
    case K_UI4:
        V_VT(v) = VT_UI4;
        V_UI4(v) = 0xffffffffu;
        return S_OK;
    case K_BOOL_ONE:
        V_VT(v) = VT_BOOL;
        V_BOOL(v) = 1;
        return S_OK;
    case K_R4:
        V_VT(v) = VT_R4;
        V_R4(v) = 0.1f;
        return S_OK;
    case K_BYREF_I4:
        V_VT(v) = VT_BYREF | VT_I4;
        V_I4REF(v) = &forty_two;
        return S_OK;
    case K_BYREF_NULL:
        V_VT(v) = VT_BYREF | VT_BSTR;
        V_BSTRREF(v) = NULL;
        return S_OK;
    case K_VARIANT_ARRAY:
        if (FAILED(hr = valuetest_vector(v, VT_VARIANT, 4, &vars))) return hr;
        V_VT(&vars[0]) = VT_I4;
        V_I4(&vars[0]) = 1;
        V_VT(&vars[1]) = VT_BSTR;
        if (FAILED(hr = BSTR_LIT(&V_BSTR(&vars[1]), L"x"))) return hr;
        V_VT(&vars[2]) = VT_NULL;
        V_VT(&vars[3]) = VT_BOOL;
        V_BOOL(&vars[3]) = VARIANT_TRUE;
        return S_OK;
    case K_NESTED_ARRAY:
        if (FAILED(hr = valuetest_vector(v, VT_VARIANT, 2, &vars))) return hr;
        V_VT(&vars[1]) = VT_I4;
        V_I4(&vars[1]) = 3;
        if (FAILED(hr = valuetest_vector(&vars[0], VT_I4, 2, &i4s))) return hr;
        i4s[0] = 1;
        i4s[1] = 2;
        return S_OK;
    case K_NESTED:
        /* Built inside out: V moves into the single element of a new array. */
        V_VT(v) = VT_I4;
        V_I4(v) = 7;
        for (; n > 0; n--)
        {
            if (!(sa = SafeArrayCreateVector(VT_VARIANT, 0, 1))) return E_OUTOFMEMORY;
            memcpy(sa->pvData, v, sizeof(*v));
            V_VT(v) = VT_ARRAY | VT_VARIANT;
            V_ARRAY(v) = sa;
        }
        return S_OK;
    case K_NULL_UNKNOWN:
        V_VT(v) = VT_UNKNOWN;
        V_UNKNOWN(v) = NULL;
        return S_OK;
    case K_NULL_DISPATCH:
        V_VT(v) = VT_DISPATCH;
        V_DISPATCH(v) = NULL;
        return S_OK;
    case K_VARIANT_BY_VALUE:
        V_VT(v) = VT_VARIANT;
        return S_OK;
    case K_CY:
        V_VT(v) = VT_CY;
        V_CY(v).int64 = 12345;
        return S_OK;
    case K_DATE:
        V_VT(v) = VT_DATE;
        V_DATE(v) = 45000.5;
        return S_OK;
    case K_DECIMAL:
        memset(&V_DECIMAL(v), 0, sizeof(V_DECIMAL(v)));
        V_VT(v) = VT_DECIMAL;
        return S_OK;
    case K_RECORD:
        V_VT(v) = VT_RECORD;
        V_RECORD(v) = NULL;
        V_RECORDINFO(v) = NULL;
        return S_OK;
    case K_ERROR:
        V_VT(v) = VT_ERROR;
        V_ERROR(v) = DISP_E_PARAMNOTFOUND;
        return S_OK;
    case K_CY_ARRAY:
    {
        CY *cys;
        if (FAILED(hr = valuetest_vector(v, VT_CY, 1, &cys))) return hr;
        cys[0].int64 = 1;
        return S_OK;
    }
    case K_MATRIX:
        if (!(sa = SafeArrayCreate(VT_I4, 2, bounds))) return E_OUTOFMEMORY;
        V_VT(v) = VT_ARRAY | VT_I4;
        V_ARRAY(v) = sa;
        return S_OK;
    case K_NOT_WBEM:
        V_VT(v) = VT_UNKNOWN;
        return (V_UNKNOWN(v) = probe_new()) ? S_OK : E_OUTOFMEMORY;
    case K_NOT_WBEM_ARRAY:
        if (FAILED(hr = valuetest_vector(v, VT_UNKNOWN, 2, &unks))) return hr;
        return (unks[1] = probe_new()) ? S_OK : E_OUTOFMEMORY;
    case K_BYREF_LOOP:
        V_VT(&valuetest_loop) = VT_BYREF | VT_VARIANT;
        V_VARIANTREF(&valuetest_loop) = &valuetest_loop;
        *v = valuetest_loop;
        return S_OK;
    case K_ELEMSIZE_MISMATCH:
        if (FAILED(hr = valuetest_vector(v, VT_I4, 1, &i4s))) return hr;
        i4s[0] = 1;
        V_VT(v) = VT_ARRAY | VT_I8;   /* the SAFEARRAY still knows its elements are 4 bytes */
        return S_OK;
    case K_NO_DATA:
        /* A descriptor whose data was never allocated. */
        if (FAILED(hr = SafeArrayAllocDescriptorEx(VT_I4, 1, &sa))) return hr;
        sa->cbElements = sizeof(LONG);
        sa->rgsabound[0].cElements = 3;
        sa->rgsabound[0].lLbound = 0;
        V_VT(v) = VT_ARRAY | VT_I4;
        V_ARRAY(v) = sa;
        return S_OK;
    }
    return E_INVALIDARG;
}

/* --- the fake IWbemClassObject ------------------------------------------------------ */

static LONG valuetest_fakes;

struct fake
{
    IWbemClassObject IWbemClassObject_iface;
    LONG refs;
    VARIANT values[2 * ARRAYSIZE(valuetest_cims)];  /* each type, then each type's array */
    WCHAR names[2 * ARRAYSIZE(valuetest_cims)][16];
    int method;                 /* position of the method enumeration, -1 when none runs */
};

static struct fake *fake_from(IWbemClassObject *iface)
{
    return CONTAINING_RECORD(iface, struct fake, IWbemClassObject_iface);
}

static CIMTYPE fake_type(int i)
{
    return valuetest_cims[i % VALUETEST_NCIMS].type | (i < VALUETEST_NCIMS ? 0 : CIM_FLAG_ARRAY);
}

static int fake_find(struct fake *f, const WCHAR *name)
{
    int i;
    for (i = 0; i < 2 * VALUETEST_NCIMS; i++)
        if (!lstrcmpiW(f->names[i], name)) return i;
    return -1;
}

static HRESULT STDMETHODCALLTYPE fake_QueryInterface(IWbemClassObject *iface, REFIID riid, void **out)
{
    if (!IsEqualIID(riid, &IID_IUnknown) && !IsEqualIID(riid, &IID_IWbemClassObject))
    {
        *out = NULL;
        return E_NOINTERFACE;
    }
    *out = iface;
    IWbemClassObject_AddRef(iface);
    return S_OK;
}

static ULONG STDMETHODCALLTYPE fake_AddRef(IWbemClassObject *iface)
{
    return (ULONG)InterlockedIncrement(&fake_from(iface)->refs);
}

static ULONG STDMETHODCALLTYPE fake_Release(IWbemClassObject *iface)
{
    struct fake *f = fake_from(iface);
    LONG refs = InterlockedDecrement(&f->refs);
    int i;

    if (!refs)
    {
        for (i = 0; i < 2 * VALUETEST_NCIMS; i++) VariantClear(&f->values[i]);
        HeapFree(GetProcessHeap(), 0, f);
        InterlockedDecrement(&valuetest_fakes);
    }
    return (ULONG)refs;
}

static HRESULT STDMETHODCALLTYPE fake_Get(IWbemClassObject *iface, LPCWSTR name, LONG flags, VARIANT *value,
                                          CIMTYPE *type, LONG *flavor)
{
    struct fake *f = fake_from(iface);
    CIMTYPE t;
    HRESULT hr = S_OK;
    int i, k = -1;

    (void)flags;
    if (value) VariantInit(value);
    if (flavor) *flavor = WBEM_FLAVOR_ORIGIN_LOCAL;
    if (!name) return WBEM_E_INVALID_PARAMETER;
    if (!lstrcmpiW(name, L"__CLASS"))
    {
        t = CIM_STRING;
        if (value)
        {
            V_VT(value) = VT_BSTR;
            hr = BSTR_LIT(&V_BSTR(value), VALUETEST_FAKE_CLASS);
        }
    }
    else if (!lstrcmpiW(name, L"__GENUS"))
    {
        t = CIM_SINT32;
        if (value)
        {
            V_VT(value) = VT_I4;
            V_I4(value) = WBEM_GENUS_INSTANCE;
        }
    }
    else if ((i = fake_find(f, name)) >= 0)
    {
        t = fake_type(i);
        if (value) hr = VariantCopy(value, &f->values[i]);
    }
    else if ((k = valuetest_find_kind(name, NULL)) >= 0)
    {
        t = valuetest_kinds[k].type;
        if (value) hr = valuetest_craft(valuetest_kinds[k].kind, 3, value);
    }
    else return WBEM_E_NOT_FOUND;
    if (FAILED(hr))
    {
        if (value) VariantClear(value);
        return hr;
    }
    if (type) *type = t;
    return S_OK;
}

/* Takes VT_NULL, or exactly WMI's carrier of the property's type. */
static HRESULT STDMETHODCALLTYPE fake_Put(IWbemClassObject *iface, LPCWSTR name, LONG flags, VARIANT *value,
                                          CIMTYPE type)
{
    struct fake *f = fake_from(iface);
    VARIANT copy;
    VARTYPE want;
    HRESULT hr;
    int i;

    (void)flags;
    (void)type;
    if (!name) return WBEM_E_INVALID_PARAMETER;
    if ((i = fake_find(f, name)) < 0)
        return valuetest_find_kind(name, NULL) >= 0 ? WBEM_E_READ_ONLY : WBEM_E_NOT_FOUND;
    want = valuetest_cims[i % VALUETEST_NCIMS].carrier | (i < VALUETEST_NCIMS ? 0 : VT_ARRAY);
    VariantInit(&copy);
    if (value && V_VT(value) != VT_NULL && V_VT(value) != VT_EMPTY)
    {
        if (V_VT(value) != want) return WBEM_E_TYPE_MISMATCH;
        if (FAILED(hr = VariantCopy(&copy, value))) return hr;
    }
    else V_VT(&copy) = VT_NULL;
    VariantClear(&f->values[i]);
    f->values[i] = copy;
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE fake_GetNames(IWbemClassObject *iface, LPCWSTR qualifier, LONG flags,
                                               VARIANT *qualifier_value, SAFEARRAY **names)
{
    struct fake *f = fake_from(iface);
    BSTR *data;
    SAFEARRAY *sa;
    int i;

    (void)qualifier;
    (void)flags;
    (void)qualifier_value;
    if (!(sa = SafeArrayCreateVector(VT_BSTR, 0, 2 * VALUETEST_NCIMS))) return E_OUTOFMEMORY;
    data = sa->pvData;
    for (i = 0; i < 2 * VALUETEST_NCIMS; i++)
        if (!(data[i] = SysAllocString(f->names[i])))
        {
            SafeArrayDestroy(sa);
            return E_OUTOFMEMORY;
        }
    *names = sa;
    return S_OK;
}

/* The rest: a fake has no qualifiers, methods, text or relatives. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
static HRESULT STDMETHODCALLTYPE fake_GetQualifierSet(IWbemClassObject *iface, IWbemQualifierSet **out)
{ return WBEM_E_NOT_SUPPORTED; }
static HRESULT STDMETHODCALLTYPE fake_Delete(IWbemClassObject *iface, LPCWSTR name)
{ return WBEM_E_NOT_SUPPORTED; }
static HRESULT STDMETHODCALLTYPE fake_BeginEnumeration(IWbemClassObject *iface, LONG flags)
{ return WBEM_E_NOT_SUPPORTED; }
static HRESULT STDMETHODCALLTYPE fake_Next(IWbemClassObject *iface, LONG flags, BSTR *name, VARIANT *value,
                                           CIMTYPE *type, LONG *flavor)
{ return WBEM_E_NOT_SUPPORTED; }
static HRESULT STDMETHODCALLTYPE fake_EndEnumeration(IWbemClassObject *iface)
{ return WBEM_E_NOT_SUPPORTED; }
static HRESULT STDMETHODCALLTYPE fake_GetPropertyQualifierSet(IWbemClassObject *iface, LPCWSTR name,
                                                              IWbemQualifierSet **out)
{ return WBEM_E_NOT_SUPPORTED; }
static HRESULT STDMETHODCALLTYPE fake_Clone(IWbemClassObject *iface, IWbemClassObject **out)
{ return WBEM_E_NOT_SUPPORTED; }
static HRESULT STDMETHODCALLTYPE fake_GetObjectText(IWbemClassObject *iface, LONG flags, BSTR *text)
{ return WBEM_E_NOT_SUPPORTED; }
static HRESULT STDMETHODCALLTYPE fake_SpawnDerivedClass(IWbemClassObject *iface, LONG flags, IWbemClassObject **out)
{ return WBEM_E_NOT_SUPPORTED; }
static HRESULT STDMETHODCALLTYPE fake_SpawnInstance(IWbemClassObject *iface, LONG flags, IWbemClassObject **out)
{ return WBEM_E_NOT_SUPPORTED; }
static HRESULT STDMETHODCALLTYPE fake_CompareTo(IWbemClassObject *iface, LONG flags, IWbemClassObject *other)
{ return WBEM_E_NOT_SUPPORTED; }
static HRESULT STDMETHODCALLTYPE fake_GetPropertyOrigin(IWbemClassObject *iface, LPCWSTR name, BSTR *class)
{ return WBEM_E_NOT_SUPPORTED; }
static HRESULT STDMETHODCALLTYPE fake_InheritsFrom(IWbemClassObject *iface, LPCWSTR ancestor)
{ return WBEM_E_NOT_SUPPORTED; }
static HRESULT STDMETHODCALLTYPE fake_GetMethod(IWbemClassObject *iface, LPCWSTR name, LONG flags,
                                                IWbemClassObject **in, IWbemClassObject **out)
{ return WBEM_E_NOT_SUPPORTED; }
static HRESULT STDMETHODCALLTYPE fake_PutMethod(IWbemClassObject *iface, LPCWSTR name, LONG flags,
                                                IWbemClassObject *in, IWbemClassObject *out)
{ return WBEM_E_NOT_SUPPORTED; }
static HRESULT STDMETHODCALLTYPE fake_DeleteMethod(IWbemClassObject *iface, LPCWSTR name)
{ return WBEM_E_NOT_SUPPORTED; }
/* Methods "First" and "Second"; valuetest.stats().method_enums counts the
 * enumerations begun and not ended. */
static LONG valuetest_method_enums;
static HRESULT STDMETHODCALLTYPE fake_BeginMethodEnumeration(IWbemClassObject *iface, LONG flags)
{
    struct fake *f = fake_from(iface);
    if (f->method < 0) InterlockedIncrement(&valuetest_method_enums);
    f->method = 0;
    return S_OK;
}
static HRESULT STDMETHODCALLTYPE fake_NextMethod(IWbemClassObject *iface, LONG flags, BSTR *name,
                                                 IWbemClassObject **in, IWbemClassObject **out)
{
    static const WCHAR *const names[] = { L"First", L"Second" };
    struct fake *f = fake_from(iface);
    if (f->method < 0) return WBEM_E_UNEXPECTED;
    if (in) *in = NULL;
    if (out) *out = NULL;
    if (f->method >= (int)ARRAYSIZE(names)) return WBEM_S_NO_MORE_DATA;
    if (!(*name = SysAllocString(names[f->method++]))) return E_OUTOFMEMORY;
    return S_OK;
}
static HRESULT STDMETHODCALLTYPE fake_EndMethodEnumeration(IWbemClassObject *iface)
{
    struct fake *f = fake_from(iface);
    if (f->method < 0) return WBEM_E_UNEXPECTED;
    f->method = -1;
    InterlockedDecrement(&valuetest_method_enums);
    return S_OK;
}
static HRESULT STDMETHODCALLTYPE fake_GetMethodQualifierSet(IWbemClassObject *iface, LPCWSTR name,
                                                            IWbemQualifierSet **out)
{ return WBEM_E_NOT_SUPPORTED; }
static HRESULT STDMETHODCALLTYPE fake_GetMethodOrigin(IWbemClassObject *iface, LPCWSTR name, BSTR *class)
{ return WBEM_E_NOT_SUPPORTED; }
#pragma GCC diagnostic pop

static IWbemClassObjectVtbl fake_vtbl =
{
    fake_QueryInterface, fake_AddRef, fake_Release, fake_GetQualifierSet, fake_Get, fake_Put,
    fake_Delete, fake_GetNames, fake_BeginEnumeration, fake_Next, fake_EndEnumeration,
    fake_GetPropertyQualifierSet, fake_Clone, fake_GetObjectText, fake_SpawnDerivedClass,
    fake_SpawnInstance, fake_CompareTo, fake_GetPropertyOrigin, fake_InheritsFrom, fake_GetMethod,
    fake_PutMethod, fake_DeleteMethod, fake_BeginMethodEnumeration, fake_NextMethod,
    fake_EndMethodEnumeration, fake_GetMethodQualifierSet, fake_GetMethodOrigin,
};

/* --- Lua functions ------------------------------------------------------------------ */

static int valuetest_roundtrip(lua_State *L)
{
    CIMTYPE type = valuetest_check_cim(L, 2);
    CIMTYPE read_as = lua_isnoneornil(L, 3) ? type : valuetest_check_cim(L, 3);
    VARIANT *v;
    const char *why;

    lua_settop(L, 3);
    v = valuetest_box(L);
    if ((why = variant_from_lua(L, 1, type, v)))
    {
        if (V_VT(v) != VT_EMPTY) return luaL_error(L, "variant_from_lua failed but left type 0x%x", V_VT(v));
        lua_pushnil(L);
        lua_pushstring(L, why);
        return 2;
    }
    variant_push(L, v, read_as);
    lua_pushinteger(L, V_VT(v));
    return 2;
}

static int valuetest_push(lua_State *L)
{
    int k = valuetest_find_kind(NULL, luaL_checkstring(L, 1));
    CIMTYPE type;
    lua_Integer n = luaL_optinteger(L, 3, 1);
    VARIANT *v;
    HRESULT hr;

    luaL_argcheck(L, k >= 0, 1, "unknown kind");
    type = lua_isnoneornil(L, 2) ? valuetest_kinds[k].type : valuetest_check_cim(L, 2);
    lua_settop(L, 3);
    v = valuetest_box(L);
    if (FAILED(hr = valuetest_craft(valuetest_kinds[k].kind, n, v)))
        return luaL_error(L, "cannot craft '%s': 0x%08x", valuetest_kinds[k].name, (unsigned)hr);
    variant_push(L, v, type);
    return 1;
}

static int valuetest_object(lua_State *L)
{
    size_t len;
    const char *path = luaL_checklstring(L, 1, &len);
    IWbemLocator *locator = NULL;
    IWbemServices *svc = NULL;
    IWbemClassObject *obj = NULL;
    BSTR ns = SysAllocString(L"root\\cimv2"), wpath = NULL;
    HRESULT hr = str_to_bstr(path, len, &wpath);

    if (SUCCEEDED(hr) && !ns) hr = E_OUTOFMEMORY;

    if (SUCCEEDED(hr))
        hr = CoCreateInstance(&CLSID_WbemLocator, NULL, CLSCTX_INPROC_SERVER, &IID_IWbemLocator,
                              (void **)&locator);
    if (SUCCEEDED(hr)) hr = IWbemLocator_ConnectServer(locator, ns, NULL, NULL, NULL, 0, NULL, NULL, &svc);
    if (SUCCEEDED(hr)) hr = IWbemServices_GetObject(svc, wpath, 0, NULL, &obj, NULL);
    if (svc) IWbemServices_Release(svc);
    if (locator) IWbemLocator_Release(locator);
    SysFreeString(ns);
    SysFreeString(wpath);
    if (FAILED(hr)) return hresult_fail(L, hr);
    object_push(L, obj);
    IWbemClassObject_Release(obj);
    return 1;
}

static int valuetest_fake(lua_State *L)
{
    struct fake *f = HeapAlloc(GetProcessHeap(), HEAP_ZERO_MEMORY, sizeof(*f));
    int i;

    if (!f) return luaL_error(L, "not enough memory");
    f->IWbemClassObject_iface.lpVtbl = &fake_vtbl;
    f->refs = 1;
    f->method = -1;
    InterlockedIncrement(&valuetest_fakes);
    for (i = 0; i < 2 * VALUETEST_NCIMS; i++)
    {
        VariantInit(&f->values[i]);
        V_VT(&f->values[i]) = VT_NULL;
        MultiByteToWideChar(CP_UTF8, 0, valuetest_cims[i % VALUETEST_NCIMS].name, -1, f->names[i],
                            ARRAYSIZE(f->names[i]) - 2);
        if (i >= VALUETEST_NCIMS) lstrcatW(f->names[i], L"[]");
    }
    object_push(L, &f->IWbemClassObject_iface);
    IWbemClassObject_Release(&f->IWbemClassObject_iface);
    return 1;
}

static int valuetest_cimtype(lua_State *L)
{
    CIMTYPE type = valuetest_check_cim(L, 1);
    lua_pushinteger(L, type);
    lua_pushstring(L, variant_cimtype_name(type));
    return 2;
}

/* valuetest.credential(name, user, password) --> true: stores a generic credential in
 * Windows Credential Manager (CredWriteW, the blob the password in UTF-16, as
 * cmdkey stores it); valuetest.credential(name) deletes it. For wmiq --credential. */
static int valuetest_credential(lua_State *L)
{
    WCHAR name[256], user[256], password[256];
    CREDENTIALW cred;
    BOOL ok;

    MultiByteToWideChar(CP_UTF8, 0, luaL_checkstring(L, 1), -1, name, ARRAYSIZE(name));
    if (lua_isnoneornil(L, 2)) ok = CredDeleteW(name, CRED_TYPE_GENERIC, 0);
    else
    {
        MultiByteToWideChar(CP_UTF8, 0, luaL_checkstring(L, 2), -1, user, ARRAYSIZE(user));
        MultiByteToWideChar(CP_UTF8, 0, luaL_checkstring(L, 3), -1, password, ARRAYSIZE(password));
        memset(&cred, 0, sizeof(cred));
        cred.Type = CRED_TYPE_GENERIC;
        cred.TargetName = name;
        cred.UserName = user;
        cred.CredentialBlob = (BYTE *)password;
        cred.CredentialBlobSize = (DWORD)(wcslen(password) * sizeof(WCHAR));
        cred.Persist = CRED_PERSIST_LOCAL_MACHINE;
        ok = CredWriteW(&cred, 0);
    }
    if (!ok) return luaL_error(L, "credential: error %d", (int)GetLastError());
    lua_pushboolean(L, 1);
    return 1;
}

static int valuetest_method_enums_l(lua_State *L)
{
    lua_pushinteger(L, InterlockedCompareExchange(&valuetest_method_enums, 0, 0));
    return 1;
}

static int valuetest_stats(lua_State *L)
{
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, InterlockedCompareExchange(&wmi_stats.objects, 0, 0));
    lua_setfield(L, -2, "objects");
    lua_pushinteger(L, InterlockedCompareExchange(&valuetest_fakes, 0, 0));
    lua_setfield(L, -2, "fakes");
    lua_pushinteger(L, InterlockedCompareExchange(&valuetest_probes, 0, 0));
    lua_setfield(L, -2, "probes");
    return 1;
}

/* --- other Lua states ------------------------------------------------------------ */

struct valuetest_state
{
    const char *code, *path, *cpath;
    DWORD apartment;                /* COINIT_*, or ~0: the caller's thread */
    BOOL armed;
    LONGLONG left, failed;
    int ok, n;
    char *results[16];              /* malloc'd copies; results[0] is the error */
};

/* Lua promises never to ask a shrink that may fail: only growth fails. */
static void *valuetest_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct valuetest_state *st = ud;
    if (!nsize)
    {
        free(ptr);
        return NULL;
    }
    if (st->armed && (!ptr || nsize > osize) && st->left-- <= 0)
    {
        st->failed++;
        return NULL;
    }
    return realloc(ptr, nsize);
}

static int valuetest_oom(lua_State *L)
{
    struct valuetest_state *st;
    lua_getallocf(L, (void **)&st);
    if (lua_isnone(L, 1))
    {
        lua_pushinteger(L, st->failed);
        return 1;
    }
    st->armed = lua_toboolean(L, 1);
    st->left = st->armed ? luaL_checkinteger(L, 1) : 0;
    st->failed = 0;
    return 0;
}

static int valuetest_state_body(lua_State *L)
{
    struct valuetest_state *st = lua_touserdata(L, 1);
    int base;
    luaL_openlibs(L);
    lua_getglobal(L, "package");
    lua_pushstring(L, st->path);
    lua_setfield(L, -2, "path");
    lua_pushstring(L, st->cpath);
    lua_setfield(L, -2, "cpath");
    lua_pop(L, 1);
    lua_register(L, "oom", valuetest_oom);
    base = lua_gettop(L);
    if (luaL_loadstring(L, st->code) != LUA_OK) return lua_error(L);
    lua_call(L, 0, LUA_MULTRET);
    return lua_gettop(L) - base;
}

static void valuetest_state_run(struct valuetest_state *st)
{
    lua_State *L = lua_newstate(valuetest_alloc, st);
    int i, n;
    if (!L)
    {
        st->results[0] = _strdup("cannot make a Lua state");
        return;
    }
    lua_pushcfunction(L, valuetest_state_body);
    lua_pushlightuserdata(L, st);
    st->ok = lua_pcall(L, 1, LUA_MULTRET, 0) == LUA_OK;
    st->armed = FALSE;
    n = lua_gettop(L);
    for (i = 1; i <= n && st->n < (int)ARRAYSIZE(st->results); i++)
        st->results[st->n++] = _strdup(luaL_tolstring(L, i, NULL));
    lua_close(L);
}

static DWORD WINAPI valuetest_state_thread(void *arg)
{
    struct valuetest_state *st = arg;
    CoInitializeEx(NULL, st->apartment);
    valuetest_state_run(st);
    return 0;
}

static int valuetest_state(lua_State *L)
{
    static const char *const apartments[] = { "caller", "sta", "mta", NULL };
    static const DWORD inits[] = { ~0u, COINIT_APARTMENTTHREADED, COINIT_MULTITHREADED };
    struct valuetest_state st;
    int i;

    memset(&st, 0, sizeof(st));
    st.code = luaL_checkstring(L, 1);
    st.apartment = inits[luaL_checkoption(L, 2, "caller", apartments)];
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    lua_getfield(L, -2, "cpath");
    st.path = lua_tostring(L, -2);
    st.cpath = lua_tostring(L, -1);
    if (st.apartment == ~0u) valuetest_state_run(&st);
    else
    {
        HANDLE thread = CreateThread(NULL, 0, valuetest_state_thread, &st, 0, NULL);
        if (!thread) return luaL_error(L, "cannot start a thread");
        WaitForSingleObject(thread, INFINITE);
        CloseHandle(thread);
    }
    lua_pushboolean(L, st.ok);
    for (i = 0; i < st.n; i++)
    {
        lua_pushstring(L, st.results[i] ? st.results[i] : "(out of memory)");
        free(st.results[i]);
    }
    return st.n + 1;
}

__declspec(dllexport) int luaopen_valuetest(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        { "roundtrip", valuetest_roundtrip },
        { "push", valuetest_push },
        { "object", valuetest_object },
        { "fake", valuetest_fake },
        { "cimtype", valuetest_cimtype },
        { "stats", valuetest_stats },
        { "state", valuetest_state },
        { "method_enums", valuetest_method_enums_l },
        { "credential", valuetest_credential },
        { NULL, NULL }
    };
    static const luaL_Reg box_meta[] = {
        { "__close", valuetest_box_clear },
        { "__gc", valuetest_box_clear },
        { NULL, NULL }
    };
    HRESULT hr = CoInitializeEx(NULL, COINIT_MULTITHREADED);
    int i;

    /* As the module: COM stays initialised (an STA the host made will do). */
    if (FAILED(hr) && hr != RPC_E_CHANGED_MODE)
    {
        hresult_push_message(L, hr);
        return lua_error(L);
    }
    object_register(L);
    lua_pop(L, 1);
    luaL_newmetatable(L, VALUETEST_BOX);
    luaL_setfuncs(L, box_meta, 0);
    lua_pop(L, 1);
    luaL_newlib(L, funcs);
    lua_createtable(L, VALUETEST_NKINDS, 0);
    for (i = 0; i < VALUETEST_NKINDS; i++)
    {
        lua_pushstring(L, valuetest_kinds[i].name);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "kinds");
    return 1;
}

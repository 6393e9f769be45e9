/*
 * Objects the test WMI server hands out.
 *
 * A wrapper around each of Wine's objects: it is counted while alive (so a spec
 * proves every object handed out came back), every use of the Wine object inside
 * is serialised on testwmi_wine_cs, and written values live in the wrapper (Wine
 * keeps built-in instances read-only and cannot hold strings in spawned ones),
 * which makes PutInstance possible: see the overlay in testwmi_services.c.
 *
 * Windows' instances are self-contained; Wine's read their class's table, which
 * the next query of that class refills: an instance read after it sees another
 * row, or strings already freed. So the server reads everything Get, Next and
 * GetObjectText answer when it wraps an object (a snapshot, taken under
 * testwmi_wine_cs) and serves those from it ever after; what reads only the class
 * (GetNames, GetMethod, qualifiers, SpawnInstance...) still goes to Wine's object.
 * Spawned instances are Wine's own records, read live.
 */
#include "testwmi.h"

#include <stdio.h>
#include <stdlib.h>
#include <wchar.h>

/* One property as Wine's Get answered it. */
struct prop
{
    BSTR name;
    HRESULT hr;             /* a property Wine lists and cannot read fails alike every time */
    VARIANT v;
    CIMTYPE type;
    LONG flavor;
};

/* Never changed once taken: copies of a wrapper share it. */
struct snapshot
{
    LONG refs;
    struct prop *props;     /* the non-system properties in Wine's order (Next's), then the system ones */
    ULONG count, nonsystem;
    HRESULT text_hr;        /* GetObjectText's */
    BSTR text;
};

/* The system properties of WMI's objects (Get answers the ones Wine knows). */
static const WCHAR *const system_props[] =
{
    L"__CLASS", L"__DERIVATION", L"__DYNASTY", L"__GENUS", L"__NAMESPACE", L"__PATH", L"__PROPERTY_COUNT",
    L"__RELPATH", L"__SERVER", L"__SUPERCLASS"
};

struct value
{
    BSTR name;
    VARIANT v;
    CIMTYPE type;
};

struct wrapper
{
    IWbemClassObject IWbemClassObject_iface;
    LONG refs;
    IWbemClassObject *inner;    /* under testwmi_wine_cs */
    BSTR cls;               /* class name, NULL when unknown */
    BOOL spawned;           /* made by SpawnInstance: Wine gives it no system properties */
    struct snapshot *snap;  /* NULL: read live; a spawned instance's is its class object's, for the text only */
    struct value *values;   /* written by Put; these and next under testwmi_cs */
    ULONG count, cap;
    ULONG next;             /* the enumeration's position in snap */
};

static const IWbemClassObjectVtbl wrapper_vtbl;

static inline struct wrapper *impl_from_IWbemClassObject( IWbemClassObject *iface )
{
    return CONTAINING_RECORD( iface, struct wrapper, IWbemClassObject_iface );
}

/* VariantCopy into an uninitialised VARIANT, except that a VT_BSTR holding NULL
 * (Wine's method parameters give those) stays NULL: VariantCopy makes it "". */
static HRESULT value_copy( VARIANT *dst, const VARIANT *src )
{
    VariantInit( dst );
    if (V_VT( src ) == VT_BSTR && !V_BSTR( src ))
    {
        *dst = *src;
        return S_OK;
    }
    return VariantCopy( dst, (VARIANT *)src );
}

static void snapshot_release( struct snapshot *s )
{
    ULONG i;

    if (!s || InterlockedDecrement( &s->refs )) return;
    for (i = 0; i < s->count; i++)
    {
        SysFreeString( s->props[i].name );
        VariantClear( &s->props[i].v );
    }
    free( s->props );
    SysFreeString( s->text );
    free( s );
}

/* Reads property NAME of OBJ into the next slot of S. */
static HRESULT snapshot_add( struct snapshot *s, IWbemClassObject *obj, const WCHAR *name )
{
    struct prop *p = &s->props[s->count];

    if (!(p->name = SysAllocString( name ))) return E_OUTOFMEMORY;
    VariantInit( &p->v );
    p->hr = IWbemClassObject_Get( obj, name, 0, &p->v, &p->type, &p->flavor );
    s->count++;
    return S_OK;
}

/* What Get, Next and GetObjectText answer for OBJ, read now (the caller holds
 * testwmi_wine_cs); NULL when it cannot be read whole. */
static struct snapshot *snapshot_take( IWbemClassObject *obj )
{
    struct snapshot *s;
    SAFEARRAY *names = NULL;
    LONG lo = 0, hi = -1, i;
    HRESULT hr;

    if (!(s = calloc( 1, sizeof(*s) ))) return NULL;
    s->refs = 1;
    hr = IWbemClassObject_GetNames( obj, NULL, WBEM_FLAG_ALWAYS | WBEM_FLAG_NONSYSTEM_ONLY, NULL, &names );
    if (SUCCEEDED(hr) && names)
    {
        SafeArrayGetLBound( names, 1, &lo );
        SafeArrayGetUBound( names, 1, &hi );
    }
    if (SUCCEEDED(hr) && !(s->props = calloc( hi - lo + 1 + ARRAYSIZE(system_props), sizeof(*s->props) )))
        hr = E_OUTOFMEMORY;
    for (i = lo; SUCCEEDED(hr) && i <= hi; i++)
    {
        BSTR name = NULL;
        if (SUCCEEDED(hr = SafeArrayGetElement( names, &i, &name ))) hr = snapshot_add( s, obj, name );
        SysFreeString( name );
    }
    s->nonsystem = s->count;
    for (i = 0; SUCCEEDED(hr) && i < (LONG)ARRAYSIZE(system_props); i++) hr = snapshot_add( s, obj, system_props[i] );
    if (SUCCEEDED(hr)) s->text_hr = IWbemClassObject_GetObjectText( obj, 0, &s->text );
    if (names) SafeArrayDestroy( names );
    if (FAILED(hr))
    {
        snapshot_release( s );
        return NULL;
    }
    return s;
}

static const struct prop *snapshot_find( const struct snapshot *s, const WCHAR *name )
{
    ULONG i;
    for (i = 0; i < s->count; i++) if (!_wcsicmp( s->props[i].name, name )) return &s->props[i];
    return NULL;
}

/* The snapshot W's values are served from, or NULL (read Wine's object). */
static const struct snapshot *wrapper_values( const struct wrapper *w )
{
    return w->spawned ? NULL : w->snap;
}

static struct value *wrapper_find( struct wrapper *w, const WCHAR *name )
{
    ULONG i;
    for (i = 0; i < w->count; i++) if (!_wcsicmp( w->values[i].name, name )) return &w->values[i];
    return NULL;
}

/* A wrapper around OBJ (takes its reference; released if the wrapper cannot be made). */
static struct wrapper *wrapper_create( IWbemClassObject *obj )
{
    struct wrapper *w;

    if (!(w = calloc( 1, sizeof(*w) )))
    {
        EnterCriticalSection( &testwmi_wine_cs );
        IWbemClassObject_Release( obj );
        LeaveCriticalSection( &testwmi_wine_cs );
        return NULL;
    }
    w->IWbemClassObject_iface.lpVtbl = &wrapper_vtbl;
    w->refs = 1;
    w->inner = obj;
    testwmi_count( STAT_OBJECTS, 1 );
    return w;
}

static HRESULT WINAPI wrapper_QueryInterface( IWbemClassObject *iface, REFIID riid, void **obj )
{
    if (!obj) return E_POINTER;
    if (IsEqualGUID( riid, &IID_IUnknown ) || IsEqualGUID( riid, &IID_IWbemClassObject ))
    {
        *obj = iface;
        IWbemClassObject_AddRef( iface );
        return S_OK;
    }
    *obj = NULL;
    return E_NOINTERFACE;
}

static ULONG WINAPI wrapper_AddRef( IWbemClassObject *iface )
{
    return InterlockedIncrement( &impl_from_IWbemClassObject( iface )->refs );
}

static ULONG WINAPI wrapper_Release( IWbemClassObject *iface )
{
    struct wrapper *w = impl_from_IWbemClassObject( iface );
    LONG refs = InterlockedDecrement( &w->refs );
    ULONG i;

    if (!refs)
    {
        EnterCriticalSection( &testwmi_wine_cs );
        IWbemClassObject_Release( w->inner );
        LeaveCriticalSection( &testwmi_wine_cs );
        snapshot_release( w->snap );
        for (i = 0; i < w->count; i++)
        {
            SysFreeString( w->values[i].name );
            VariantClear( &w->values[i].v );
        }
        free( w->values );
        SysFreeString( w->cls );
        free( w );
        testwmi_count( STAT_OBJECTS, -1 );
    }
    return refs;
}

/* Every forwarding method: Wine's object under the Wine lock. */
#define FORWARD( call ) \
    do { \
        HRESULT hr_; \
        EnterCriticalSection( &testwmi_wine_cs ); \
        hr_ = call; \
        LeaveCriticalSection( &testwmi_wine_cs ); \
        return hr_; \
    } while (0)
#define INNER (impl_from_IWbemClassObject( iface )->inner)

static HRESULT WINAPI wrapper_GetQualifierSet( IWbemClassObject *iface, IWbemQualifierSet **set )
{
    FORWARD( IWbemClassObject_GetQualifierSet( INNER, set ) );
}

/* configure{ malformed = ... }: the Name property as a hostile provider could send
 * it. The arrays are by reference to static descriptors (nothing for the client to
 * free): "vartype", an array that says VT_BSTR and holds VT_I8 elements (8 bytes
 * each on x64, as BSTRs; zeros, so a client reading them as BSTRs finds NULLs);
 * "bounds", 2^31 + 1 elements of VT_I4 in a one-element buffer; "date", VT_DATE. */
static struct { DWORD pad, vartype; SAFEARRAY sa; } malformed_vartype, malformed_bounds;
static LONGLONG malformed_data[2];
static SAFEARRAY *malformed_refs[2];

static void wrapper_malform( LPCWSTR name, VARIANT *val )
{
    int kind;
    EnterCriticalSection( &testwmi_cs );
    kind = testwmi_config.malformed;
    LeaveCriticalSection( &testwmi_cs );
    if (!kind || !val || _wcsicmp( name, L"Name" )) return;
    VariantClear( val );
    if (kind == MALFORMED_DATE)
    {
        V_VT( val ) = VT_DATE;
        V_DATE( val ) = 45000.5;
        return;
    }
    malformed_vartype.vartype = VT_I8;
    malformed_vartype.sa.cDims = 1;
    malformed_vartype.sa.fFeatures = FADF_HAVEVARTYPE;
    malformed_vartype.sa.cbElements = sizeof(LONGLONG);
    malformed_vartype.sa.pvData = malformed_data;
    malformed_vartype.sa.rgsabound[0].cElements = 2;
    malformed_bounds.vartype = VT_I4;
    malformed_bounds.sa = malformed_vartype.sa;
    malformed_bounds.sa.cbElements = sizeof(LONG);
    malformed_bounds.sa.rgsabound[0].cElements = 0x80000001;
    malformed_refs[0] = &malformed_vartype.sa;
    malformed_refs[1] = &malformed_bounds.sa;
    V_VT( val ) = VT_BYREF | VT_ARRAY | (kind == MALFORMED_VARTYPE ? VT_BSTR : VT_I4);
    V_ARRAYREF( val ) = &malformed_refs[kind == MALFORMED_VARTYPE ? 0 : 1];
}

/* Get's out-parameters from a value the wrapper keeps. */
static HRESULT value_out( const VARIANT *v, CIMTYPE t, LONG fl, VARIANT *val, CIMTYPE *type, LONG *flavor )
{
    if (type) *type = t;
    if (flavor) *flavor = fl;
    return val ? value_copy( val, v ) : S_OK;
}

/* Get from what W keeps (a spawned instance's class, a written value, the
 * snapshot) into *HR; FALSE when it keeps nothing for NAME. */
static BOOL wrapper_get_kept( struct wrapper *w, const WCHAR *name, VARIANT *val, CIMTYPE *type, LONG *flavor,
                              HRESULT *hr )
{
    const struct snapshot *snap = wrapper_values( w );
    const struct prop *p;
    struct value *v;
    BOOL kept;

    if (w->spawned && w->cls && !_wcsicmp( name, L"__CLASS" ))
    {
        VARIANT cls;
        V_VT( &cls ) = VT_BSTR;
        V_BSTR( &cls ) = w->cls;
        *hr = value_out( &cls, CIM_STRING, WBEM_FLAVOR_ORIGIN_SYSTEM, val, type, flavor );
        return TRUE;
    }
    EnterCriticalSection( &testwmi_cs );
    if ((kept = (v = wrapper_find( w, name )) != NULL))
        *hr = value_out( &v->v, v->type, WBEM_FLAVOR_ORIGIN_LOCAL, val, type, flavor );
    LeaveCriticalSection( &testwmi_cs );
    if (kept || !snap) return kept;
    if (!(p = snapshot_find( snap, name ))) *hr = WBEM_E_NOT_FOUND;
    else *hr = FAILED(p->hr) ? p->hr : value_out( &p->v, p->type, p->flavor, val, type, flavor );
    return TRUE;
}

static HRESULT WINAPI wrapper_Get( IWbemClassObject *iface, LPCWSTR name, LONG flags, VARIANT *val,
                                   CIMTYPE *type, LONG *flavor )
{
    struct wrapper *w = impl_from_IWbemClassObject( iface );
    HRESULT hr;

    if (!name) return WBEM_E_INVALID_PARAMETER;
    if (!wrapper_get_kept( w, name, val, type, flavor, &hr ))
    {
        EnterCriticalSection( &testwmi_wine_cs );
        hr = IWbemClassObject_Get( w->inner, name, flags, val, type, flavor );
        /* Wine cannot read the unset string fields of a spawned instance: on Windows
         * a property nobody wrote reads as NULL. */
        if (hr == (HRESULT)WBEM_E_INVALID_PARAMETER && w->spawned && val
            && SUCCEEDED(IWbemClassObject_Get( w->inner, name, flags, NULL, type, flavor )))
        {
            V_VT( val ) = VT_NULL;
            hr = S_OK;
        }
        LeaveCriticalSection( &testwmi_wine_cs );
    }
    if (SUCCEEDED(hr)) wrapper_malform( name, val );
    return hr;
}

/* A value is kept by the wrapper once Wine knows the property: written values
 * read back as written, as on Windows. */
static HRESULT WINAPI wrapper_Put( IWbemClassObject *iface, LPCWSTR name, LONG flags, VARIANT *val, CIMTYPE type )
{
    struct wrapper *w = impl_from_IWbemClassObject( iface );
    const struct snapshot *snap = wrapper_values( w );
    const struct prop *p;
    struct value *v = NULL;
    CIMTYPE known = 0;
    VARIANT copy;
    HRESULT hr;

    (void)flags; (void)type;
    if (!name) return WBEM_E_INVALID_PARAMETER;
    if (name[0] == '_' && name[1] == '_') return WBEM_E_READ_ONLY;
    VariantInit( &copy );
    if (val && FAILED(hr = value_copy( &copy, val ))) return hr;
    if (snap)
    {
        p = snapshot_find( snap, name );
        hr = p ? p->hr : (HRESULT)WBEM_E_NOT_FOUND;
        if (p) known = p->type;
    }
    else
    {
        EnterCriticalSection( &testwmi_wine_cs );
        hr = IWbemClassObject_Get( w->inner, name, 0, NULL, &known, NULL );
        LeaveCriticalSection( &testwmi_wine_cs );
    }
    EnterCriticalSection( &testwmi_cs );
    if (SUCCEEDED(hr) && !(v = wrapper_find( w, name )))
    {
        if (w->count == w->cap)
        {
            ULONG cap = w->cap ? w->cap * 2 : 8;
            struct value *values = realloc( w->values, cap * sizeof(*values) );
            if (!values) hr = E_OUTOFMEMORY;
            else
            {
                w->values = values;
                w->cap = cap;
            }
        }
        if (SUCCEEDED(hr))
        {
            v = &w->values[w->count];
            if (!(v->name = SysAllocString( name ))) hr = E_OUTOFMEMORY;
            else
            {
                VariantInit( &v->v );
                w->count++;
            }
        }
    }
    if (SUCCEEDED(hr))
    {
        VariantClear( &v->v );
        v->v = copy;
        V_VT( &copy ) = VT_EMPTY;
        v->type = known;
        hr = S_OK;
    }
    LeaveCriticalSection( &testwmi_cs );
    VariantClear( &copy );
    return hr;
}

static HRESULT WINAPI wrapper_Delete( IWbemClassObject *iface, LPCWSTR name )
{
    FORWARD( IWbemClassObject_Delete( INNER, name ) );
}

/* Wine's GetNames reads the class's columns, never a row. */
static HRESULT WINAPI wrapper_GetNames( IWbemClassObject *iface, LPCWSTR qualifier, LONG flags, VARIANT *val,
                                        SAFEARRAY **names )
{
    FORWARD( IWbemClassObject_GetNames( INNER, qualifier, flags, val, names ) );
}

/* Wine's BeginEnumeration ignores the flags: so does the snapshot's. */
static HRESULT WINAPI wrapper_BeginEnumeration( IWbemClassObject *iface, LONG flags )
{
    struct wrapper *w = impl_from_IWbemClassObject( iface );

    if (!wrapper_values( w )) FORWARD( IWbemClassObject_BeginEnumeration( w->inner, flags ) );
    EnterCriticalSection( &testwmi_cs );
    w->next = 0;
    LeaveCriticalSection( &testwmi_cs );
    return WBEM_S_NO_ERROR;
}

/* Next from the snapshot: its next non-system property, or the value written to it. */
static HRESULT wrapper_next_kept( struct wrapper *w, const struct snapshot *snap, BSTR *name, VARIANT *val,
                                  CIMTYPE *type, LONG *flavor )
{
    const struct prop *p;
    struct value *v;
    HRESULT hr = WBEM_S_NO_MORE_DATA;

    EnterCriticalSection( &testwmi_cs );
    if (w->next < snap->nonsystem)
    {
        p = &snap->props[w->next];
        v = wrapper_find( w, p->name );
        /* A property Wine cannot read stops the enumeration there, as Wine's does. */
        hr = p->hr;
        if (SUCCEEDED(hr)) hr = value_out( v ? &v->v : &p->v, p->type, p->flavor, val, type, flavor );
        if (SUCCEEDED(hr) && !(*name = SysAllocString( p->name )))
        {
            if (val) VariantClear( val );
            hr = E_OUTOFMEMORY;
        }
        if (SUCCEEDED(hr)) w->next++;
    }
    LeaveCriticalSection( &testwmi_cs );
    return hr;
}

/* Wine's next property, or its written value. */
static HRESULT wrapper_next_live( struct wrapper *w, LONG flags, BSTR *name, VARIANT *val, CIMTYPE *type,
                                  LONG *flavor )
{
    struct value *v;
    HRESULT hr;

    EnterCriticalSection( &testwmi_wine_cs );
    hr = IWbemClassObject_Next( w->inner, flags, name, val, type, flavor );
    LeaveCriticalSection( &testwmi_wine_cs );
    if (hr != WBEM_S_NO_ERROR || !val) return hr;
    EnterCriticalSection( &testwmi_cs );
    if ((v = wrapper_find( w, *name )))
    {
        VariantClear( val );
        hr = value_copy( val, &v->v );
    }
    LeaveCriticalSection( &testwmi_cs );
    return hr;
}

static HRESULT WINAPI wrapper_Next( IWbemClassObject *iface, LONG flags, BSTR *name, VARIANT *val, CIMTYPE *type,
                                    LONG *flavor )
{
    struct wrapper *w = impl_from_IWbemClassObject( iface );
    const struct snapshot *snap = wrapper_values( w );
    BSTR local = NULL, *at = name ? name : &local;
    HRESULT hr;

    hr = snap ? wrapper_next_kept( w, snap, at, val, type, flavor )
              : wrapper_next_live( w, flags, at, val, type, flavor );
    if (hr == WBEM_S_NO_ERROR) wrapper_malform( *at, val );
    SysFreeString( local );
    return hr;
}

static HRESULT WINAPI wrapper_EndEnumeration( IWbemClassObject *iface )
{
    struct wrapper *w = impl_from_IWbemClassObject( iface );

    if (!wrapper_values( w )) FORWARD( IWbemClassObject_EndEnumeration( w->inner ) );
    EnterCriticalSection( &testwmi_cs );
    w->next = 0;
    LeaveCriticalSection( &testwmi_cs );
    return WBEM_S_NO_ERROR;
}

static HRESULT WINAPI wrapper_GetPropertyQualifierSet( IWbemClassObject *iface, LPCWSTR prop, IWbemQualifierSet **set )
{
    FORWARD( IWbemClassObject_GetPropertyQualifierSet( INNER, prop, set ) );
}

static HRESULT WINAPI wrapper_Clone( IWbemClassObject *iface, IWbemClassObject **copy )
{
    FORWARD( IWbemClassObject_Clone( INNER, copy ) );
}

/* Wine ignores the flags. A spawned instance's text is Wine's: that of its class
 * object's query's first row, which is the class object when GetObject made it. */
static HRESULT WINAPI wrapper_GetObjectText( IWbemClassObject *iface, LONG flags, BSTR *text )
{
    struct wrapper *w = impl_from_IWbemClassObject( iface );
    const struct snapshot *snap = w->snap;

    if (!snap) FORWARD( IWbemClassObject_GetObjectText( w->inner, flags, text ) );
    if (!text) return WBEM_E_INVALID_PARAMETER;
    if (FAILED(snap->text_hr)) return snap->text_hr;
    if (!(*text = SysAllocStringLen( snap->text, SysStringLen( snap->text ) ))) return E_OUTOFMEMORY;
    return snap->text_hr;
}

static HRESULT WINAPI wrapper_SpawnDerivedClass( IWbemClassObject *iface, LONG flags, IWbemClassObject **out )
{
    FORWARD( IWbemClassObject_SpawnDerivedClass( INNER, flags, out ) );
}

static HRESULT WINAPI wrapper_SpawnInstance( IWbemClassObject *iface, LONG flags, IWbemClassObject **out )
{
    struct wrapper *w = impl_from_IWbemClassObject( iface ), *s;
    IWbemClassObject *inst = NULL;
    HRESULT hr;

    if (!out) return WBEM_E_INVALID_PARAMETER;
    *out = NULL;
    EnterCriticalSection( &testwmi_wine_cs );
    hr = IWbemClassObject_SpawnInstance( w->inner, flags, &inst );
    LeaveCriticalSection( &testwmi_wine_cs );
    if (FAILED(hr)) return hr;
    if (!(s = wrapper_create( inst ))) return E_OUTOFMEMORY;
    /* Wine's spawned instance does not know its class: the wrapper does. */
    s->spawned = TRUE;
    s->cls = w->cls ? SysAllocString( w->cls ) : NULL;
    if ((s->snap = w->snap)) InterlockedIncrement( &s->snap->refs );
    *out = &s->IWbemClassObject_iface;
    return S_OK;
}

static HRESULT WINAPI wrapper_CompareTo( IWbemClassObject *iface, LONG flags, IWbemClassObject *other )
{
    FORWARD( IWbemClassObject_CompareTo( INNER, flags, object_unwrap( other ) ) );
}

static HRESULT WINAPI wrapper_GetPropertyOrigin( IWbemClassObject *iface, LPCWSTR name, BSTR *cls )
{
    FORWARD( IWbemClassObject_GetPropertyOrigin( INNER, name, cls ) );
}

static HRESULT WINAPI wrapper_InheritsFrom( IWbemClassObject *iface, LPCWSTR ancestor )
{
    FORWARD( IWbemClassObject_InheritsFrom( INNER, ancestor ) );
}

static HRESULT WINAPI wrapper_GetMethod( IWbemClassObject *iface, LPCWSTR name, LONG flags, IWbemClassObject **in,
                                         IWbemClassObject **out )
{
    FORWARD( IWbemClassObject_GetMethod( INNER, name, flags, in, out ) );
}

static HRESULT WINAPI wrapper_PutMethod( IWbemClassObject *iface, LPCWSTR name, LONG flags, IWbemClassObject *in,
                                         IWbemClassObject *out )
{
    FORWARD( IWbemClassObject_PutMethod( INNER, name, flags, object_unwrap( in ), object_unwrap( out ) ) );
}

static HRESULT WINAPI wrapper_DeleteMethod( IWbemClassObject *iface, LPCWSTR name )
{
    FORWARD( IWbemClassObject_DeleteMethod( INNER, name ) );
}

static HRESULT WINAPI wrapper_BeginMethodEnumeration( IWbemClassObject *iface, LONG flags )
{
    FORWARD( IWbemClassObject_BeginMethodEnumeration( INNER, flags ) );
}

static HRESULT WINAPI wrapper_NextMethod( IWbemClassObject *iface, LONG flags, BSTR *name, IWbemClassObject **in,
                                          IWbemClassObject **out )
{
    FORWARD( IWbemClassObject_NextMethod( INNER, flags, name, in, out ) );
}

static HRESULT WINAPI wrapper_EndMethodEnumeration( IWbemClassObject *iface )
{
    FORWARD( IWbemClassObject_EndMethodEnumeration( INNER ) );
}

static HRESULT WINAPI wrapper_GetMethodQualifierSet( IWbemClassObject *iface, LPCWSTR method, IWbemQualifierSet **set )
{
    FORWARD( IWbemClassObject_GetMethodQualifierSet( INNER, method, set ) );
}

static HRESULT WINAPI wrapper_GetMethodOrigin( IWbemClassObject *iface, LPCWSTR method, BSTR *cls )
{
    FORWARD( IWbemClassObject_GetMethodOrigin( INNER, method, cls ) );
}

static const IWbemClassObjectVtbl wrapper_vtbl =
{
    wrapper_QueryInterface,
    wrapper_AddRef,
    wrapper_Release,
    wrapper_GetQualifierSet,
    wrapper_Get,
    wrapper_Put,
    wrapper_Delete,
    wrapper_GetNames,
    wrapper_BeginEnumeration,
    wrapper_Next,
    wrapper_EndEnumeration,
    wrapper_GetPropertyQualifierSet,
    wrapper_Clone,
    wrapper_GetObjectText,
    wrapper_SpawnDerivedClass,
    wrapper_SpawnInstance,
    wrapper_CompareTo,
    wrapper_GetPropertyOrigin,
    wrapper_InheritsFrom,
    wrapper_GetMethod,
    wrapper_PutMethod,
    wrapper_DeleteMethod,
    wrapper_BeginMethodEnumeration,
    wrapper_NextMethod,
    wrapper_EndMethodEnumeration,
    wrapper_GetMethodQualifierSet,
    wrapper_GetMethodOrigin
};

IWbemClassObject *object_wrap( IWbemClassObject *obj )
{
    struct wrapper *w;
    VARIANT v;

    if (!obj || !(w = wrapper_create( obj ))) return NULL;
    EnterCriticalSection( &testwmi_wine_cs );
    w->snap = snapshot_take( obj );
    LeaveCriticalSection( &testwmi_wine_cs );
    VariantInit( &v );
    if (SUCCEEDED(wrapper_Get( &w->IWbemClassObject_iface, L"__CLASS", 0, &v, NULL, NULL )) && V_VT( &v ) == VT_BSTR)
    {
        w->cls = V_BSTR( &v );
        V_VT( &v ) = VT_EMPTY;
    }
    VariantClear( &v );
    return &w->IWbemClassObject_iface;
}

IWbemClassObject *object_unwrap( IWbemClassObject *obj )
{
    if (obj && obj->lpVtbl == &wrapper_vtbl) return impl_from_IWbemClassObject( obj )->inner;
    return obj;
}

HRESULT object_copy( IWbemClassObject *obj, IWbemClassObject **out )
{
    struct wrapper *w, *c;
    HRESULT hr = S_OK;
    ULONG i;

    *out = NULL;
    if (!obj || obj->lpVtbl != &wrapper_vtbl) return WBEM_E_INVALID_OBJECT;
    w = impl_from_IWbemClassObject( obj );
    EnterCriticalSection( &testwmi_wine_cs );
    IWbemClassObject_AddRef( w->inner );
    LeaveCriticalSection( &testwmi_wine_cs );
    if (!(c = wrapper_create( w->inner ))) return E_OUTOFMEMORY;
    *out = &c->IWbemClassObject_iface;
    c->spawned = w->spawned;
    c->cls = w->cls ? SysAllocString( w->cls ) : NULL;
    if ((c->snap = w->snap)) InterlockedIncrement( &c->snap->refs );
    EnterCriticalSection( &testwmi_cs );
    if (w->count && !(c->values = calloc( w->count, sizeof(*c->values) ))) hr = E_OUTOFMEMORY;
    for (i = 0; SUCCEEDED(hr) && i < w->count; i++)
    {
        struct value *v = &c->values[i];
        VariantInit( &v->v );
        if (!(v->name = SysAllocString( w->values[i].name ))) hr = E_OUTOFMEMORY;
        else
        {
            c->count = c->cap = i + 1;
            v->type = w->values[i].type;
            hr = value_copy( &v->v, &w->values[i].v );
        }
    }
    LeaveCriticalSection( &testwmi_cs );
    if (FAILED(hr))
    {
        IWbemClassObject_Release( *out );
        *out = NULL;
    }
    return hr;
}

/* Appends key NAME's value of OBJ to PATH (of CAP characters) as WMI writes it. */
static HRESULT relpath_append_key( IWbemClassObject *obj, const WCHAR *name, WCHAR *path, size_t cap )
{
    size_t len = wcslen( path );
    HRESULT hr;
    VARIANT v;

    VariantInit( &v );
    if (FAILED(hr = IWbemClassObject_Get( obj, name, 0, &v, NULL, NULL ))) return hr;
    switch (V_VT( &v ))
    {
    case VT_BSTR:
    {
        const WCHAR *s = V_BSTR( &v ) ? V_BSTR( &v ) : L"";
        if (len + 4 >= cap) hr = WBEM_E_INVALID_OBJECT_PATH;
        else path[len++] = '"';
        for (; SUCCEEDED(hr) && *s; s++)
        {
            if (len + 4 >= cap) hr = WBEM_E_INVALID_OBJECT_PATH;
            else
            {
                if (*s == '"' || *s == '\\') path[len++] = '\\';
                path[len++] = *s;
            }
        }
        if (SUCCEEDED(hr))
        {
            path[len++] = '"';
            path[len] = 0;
        }
        break;
    }
    case VT_I1: case VT_UI1: case VT_I2: case VT_UI2: case VT_I4: case VT_UI4: case VT_INT: case VT_UINT:
        hr = VariantChangeType( &v, &v, 0, VT_BSTR );
        if (SUCCEEDED(hr) && len + SysStringLen( V_BSTR( &v ) ) + 1 >= cap) hr = WBEM_E_INVALID_OBJECT_PATH;
        if (SUCCEEDED(hr)) wcscat( path, V_BSTR( &v ) );
        break;
    case VT_EMPTY: case VT_NULL:
        hr = WBEM_E_ILLEGAL_NULL;   /* a key must have a value */
        break;
    default:
        hr = WBEM_E_INVALID_OBJECT;
    }
    VariantClear( &v );
    return hr;
}

/* The key names come from the relative path of the class's first instance, as
 * Wine reports it (Wine's GetObject(class) answers with that instance). */
HRESULT object_relpath( IWbemClassObject *obj, IWbemServices *wine, BSTR *out )
{
    struct wrapper *w;
    IWbemClassObject *first = NULL;
    WCHAR path[1024], name[128];
    const WCHAR *p;
    HRESULT hr;
    VARIANT v;

    *out = NULL;
    if (!obj || obj->lpVtbl != &wrapper_vtbl || !impl_from_IWbemClassObject( obj )->cls)
        return WBEM_E_INVALID_OBJECT;
    w = impl_from_IWbemClassObject( obj );
    VariantInit( &v );
    EnterCriticalSection( &testwmi_wine_cs );
    hr = IWbemServices_GetObject( wine, w->cls, 0, NULL, &first, NULL );
    if (SUCCEEDED(hr)) hr = IWbemClassObject_Get( first, L"__RELPATH", 0, &v, NULL, NULL );
    if (SUCCEEDED(hr) && (V_VT( &v ) != VT_BSTR || !V_BSTR( &v ))) hr = WBEM_E_INVALID_CLASS;
    if (first) IWbemClassObject_Release( first );
    LeaveCriticalSection( &testwmi_wine_cs );
    if (FAILED(hr)) goto done;
    if (wcslen( w->cls ) + 2 >= ARRAYSIZE(path))
    {
        hr = WBEM_E_INVALID_OBJECT_PATH;
        goto done;
    }
    wcscpy( path, w->cls );
    if (!(p = wcschr( V_BSTR( &v ), '.' )))
    {
        wcscat( path, L"=@" );     /* a singleton */
        goto made;
    }
    wcscat( path, L"." );
    for (p++; *p && SUCCEEDED(hr);)
    {
        size_t n = 0;
        while (*p && *p != '=' && n + 1 < ARRAYSIZE(name)) name[n++] = *p++;
        name[n] = 0;
        if (*p != '=')
        {
            hr = WBEM_E_INVALID_OBJECT_PATH;
            break;
        }
        p++;
        if (*p == '"')
            for (p++; *p && *p != '"'; p++) if (*p == '\\' && p[1]) p++;
        while (*p && *p != ',') p++;
        if (wcslen( path ) + n + 2 >= ARRAYSIZE(path))
        {
            hr = WBEM_E_INVALID_OBJECT_PATH;
            break;
        }
        wcscat( path, name );
        wcscat( path, L"=" );
        hr = relpath_append_key( obj, name, path, ARRAYSIZE(path) );
        if (*p == ',')
        {
            p++;
            if (SUCCEEDED(hr)) wcscat( path, L"," );
        }
    }
made:
    if (SUCCEEDED(hr) && !(*out = SysAllocString( path ))) hr = E_OUTOFMEMORY;
done:
    VariantClear( &v );
    return hr;
}

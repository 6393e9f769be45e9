/*
 * The test server's class store: the namespace root\testclasses, where classes and
 * static instances written by the client live, as [MS-WMI] 3.1.4.3 describes for
 * IWbemServices. Wine's wbemprox has no PutClass, DeleteClass or PutInstance (each
 * is a FIXME returning WBEM_E_FAILED), and its class objects cannot be derived
 * from or carry new qualifiers, so this file makes its own objects too:
 *
 * - a class or instance object (IWbemClassObject) with typed properties, class and
 *   property qualifier sets (IWbemQualifierSet), SpawnDerivedClass, SpawnInstance
 *   and Clone; values are kept in the VARIANT type WMI carries for each CIM type
 *   (uint32 as VT_I4, uint64 as a decimal BSTR), as Windows' objects keep them;
 * - PutClass (3.1.4.3.6): CREATE_ONLY fails WBEM_E_ALREADY_EXISTS, UPDATE_ONLY
 *   WBEM_E_NOT_FOUND; a name that begins or ends with '_' is WBEM_E_INVALID_PARAMETER;
 *   an unknown superclass WBEM_E_INVALID_SUPERCLASS; an update of a class with
 *   instances WBEM_E_CLASS_HAS_INSTANCES (IWbemServices::PutClass, the
 *   UPDATE_COMPATIBLE default), with subclasses WBEM_E_CLASS_HAS_CHILDREN unless
 *   UPDATE_SAFE_MODE or UPDATE_FORCE_MODE;
 * - DeleteClass (3.1.4.3.8): the class, its subclasses and all their instances go;
 * - PutInstance (3.1.4.3.12): the class must exist (WBEM_E_INVALID_CLASS); CREATE_ONLY
 *   and UPDATE_ONLY as for classes; the path is the class and its key values;
 * - DeleteInstance (3.1.4.3.14), GetObject (3.1.4.3.4: a NULL or empty path is a new
 *   empty class), CreateClassEnum (3.1.4.3.10), CreateInstanceEnum (3.1.4.3.16, deep
 *   unless WBEM_FLAG_SHALLOW) and ExecQuery (3.1.4.3.18) of "SELECT * FROM Class"
 *   only; an unknown class there is WBEM_E_INVALID_CLASS.
 * Every call is recorded (testwmi.class_log()): method, flags, class or path, result.
 */
#include "testwmi.h"

#include <lua.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <wchar.h>

#define CLASSES_NAMESPACE L"root\\testclasses"

struct qualifier
{
    WCHAR *name;
    VARIANT value;
    LONG flavor;
};

struct qualifiers
{
    struct qualifier *items;
    ULONG count;
};

struct property
{
    WCHAR *name;
    CIMTYPE type;
    VARIANT value;
    WCHAR *origin;
    struct qualifiers quals;
};

/* A class (genus 1) or an instance (genus 2). */
struct cim
{
    IWbemClassObject IWbemClassObject_iface;
    LONG refs;
    BOOL is_class;
    WCHAR *cls;                 /* NULL until __CLASS is put on a new class */
    WCHAR **derivation;         /* superclass first, then its superclass... */
    ULONG depth;
    struct qualifiers quals;
    struct property *props;
    ULONG count;
    ULONG pos;                  /* BeginEnumeration / Next */
};

struct qualifier_set
{
    IWbemQualifierSet IWbemQualifierSet_iface;
    LONG refs;
    struct cim *owner;          /* a reference */
    WCHAR *prop;                /* NULL: the object's own qualifiers */
    ULONG pos;
};

static const IWbemClassObjectVtbl cim_vtbl;
static const IWbemQualifierSetVtbl qualifier_set_vtbl;

static inline struct cim *impl_from_IWbemClassObject( IWbemClassObject *iface )
{
    return CONTAINING_RECORD( iface, struct cim, IWbemClassObject_iface );
}

static struct cim *cim_from( IWbemClassObject *obj )
{
    return obj && obj->lpVtbl == &cim_vtbl ? impl_from_IWbemClassObject( obj ) : NULL;
}

BOOL classes_namespace( const WCHAR *ns )
{
    return ns && !_wcsicmp( ns, CLASSES_NAMESPACE );
}

/* --- values ---------------------------------------------------------------------------- */

static WCHAR *wdup( const WCHAR *s )
{
    size_t n = wcslen( s ) + 1;
    WCHAR *d = malloc( n * sizeof(WCHAR) );
    if (d) memcpy( d, s, n * sizeof(WCHAR) );
    return d;
}

static const struct { CIMTYPE type; VARTYPE vt; const WCHAR *name; } cim_types[] =
{
    { CIM_SINT8, VT_I2, L"sint8" }, { CIM_UINT8, VT_UI1, L"uint8" }, { CIM_SINT16, VT_I2, L"sint16" },
    { CIM_UINT16, VT_I4, L"uint16" }, { CIM_SINT32, VT_I4, L"sint32" }, { CIM_UINT32, VT_I4, L"uint32" },
    { CIM_SINT64, VT_BSTR, L"sint64" }, { CIM_UINT64, VT_BSTR, L"uint64" }, { CIM_REAL32, VT_R4, L"real32" },
    { CIM_REAL64, VT_R8, L"real64" }, { CIM_BOOLEAN, VT_BOOL, L"boolean" }, { CIM_STRING, VT_BSTR, L"string" },
    { CIM_DATETIME, VT_BSTR, L"datetime" }, { CIM_REFERENCE, VT_BSTR, L"ref" }, { CIM_CHAR16, VT_I2, L"char16" },
    { CIM_OBJECT, VT_UNKNOWN, L"object" },
};

static int cim_type_index( CIMTYPE type )
{
    int i;
    for (i = 0; i < (int)ARRAYSIZE(cim_types); i++) if (cim_types[i].type == (type & ~CIM_FLAG_ARRAY)) return i;
    return -1;
}

/* *OUT = V in the carrier WMI uses for TYPE (a scalar converted; an array's elements
 * must already be of it); VT_NULL and VT_EMPTY stay NULL. */
static HRESULT value_coerce( const VARIANT *v, CIMTYPE type, VARIANT *out )
{
    int i = cim_type_index( type );

    VariantInit( out );
    if (i < 0) return WBEM_E_INVALID_PROPERTY_TYPE;
    if (!v || V_VT( v ) == VT_NULL || V_VT( v ) == VT_EMPTY)
    {
        V_VT( out ) = VT_NULL;
        return S_OK;
    }
    if (type & CIM_FLAG_ARRAY)
    {
        if (V_VT( v ) != (VT_ARRAY | cim_types[i].vt)) return WBEM_E_TYPE_MISMATCH;
        return VariantCopy( out, (VARIANT *)v );
    }
    if (V_VT( v ) & VT_ARRAY) return WBEM_E_TYPE_MISMATCH;
    if (cim_types[i].vt == VT_UNKNOWN)
        return V_VT( v ) == VT_UNKNOWN || V_VT( v ) == VT_DISPATCH ? VariantCopy( out, (VARIANT *)v )
                                                                   : (HRESULT)WBEM_E_TYPE_MISMATCH;
    return FAILED(VariantChangeType( out, (VARIANT *)v, 0, cim_types[i].vt )) ? WBEM_E_TYPE_MISMATCH : S_OK;
}

/* --- qualifiers -------------------------------------------------------------------------- */

static void qualifiers_free( struct qualifiers *q )
{
    ULONG i;
    for (i = 0; i < q->count; i++)
    {
        free( q->items[i].name );
        VariantClear( &q->items[i].value );
    }
    free( q->items );
    q->items = NULL;
    q->count = 0;
}

static struct qualifier *qualifiers_find( struct qualifiers *q, const WCHAR *name )
{
    ULONG i;
    for (i = 0; i < q->count; i++) if (!_wcsicmp( q->items[i].name, name )) return &q->items[i];
    return NULL;
}

static HRESULT qualifiers_put( struct qualifiers *q, const WCHAR *name, const VARIANT *v, LONG flavor )
{
    struct qualifier *item = qualifiers_find( q, name ), *items;
    VARIANT copy;
    HRESULT hr;

    VariantInit( &copy );
    if (FAILED(hr = VariantCopy( &copy, (VARIANT *)v ))) return hr;
    if (!item)
    {
        if (!(items = realloc( q->items, (q->count + 1) * sizeof(*items) ))) goto oom;
        q->items = items;
        item = &items[q->count];
        if (!(item->name = wdup( name ))) goto oom;
        VariantInit( &item->value );
        q->count++;
    }
    VariantClear( &item->value );
    item->value = copy;
    item->flavor = flavor;
    return S_OK;
oom:
    VariantClear( &copy );
    return E_OUTOFMEMORY;
}

static HRESULT qualifiers_copy( struct qualifiers *dst, const struct qualifiers *src, BOOL derived )
{
    HRESULT hr = S_OK;
    ULONG i;
    for (i = 0; i < src->count && SUCCEEDED(hr); i++)
    {
        LONG flavor = src->items[i].flavor;
        /* A derived class gets what propagates to it, marked as propagated. */
        if (derived && !(flavor & WBEM_FLAVOR_FLAG_PROPAGATE_TO_DERIVED_CLASS)) continue;
        if (derived) flavor |= WBEM_FLAVOR_ORIGIN_PROPAGATED;
        hr = qualifiers_put( dst, src->items[i].name, &src->items[i].value, flavor );
    }
    return hr;
}

/* --- the object ---------------------------------------------------------------------------- */

static struct property *cim_find( struct cim *o, const WCHAR *name )
{
    ULONG i;
    for (i = 0; i < o->count; i++) if (!_wcsicmp( o->props[i].name, name )) return &o->props[i];
    return NULL;
}

static BOOL property_is_key( struct property *p )
{
    struct qualifier *q = qualifiers_find( &p->quals, L"key" );
    return q && V_VT( &q->value ) == VT_BOOL && V_BOOL( &q->value );
}

static struct cim *cim_alloc( BOOL is_class )
{
    struct cim *o = calloc( 1, sizeof(*o) );
    if (!o) return NULL;
    o->IWbemClassObject_iface.lpVtbl = &cim_vtbl;
    o->refs = 1;
    o->is_class = is_class;
    testwmi_count( STAT_OBJECTS, 1 );
    return o;
}

static void cim_free( struct cim *o )
{
    ULONG i;
    for (i = 0; i < o->count; i++)
    {
        free( o->props[i].name );
        free( o->props[i].origin );
        VariantClear( &o->props[i].value );
        qualifiers_free( &o->props[i].quals );
    }
    for (i = 0; i < o->depth; i++) free( o->derivation[i] );
    free( o->derivation );
    free( o->props );
    qualifiers_free( &o->quals );
    free( o->cls );
    free( o );
    testwmi_count( STAT_OBJECTS, -1 );
}

static HRESULT cim_add( struct cim *o, const WCHAR *name, CIMTYPE type, const VARIANT *v, const WCHAR *origin,
                        struct property **out )
{
    struct property *props = realloc( o->props, (o->count + 1) * sizeof(*props) ), *p;
    if (!props) return E_OUTOFMEMORY;
    o->props = props;
    p = &props[o->count];
    memset( p, 0, sizeof(*p) );
    VariantInit( &p->value );
    if (!(p->name = wdup( name )) || (origin && !(p->origin = wdup( origin ))))
    {
        free( p->name );
        return E_OUTOFMEMORY;
    }
    p->type = type;
    o->count++;
    if (FAILED(VariantCopy( &p->value, (VARIANT *)v ))) V_VT( &p->value ) = VT_NULL;
    *out = p;
    return S_OK;
}

/* A copy of O: a class derived from it (DERIVE), an instance of it (SPAWN) or a clone. */
enum cim_copy { COPY_CLONE, COPY_DERIVE, COPY_SPAWN };
static HRESULT cim_copy( struct cim *o, enum cim_copy how, struct cim **out )
{
    struct cim *c = cim_alloc( how == COPY_SPAWN ? FALSE : o->is_class );
    HRESULT hr = S_OK;
    ULONG i;

    *out = NULL;
    if (!c) return E_OUTOFMEMORY;
    c->depth = o->depth + (how == COPY_DERIVE);
    if (c->depth && !(c->derivation = calloc( c->depth, sizeof(WCHAR *) ))) hr = E_OUTOFMEMORY;
    if (SUCCEEDED(hr) && how == COPY_DERIVE && !(c->derivation[0] = wdup( o->cls ))) hr = E_OUTOFMEMORY;
    for (i = 0; SUCCEEDED(hr) && i < o->depth; i++)
        if (!(c->derivation[i + (how == COPY_DERIVE)] = wdup( o->derivation[i] ))) hr = E_OUTOFMEMORY;
    if (SUCCEEDED(hr) && how != COPY_DERIVE && o->cls && !(c->cls = wdup( o->cls ))) hr = E_OUTOFMEMORY;
    if (SUCCEEDED(hr)) hr = qualifiers_copy( &c->quals, &o->quals, how == COPY_DERIVE );
    for (i = 0; SUCCEEDED(hr) && i < o->count; i++)
    {
        struct property *p;
        hr = cim_add( c, o->props[i].name, o->props[i].type, &o->props[i].value, o->props[i].origin, &p );
        if (SUCCEEDED(hr)) hr = qualifiers_copy( &p->quals, &o->props[i].quals, how == COPY_DERIVE );
    }
    if (FAILED(hr))
    {
        cim_free( c );
        return hr;
    }
    *out = c;
    return S_OK;
}

static IWbemClassObject *cim_clone_iface( struct cim *o )
{
    struct cim *c;
    return SUCCEEDED(cim_copy( o, COPY_CLONE, &c )) ? &c->IWbemClassObject_iface : NULL;
}

/* Appends S (quoted when QUOTE) to BUF of CAP characters; FALSE when it does not fit. */
static BOOL append( WCHAR *buf, size_t cap, const WCHAR *s, BOOL quote )
{
    size_t n = wcslen( buf );
    if (quote && n + 1 < cap) buf[n++] = '"';
    for (; *s && n + 2 < cap; s++)
    {
        if (quote && (*s == '"' || *s == '\\')) buf[n++] = '\\';
        buf[n++] = *s;
    }
    if (quote && n + 1 < cap) buf[n++] = '"';
    buf[n] = 0;
    return !*s && n + 1 < cap;
}

/* The relative path of an instance: "Class.Key=1,Name=\"x\"", "Class=@" without keys. */
static HRESULT cim_relpath( struct cim *o, WCHAR *buf, size_t cap )
{
    BOOL keys = FALSE, ok;
    ULONG i;

    buf[0] = 0;
    if (!o->cls) return WBEM_E_INVALID_OBJECT;
    ok = append( buf, cap, o->cls, FALSE );
    for (i = 0; i < o->count && ok; i++)
    {
        struct property *p = &o->props[i];
        VARIANT s;
        if (!property_is_key( p )) continue;
        if (V_VT( &p->value ) == VT_NULL || (p->type & CIM_FLAG_ARRAY)) return WBEM_E_INVALID_OBJECT;
        VariantInit( &s );
        if (FAILED(VariantChangeType( &s, &p->value, 0, VT_BSTR ))) return WBEM_E_INVALID_OBJECT;
        ok = append( buf, cap, keys ? L"," : L".", FALSE ) && append( buf, cap, p->name, FALSE )
             && append( buf, cap, L"=", FALSE )
             && append( buf, cap, V_BSTR( &s ), p->type == CIM_STRING || p->type == CIM_DATETIME
                        || p->type == CIM_REFERENCE );
        VariantClear( &s );
        keys = TRUE;
    }
    if (ok && !keys) ok = append( buf, cap, L"=@", FALSE );
    return ok ? S_OK : WBEM_E_INVALID_OBJECT;
}

static HRESULT set_bstr( VARIANT *v, const WCHAR *s )
{
    if (!s)
    {
        V_VT( v ) = VT_NULL;
        return S_OK;
    }
    V_VT( v ) = VT_BSTR;
    return (V_BSTR( v ) = SysAllocString( s )) ? S_OK : E_OUTOFMEMORY;
}

static const WCHAR *const system_names[] =
{
    L"__GENUS", L"__CLASS", L"__SUPERCLASS", L"__DYNASTY", L"__RELPATH", L"__PROPERTY_COUNT",
    L"__DERIVATION", L"__SERVER", L"__NAMESPACE", L"__PATH"
};

static HRESULT cim_system( struct cim *o, const WCHAR *name, VARIANT *v, CIMTYPE *type )
{
    WCHAR path[512], full[600];
    CIMTYPE t = CIM_STRING;
    HRESULT hr = S_OK;
    VARIANT tmp;

    if (!v) v = &tmp;
    VariantInit( v );
    if (!_wcsicmp( name, L"__GENUS" ) || !_wcsicmp( name, L"__PROPERTY_COUNT" ))
    {
        t = CIM_SINT32;
        V_VT( v ) = VT_I4;
        V_I4( v ) = _wcsicmp( name, L"__GENUS" ) ? (LONG)o->count
                                                 : o->is_class ? WBEM_GENUS_CLASS : WBEM_GENUS_INSTANCE;
    }
    else if (!_wcsicmp( name, L"__CLASS" )) hr = set_bstr( v, o->cls );
    else if (!_wcsicmp( name, L"__SUPERCLASS" )) hr = set_bstr( v, o->depth ? o->derivation[0] : NULL );
    else if (!_wcsicmp( name, L"__DYNASTY" )) hr = set_bstr( v, o->depth ? o->derivation[o->depth - 1] : o->cls );
    else if (!_wcsicmp( name, L"__SERVER" )) hr = set_bstr( v, o->cls ? L"." : NULL );
    else if (!_wcsicmp( name, L"__NAMESPACE" )) hr = set_bstr( v, o->cls ? CLASSES_NAMESPACE : NULL );
    else if (!_wcsicmp( name, L"__RELPATH" ) || !_wcsicmp( name, L"__PATH" ))
    {
        if (o->is_class) hr = set_bstr( v, o->cls ? o->cls : NULL ), wcscpy( path, o->cls ? o->cls : L"" );
        else if (SUCCEEDED(cim_relpath( o, path, ARRAYSIZE(path) ))) hr = set_bstr( v, path );
        else V_VT( v ) = VT_NULL;
        if (SUCCEEDED(hr) && V_VT( v ) == VT_BSTR && !_wcsicmp( name, L"__PATH" ))
        {
            VariantClear( v );
            swprintf( full, ARRAYSIZE(full), L"\\\\.\\%ls:%ls", CLASSES_NAMESPACE, path );
            hr = set_bstr( v, full );
        }
    }
    else if (!_wcsicmp( name, L"__DERIVATION" ))
    {
        SAFEARRAY *sa = SafeArrayCreateVector( VT_BSTR, 0, o->depth );
        LONG i;
        t = CIM_STRING | CIM_FLAG_ARRAY;
        if (!sa) return E_OUTOFMEMORY;
        for (i = 0; i < (LONG)o->depth && SUCCEEDED(hr); i++)
        {
            BSTR s = SysAllocString( o->derivation[i] );
            hr = s ? SafeArrayPutElement( sa, &i, s ) : E_OUTOFMEMORY;
            SysFreeString( s );
        }
        V_VT( v ) = VT_ARRAY | VT_BSTR;
        V_ARRAY( v ) = sa;
    }
    else return WBEM_E_NOT_FOUND;
    if (type) *type = t;
    if (v == &tmp || FAILED(hr)) VariantClear( v );
    return hr;
}

/* --- IWbemClassObject ---------------------------------------------------------------------- */

static HRESULT WINAPI cim_QueryInterface( IWbemClassObject *iface, REFIID riid, void **obj )
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

static ULONG WINAPI cim_AddRef( IWbemClassObject *iface )
{
    return InterlockedIncrement( &impl_from_IWbemClassObject( iface )->refs );
}

static ULONG WINAPI cim_Release( IWbemClassObject *iface )
{
    struct cim *o = impl_from_IWbemClassObject( iface );
    LONG refs = InterlockedDecrement( &o->refs );
    if (!refs) cim_free( o );
    return refs;
}

static HRESULT qualifier_set_create( struct cim *owner, const WCHAR *prop, IWbemQualifierSet **out )
{
    struct qualifier_set *set = calloc( 1, sizeof(*set) );
    if (!set || (prop && !(set->prop = wdup( prop ))))
    {
        free( set );
        return E_OUTOFMEMORY;
    }
    set->IWbemQualifierSet_iface.lpVtbl = &qualifier_set_vtbl;
    set->refs = 1;
    set->owner = owner;
    IWbemClassObject_AddRef( &owner->IWbemClassObject_iface );
    *out = &set->IWbemQualifierSet_iface;
    return S_OK;
}

static HRESULT WINAPI cim_GetQualifierSet( IWbemClassObject *iface, IWbemQualifierSet **set )
{
    if (!set) return WBEM_E_INVALID_PARAMETER;
    return qualifier_set_create( impl_from_IWbemClassObject( iface ), NULL, set );
}

static HRESULT WINAPI cim_Get( IWbemClassObject *iface, LPCWSTR name, LONG flags, VARIANT *val, CIMTYPE *type,
                               LONG *flavor )
{
    struct cim *o = impl_from_IWbemClassObject( iface );
    struct property *p;

    (void)flags;
    if (!name) return WBEM_E_INVALID_PARAMETER;
    if (name[0] == '_' && name[1] == '_')
    {
        if (flavor) *flavor = WBEM_FLAVOR_ORIGIN_SYSTEM;
        return cim_system( o, name, val, type );
    }
    if (!(p = cim_find( o, name ))) return WBEM_E_NOT_FOUND;
    if (type) *type = p->type;
    if (flavor) *flavor = p->origin && o->cls && _wcsicmp( p->origin, o->cls ) ? WBEM_FLAVOR_ORIGIN_PROPAGATED
                                                                               : WBEM_FLAVOR_ORIGIN_LOCAL;
    if (!val) return S_OK;
    VariantInit( val );
    return VariantCopy( val, &p->value );
}

/* IWbemClassObject::Put: on a class a new name with a type adds a property (its value
 * the default); on an instance only existing properties can be written. */
static HRESULT WINAPI cim_Put( IWbemClassObject *iface, LPCWSTR name, LONG flags, VARIANT *val, CIMTYPE type )
{
    struct cim *o = impl_from_IWbemClassObject( iface );
    struct property *p;
    VARIANT v;
    HRESULT hr;

    (void)flags;
    if (!name || !*name) return WBEM_E_INVALID_PARAMETER;
    if (name[0] == '_' && name[1] == '_')
    {
        /* Only a new class's name may be set. */
        if (_wcsicmp( name, L"__CLASS" ) || !o->is_class) return WBEM_E_READ_ONLY;
        if (!val || V_VT( val ) != VT_BSTR || !V_BSTR( val ) || !*V_BSTR( val )) return WBEM_E_TYPE_MISMATCH;
        free( o->cls );
        if (!(o->cls = wdup( V_BSTR( val ) ))) return E_OUTOFMEMORY;
        return S_OK;
    }
    if (!(p = cim_find( o, name )))
    {
        if (!o->is_class) return WBEM_E_NOT_FOUND;
        if (!type) return WBEM_E_INVALID_PROPERTY_TYPE;
        if (FAILED(hr = value_coerce( val, type, &v ))) return hr;
        hr = cim_add( o, name, type, &v, o->cls ? o->cls : L"", &p );
        VariantClear( &v );
        return hr;
    }
    if (type && type != p->type) return WBEM_E_TYPE_MISMATCH;
    if (FAILED(hr = value_coerce( val, p->type, &v ))) return hr;
    VariantClear( &p->value );
    p->value = v;
    return S_OK;
}

static HRESULT WINAPI cim_Delete( IWbemClassObject *iface, LPCWSTR name )
{
    struct cim *o = impl_from_IWbemClassObject( iface );
    struct property *p = name ? cim_find( o, name ) : NULL;
    ULONG i;

    if (!p) return WBEM_E_NOT_FOUND;
    if (!o->is_class)
    {
        VariantClear( &p->value );
        V_VT( &p->value ) = VT_NULL;
        return WBEM_S_RESET_TO_DEFAULT;
    }
    i = (ULONG)(p - o->props);
    free( p->name );
    free( p->origin );
    VariantClear( &p->value );
    qualifiers_free( &p->quals );
    memmove( p, p + 1, (o->count - i - 1) * sizeof(*p) );
    o->count--;
    return S_OK;
}

static HRESULT WINAPI cim_GetNames( IWbemClassObject *iface, LPCWSTR qualifier, LONG flags, VARIANT *val,
                                    SAFEARRAY **names )
{
    struct cim *o = impl_from_IWbemClassObject( iface );
    BOOL sys = !(flags & WBEM_FLAG_NONSYSTEM_ONLY) && !(flags & WBEM_FLAG_KEYS_ONLY);
    BOOL nonsys = !(flags & WBEM_FLAG_SYSTEM_ONLY);
    LONG n = 0;
    ULONG i;
    SAFEARRAY *sa;
    HRESULT hr = S_OK;

    (void)val;
    if (!names) return WBEM_E_INVALID_PARAMETER;
    if (!(sa = SafeArrayCreateVector( VT_BSTR, 0, ARRAYSIZE(system_names) + o->count ))) return E_OUTOFMEMORY;
    for (i = 0; sys && i < ARRAYSIZE(system_names) && SUCCEEDED(hr); i++, n++)
        hr = SafeArrayPutElement( sa, &n, (void *)system_names[i] );
    for (i = 0; nonsys && i < o->count && SUCCEEDED(hr); i++)
    {
        struct property *p = &o->props[i];
        BSTR s;
        if ((flags & WBEM_FLAG_KEYS_ONLY) && !property_is_key( p )) continue;
        if (qualifier && !qualifiers_find( &p->quals, qualifier )) continue;
        if (!(s = SysAllocString( p->name ))) hr = E_OUTOFMEMORY;
        else hr = SafeArrayPutElement( sa, &n, s );
        SysFreeString( s );
        n++;
    }
    if (SUCCEEDED(hr))
    {
        SAFEARRAYBOUND bound = { (ULONG)n, 0 };
        hr = SafeArrayRedim( sa, &bound );
    }
    if (FAILED(hr))
    {
        SafeArrayDestroy( sa );
        return hr;
    }
    *names = sa;
    return S_OK;
}

static HRESULT WINAPI cim_BeginEnumeration( IWbemClassObject *iface, LONG flags )
{
    (void)flags;
    impl_from_IWbemClassObject( iface )->pos = 0;
    return S_OK;
}

/* Non-system properties only: what a client walks. */
static HRESULT WINAPI cim_Next( IWbemClassObject *iface, LONG flags, BSTR *name, VARIANT *val, CIMTYPE *type,
                                LONG *flavor )
{
    struct cim *o = impl_from_IWbemClassObject( iface );
    struct property *p;

    (void)flags;
    if (o->pos >= o->count) return WBEM_S_NO_MORE_DATA;
    p = &o->props[o->pos++];
    if (name && !(*name = SysAllocString( p->name ))) return E_OUTOFMEMORY;
    return cim_Get( iface, p->name, 0, val, type, flavor );
}

static HRESULT WINAPI cim_EndEnumeration( IWbemClassObject *iface )
{
    impl_from_IWbemClassObject( iface )->pos = 0;
    return S_OK;
}

static HRESULT WINAPI cim_GetPropertyQualifierSet( IWbemClassObject *iface, LPCWSTR prop, IWbemQualifierSet **set )
{
    struct cim *o = impl_from_IWbemClassObject( iface );
    if (!prop || !set) return WBEM_E_INVALID_PARAMETER;
    if (prop[0] == '_' && prop[1] == '_') return WBEM_E_SYSTEM_PROPERTY;
    if (!cim_find( o, prop )) return WBEM_E_NOT_FOUND;
    return qualifier_set_create( o, prop, set );
}

static HRESULT WINAPI cim_Clone( IWbemClassObject *iface, IWbemClassObject **copy )
{
    if (!copy) return WBEM_E_INVALID_PARAMETER;
    return (*copy = cim_clone_iface( impl_from_IWbemClassObject( iface ) )) ? S_OK : E_OUTOFMEMORY;
}

static void text_scalar( WCHAR *buf, size_t cap, const VARIANT *v )
{
    VARIANT s;
    VariantInit( &s );
    if (V_VT( v ) == VT_BSTR) append( buf, cap, V_BSTR( v ), TRUE );
    else if (V_VT( v ) == VT_BOOL) append( buf, cap, V_BOOL( v ) ? L"TRUE" : L"FALSE", FALSE );
    else if (SUCCEEDED(VariantChangeType( &s, (VARIANT *)v, 0, VT_BSTR ))) append( buf, cap, V_BSTR( &s ), FALSE );
    VariantClear( &s );
}

/* A value in MOF: "text", 7, TRUE, {"a", "b"}. */
static void text_value( WCHAR *buf, size_t cap, const VARIANT *v )
{
    LONG lo, hi, i;
    if (!(V_VT( v ) & VT_ARRAY))
    {
        text_scalar( buf, cap, v );
        return;
    }
    SafeArrayGetLBound( V_ARRAY( v ), 1, &lo );
    SafeArrayGetUBound( V_ARRAY( v ), 1, &hi );
    append( buf, cap, L"{", FALSE );
    for (i = lo; i <= hi; i++)
    {
        VARIANT e;
        VariantInit( &e );
        V_VT( &e ) = V_VT( v ) & ~VT_ARRAY;
        if (FAILED(SafeArrayGetElement( V_ARRAY( v ), &i, &V_UI1( &e ) ))) V_VT( &e ) = VT_EMPTY;
        if (i > lo) append( buf, cap, L", ", FALSE );
        text_scalar( buf, cap, &e );
        VariantClear( &e );
    }
    append( buf, cap, L"}", FALSE );
}

/* "[key, MaxLen(16)] " for a list of qualifiers, by name (a client puts them in any order). */
static void text_qualifiers( WCHAR *buf, size_t cap, const struct qualifiers *q, const WCHAR *end )
{
    const struct qualifier *prev = NULL, *next;
    ULONG i, j;
    for (i = 0; i < q->count; i++, prev = next)
    {
        const VARIANT *v;
        for (next = NULL, j = 0; j < q->count; j++)
            if ((!prev || _wcsicmp( q->items[j].name, prev->name ) > 0)
                && (!next || _wcsicmp( q->items[j].name, next->name ) < 0))
                next = &q->items[j];
        v = &next->value;
        append( buf, cap, i ? L", " : L"[", FALSE );
        append( buf, cap, next->name, FALSE );
        if (V_VT( v ) == VT_BOOL && V_BOOL( v )) continue;
        append( buf, cap, L"(", FALSE );
        text_value( buf, cap, v );
        append( buf, cap, L")", FALSE );
    }
    if (q->count) append( buf, cap, L"]", FALSE ), append( buf, cap, end, FALSE );
}

/* MOF text with the qualifiers: "[Description(\"x\")]\nclass Lw_Thing : Base\n{\n\t[key] uint64 Id;\n};\n" */
static HRESULT WINAPI cim_GetObjectText( IWbemClassObject *iface, LONG flags, BSTR *text )
{
    struct cim *o = impl_from_IWbemClassObject( iface );
    WCHAR buf[4096];
    ULONG i;

    (void)flags;
    if (!text) return WBEM_E_INVALID_PARAMETER;
    buf[0] = 0;
    if (o->is_class) text_qualifiers( buf, ARRAYSIZE(buf), &o->quals, L"\n" );
    append( buf, ARRAYSIZE(buf), o->is_class ? L"class " : L"instance of ", FALSE );
    append( buf, ARRAYSIZE(buf), o->cls ? o->cls : L"", FALSE );
    if (o->is_class && o->depth)
        append( buf, ARRAYSIZE(buf), L" : ", FALSE ), append( buf, ARRAYSIZE(buf), o->derivation[0], FALSE );
    append( buf, ARRAYSIZE(buf), L"\n{\n", FALSE );
    for (i = 0; i < o->count; i++)
    {
        struct property *p = &o->props[i];
        int t = cim_type_index( p->type );
        append( buf, ARRAYSIZE(buf), L"\t", FALSE );
        if (o->is_class) text_qualifiers( buf, ARRAYSIZE(buf), &p->quals, L" " );
        if (o->is_class) append( buf, ARRAYSIZE(buf), t < 0 ? L"?" : cim_types[t].name, FALSE ),
                         append( buf, ARRAYSIZE(buf), L" ", FALSE );
        append( buf, ARRAYSIZE(buf), p->name, FALSE );
        if (o->is_class && (p->type & CIM_FLAG_ARRAY)) append( buf, ARRAYSIZE(buf), L"[]", FALSE );
        if (V_VT( &p->value ) != VT_NULL)
            append( buf, ARRAYSIZE(buf), L" = ", FALSE ), text_value( buf, ARRAYSIZE(buf), &p->value );
        append( buf, ARRAYSIZE(buf), L";\n", FALSE );
    }
    append( buf, ARRAYSIZE(buf), L"};\n", FALSE );
    return (*text = SysAllocString( buf )) ? S_OK : E_OUTOFMEMORY;
}

static HRESULT WINAPI cim_SpawnDerivedClass( IWbemClassObject *iface, LONG flags, IWbemClassObject **out )
{
    struct cim *o = impl_from_IWbemClassObject( iface ), *c;
    HRESULT hr;

    (void)flags;
    if (!out) return WBEM_E_INVALID_PARAMETER;
    *out = NULL;
    if (!o->is_class || !o->cls) return WBEM_E_INVALID_OPERATION;
    if (FAILED(hr = cim_copy( o, COPY_DERIVE, &c ))) return hr;
    *out = &c->IWbemClassObject_iface;
    return S_OK;
}

static HRESULT WINAPI cim_SpawnInstance( IWbemClassObject *iface, LONG flags, IWbemClassObject **out )
{
    struct cim *o = impl_from_IWbemClassObject( iface ), *c;
    HRESULT hr;

    (void)flags;
    if (!out) return WBEM_E_INVALID_PARAMETER;
    *out = NULL;
    if (!o->is_class || !o->cls) return WBEM_E_INVALID_OPERATION;
    if (FAILED(hr = cim_copy( o, COPY_SPAWN, &c ))) return hr;
    *out = &c->IWbemClassObject_iface;
    return S_OK;
}

/* The same MOF text is the same object, as far as this server's objects go. */
static HRESULT WINAPI cim_CompareTo( IWbemClassObject *iface, LONG flags, IWbemClassObject *other )
{
    BSTR a = NULL, b = NULL;
    HRESULT hr;

    (void)flags;
    if (!other) return WBEM_E_INVALID_PARAMETER;
    hr = IWbemClassObject_GetObjectText( iface, 0, &a );
    if (SUCCEEDED(hr)) hr = IWbemClassObject_GetObjectText( other, 0, &b );
    if (SUCCEEDED(hr)) hr = wcscmp( a, b ) ? WBEM_S_DIFFERENT : WBEM_S_SAME;
    SysFreeString( a );
    SysFreeString( b );
    return hr;
}

static HRESULT WINAPI cim_GetPropertyOrigin( IWbemClassObject *iface, LPCWSTR name, BSTR *cls )
{
    struct property *p = name ? cim_find( impl_from_IWbemClassObject( iface ), name ) : NULL;
    if (!cls) return WBEM_E_INVALID_PARAMETER;
    if (!p) return WBEM_E_NOT_FOUND;
    return (*cls = SysAllocString( p->origin ? p->origin : L"" )) ? S_OK : E_OUTOFMEMORY;
}

static HRESULT WINAPI cim_InheritsFrom( IWbemClassObject *iface, LPCWSTR ancestor )
{
    struct cim *o = impl_from_IWbemClassObject( iface );
    ULONG i;
    if (!ancestor) return WBEM_E_INVALID_PARAMETER;
    for (i = 0; i < o->depth; i++) if (!_wcsicmp( o->derivation[i], ancestor )) return WBEM_S_NO_ERROR;
    return WBEM_S_FALSE;
}

/* Methods are outside what a class definition here carries: none is found (the
 * nomethod_* of testwmi_bag.c), and none can be put. */
static HRESULT WINAPI cim_PutMethod( IWbemClassObject *iface, LPCWSTR name, LONG flags, IWbemClassObject *in,
                                     IWbemClassObject *out )
{
    (void)iface; (void)name; (void)flags; (void)in; (void)out;
    return WBEM_E_NOT_SUPPORTED;
}

static HRESULT WINAPI cim_DeleteMethod( IWbemClassObject *iface, LPCWSTR name )
{
    (void)iface; (void)name;
    return WBEM_E_NOT_FOUND;
}

static const IWbemClassObjectVtbl cim_vtbl =
{
    cim_QueryInterface, cim_AddRef, cim_Release, cim_GetQualifierSet, cim_Get, cim_Put, cim_Delete,
    cim_GetNames, cim_BeginEnumeration, cim_Next, cim_EndEnumeration, cim_GetPropertyQualifierSet, cim_Clone,
    cim_GetObjectText, cim_SpawnDerivedClass, cim_SpawnInstance, cim_CompareTo, cim_GetPropertyOrigin,
    cim_InheritsFrom, nomethod_GetMethod, cim_PutMethod, cim_DeleteMethod, nomethod_BeginMethodEnumeration,
    nomethod_NextMethod, nomethod_EndMethodEnumeration, nomethod_GetMethodQualifierSet, nomethod_GetMethodOrigin
};

/* --- IWbemQualifierSet ---------------------------------------------------------------------- */

static inline struct qualifier_set *impl_from_IWbemQualifierSet( IWbemQualifierSet *iface )
{
    return CONTAINING_RECORD( iface, struct qualifier_set, IWbemQualifierSet_iface );
}

/* The qualifiers the set stands for, and its property (NULL for the object's). */
static struct qualifiers *qualifier_set_list( struct qualifier_set *set, struct property **prop )
{
    struct property *p = NULL;
    if (set->prop && !(p = cim_find( set->owner, set->prop ))) return NULL;
    if (prop) *prop = p;
    return p ? &p->quals : &set->owner->quals;
}

static HRESULT WINAPI qualifier_set_QueryInterface( IWbemQualifierSet *iface, REFIID riid, void **obj )
{
    if (!obj) return E_POINTER;
    if (IsEqualGUID( riid, &IID_IUnknown ) || IsEqualGUID( riid, &IID_IWbemQualifierSet ))
    {
        *obj = iface;
        IWbemQualifierSet_AddRef( iface );
        return S_OK;
    }
    *obj = NULL;
    return E_NOINTERFACE;
}

static ULONG WINAPI qualifier_set_AddRef( IWbemQualifierSet *iface )
{
    return InterlockedIncrement( &impl_from_IWbemQualifierSet( iface )->refs );
}

static ULONG WINAPI qualifier_set_Release( IWbemQualifierSet *iface )
{
    struct qualifier_set *set = impl_from_IWbemQualifierSet( iface );
    LONG refs = InterlockedDecrement( &set->refs );
    if (!refs)
    {
        IWbemClassObject_Release( &set->owner->IWbemClassObject_iface );
        free( set->prop );
        free( set );
    }
    return refs;
}

/* A property's CIMTYPE qualifier, which WMI keeps on every property ("uint64",
 * "ref:Class" when the client named the class). */
static HRESULT qualifier_cimtype( struct property *p, VARIANT *v, LONG *flavor )
{
    struct qualifier *q = qualifiers_find( &p->quals, L"CIMTYPE" );
    int t = cim_type_index( p->type );
    if (flavor) *flavor = WBEM_FLAVOR_ORIGIN_SYSTEM;
    if (!v) return S_OK;
    VariantInit( v );
    if (q) return VariantCopy( v, &q->value );
    return set_bstr( v, t < 0 ? L"" : cim_types[t].name );
}

static HRESULT WINAPI qualifier_set_Get( IWbemQualifierSet *iface, LPCWSTR name, LONG flags, VARIANT *val,
                                         LONG *flavor )
{
    struct qualifier_set *set = impl_from_IWbemQualifierSet( iface );
    struct property *p = NULL;
    struct qualifiers *list = qualifier_set_list( set, &p );
    struct qualifier *q;

    (void)flags;
    if (!name) return WBEM_E_INVALID_PARAMETER;
    if (!list) return WBEM_E_NOT_FOUND;
    if (p && !_wcsicmp( name, L"CIMTYPE" )) return qualifier_cimtype( p, val, flavor );
    if (!(q = qualifiers_find( list, name ))) return WBEM_E_NOT_FOUND;
    if (flavor) *flavor = q->flavor;
    if (!val) return S_OK;
    VariantInit( val );
    return VariantCopy( val, &q->value );
}

/* Qualifier values are VT_I4, VT_R8, VT_BSTR, VT_BOOL or arrays of them. */
static HRESULT WINAPI qualifier_set_Put( IWbemQualifierSet *iface, LPCWSTR name, VARIANT *val, LONG flavor )
{
    struct qualifiers *list = qualifier_set_list( impl_from_IWbemQualifierSet( iface ), NULL );
    VARTYPE vt = val ? V_VT( val ) & ~VT_ARRAY : VT_EMPTY;

    if (!name || !*name || !val) return WBEM_E_INVALID_PARAMETER;
    if (!list) return WBEM_E_NOT_FOUND;
    if (vt != VT_I4 && vt != VT_R8 && vt != VT_BSTR && vt != VT_BOOL) return WBEM_E_INVALID_QUALIFIER_TYPE;
    return qualifiers_put( list, name, val, flavor & ~WBEM_FLAVOR_MASK_ORIGIN );
}

static HRESULT WINAPI qualifier_set_Delete( IWbemQualifierSet *iface, LPCWSTR name )
{
    struct qualifiers *list = qualifier_set_list( impl_from_IWbemQualifierSet( iface ), NULL );
    struct qualifier *q = list && name ? qualifiers_find( list, name ) : NULL;
    if (!q) return WBEM_E_NOT_FOUND;
    free( q->name );
    VariantClear( &q->value );
    memmove( q, q + 1, (list->count - (q - list->items) - 1) * sizeof(*q) );
    list->count--;
    return S_OK;
}

static HRESULT WINAPI qualifier_set_GetNames( IWbemQualifierSet *iface, LONG flags, SAFEARRAY **names )
{
    struct qualifier_set *set = impl_from_IWbemQualifierSet( iface );
    struct property *p = NULL;
    struct qualifiers *list = qualifier_set_list( set, &p );
    BOOL cimtype = p && !qualifiers_find( list, L"CIMTYPE" );
    SAFEARRAY *sa;
    HRESULT hr = S_OK;
    LONG i;

    (void)flags;
    if (!names) return WBEM_E_INVALID_PARAMETER;
    if (!list) return WBEM_E_NOT_FOUND;
    if (!(sa = SafeArrayCreateVector( VT_BSTR, 0, list->count + cimtype ))) return E_OUTOFMEMORY;
    for (i = 0; i < (LONG)list->count && SUCCEEDED(hr); i++)
    {
        BSTR s = SysAllocString( list->items[i].name );
        hr = s ? SafeArrayPutElement( sa, &i, s ) : E_OUTOFMEMORY;
        SysFreeString( s );
    }
    if (SUCCEEDED(hr) && cimtype) hr = SafeArrayPutElement( sa, &i, (void *)L"CIMTYPE" );
    if (FAILED(hr))
    {
        SafeArrayDestroy( sa );
        return hr;
    }
    *names = sa;
    return S_OK;
}

static HRESULT WINAPI qualifier_set_BeginEnumeration( IWbemQualifierSet *iface, LONG flags )
{
    (void)flags;
    impl_from_IWbemQualifierSet( iface )->pos = 0;
    return S_OK;
}

static HRESULT WINAPI qualifier_set_Next( IWbemQualifierSet *iface, LONG flags, BSTR *name, VARIANT *val,
                                          LONG *flavor )
{
    struct qualifier_set *set = impl_from_IWbemQualifierSet( iface );
    struct property *p = NULL;
    struct qualifiers *list = qualifier_set_list( set, &p );
    const WCHAR *n;

    (void)flags;
    if (!list) return WBEM_E_NOT_FOUND;
    if (set->pos < list->count) n = list->items[set->pos].name;
    else if (p && set->pos == list->count && !qualifiers_find( list, L"CIMTYPE" )) n = L"CIMTYPE";
    else return WBEM_S_NO_MORE_DATA;
    set->pos++;
    if (name && !(*name = SysAllocString( n ))) return E_OUTOFMEMORY;
    return qualifier_set_Get( iface, n, 0, val, flavor );
}

static HRESULT WINAPI qualifier_set_EndEnumeration( IWbemQualifierSet *iface )
{
    impl_from_IWbemQualifierSet( iface )->pos = 0;
    return S_OK;
}

static const IWbemQualifierSetVtbl qualifier_set_vtbl =
{
    qualifier_set_QueryInterface, qualifier_set_AddRef, qualifier_set_Release, qualifier_set_Get,
    qualifier_set_Put, qualifier_set_Delete, qualifier_set_GetNames, qualifier_set_BeginEnumeration,
    qualifier_set_Next, qualifier_set_EndEnumeration
};

/* --- the store (under testwmi_cs) and its log -------------------------------------------- */

struct stored
{
    struct stored *next;
    WCHAR *key;                 /* a class's name or an instance's relative path */
    struct cim *obj;            /* the store's own copy */
};
static struct stored *stored_classes, *stored_instances;

#define LOG_MAX 256
static struct
{
    const char *method;
    LONG flags;
    WCHAR target[128];
    HRESULT hr;
} class_log[LOG_MAX];
static ULONG class_log_count;

static HRESULT classes_record( const char *method, LONG flags, const WCHAR *target, HRESULT hr )
{
    EnterCriticalSection( &testwmi_cs );
    if (class_log_count < LOG_MAX)
    {
        class_log[class_log_count].method = method;
        class_log[class_log_count].flags = flags;
        lstrcpynW( class_log[class_log_count].target, target ? target : L"", 128 );
        class_log[class_log_count].hr = hr;
        class_log_count++;
    }
    LeaveCriticalSection( &testwmi_cs );
    return hr;
}

static void stored_free( struct stored *s )
{
    while (s)
    {
        struct stored *next = s->next;
        free( s->key );
        IWbemClassObject_Release( &s->obj->IWbemClassObject_iface );
        free( s );
        s = next;
    }
}

void classes_clear( void )
{
    struct stored *cls, *inst;
    EnterCriticalSection( &testwmi_cs );
    cls = stored_classes;
    inst = stored_instances;
    stored_classes = stored_instances = NULL;
    class_log_count = 0;
    LeaveCriticalSection( &testwmi_cs );
    stored_free( cls );
    stored_free( inst );
}

static struct stored **stored_find( struct stored **list, const WCHAR *key )
{
    for (; *list && _wcsicmp( (*list)->key, key ); list = &(*list)->next);
    return list;
}

/* Whether O is CLS or derives from it (SHALLOW: is CLS or its direct child for classes). */
static BOOL cim_is_a( struct cim *o, const WCHAR *cls, BOOL shallow )
{
    ULONG i;
    if (!_wcsicmp( o->cls, cls )) return TRUE;
    for (i = 0; i < o->depth && (!shallow || (o->is_class && i < 1)); i++)
        if (!_wcsicmp( o->derivation[i], cls )) return TRUE;
    return FALSE;
}

/* Moves every entry of LIST that is (or derives from) CLS to *GONE. */
static void stored_take( struct stored **list, const WCHAR *cls, struct stored **gone )
{
    while (*list)
    {
        struct stored *s = *list;
        if (!cim_is_a( s->obj, cls, FALSE ))
        {
            list = &s->next;
            continue;
        }
        *list = s->next;
        s->next = *gone;
        *gone = s;
    }
}

static HRESULT stored_add( struct stored **at, const WCHAR *key, struct cim *obj )
{
    struct stored *s = calloc( 1, sizeof(*s) );
    if (!s || !(s->key = wdup( key )))
    {
        free( s );
        return E_OUTOFMEMORY;
    }
    s->obj = obj;
    IWbemClassObject_AddRef( &obj->IWbemClassObject_iface );
    *at = s;
    return S_OK;
}

/* Replaces what *AT holds by a copy of OBJ: the old copy goes to *GONE. */
static void stored_replace( struct stored *at, struct cim *obj, struct stored **gone )
{
    struct stored *old = calloc( 1, sizeof(*old) );
    IWbemClassObject_AddRef( &obj->IWbemClassObject_iface );
    if (!old)
    {
        IWbemClassObject_Release( &at->obj->IWbemClassObject_iface );
        at->obj = obj;
        return;
    }
    old->obj = at->obj;
    old->next = *gone;
    *gone = old;
    at->obj = obj;
}

BOOL classes_is_class( IWbemClassObject *obj )
{
    VARIANT v;
    BOOL is_class;
    VariantInit( &v );
    is_class = obj && SUCCEEDED(IWbemClassObject_Get( obj, L"__GENUS", 0, &v, NULL, NULL )) && V_VT( &v ) == VT_I4
               && V_I4( &v ) == WBEM_GENUS_CLASS;
    VariantClear( &v );
    return is_class;
}

static HRESULT classes_put_class( struct cim *copy, LONG flags )
{
    struct stored **at, *gone = NULL, *s;
    const WCHAR *name = copy->cls;
    size_t len = name ? wcslen( name ) : 0;
    HRESULT hr = S_OK;

    if (!len || name[0] == '_' || name[len - 1] == '_') return WBEM_E_INVALID_PARAMETER;
    EnterCriticalSection( &testwmi_cs );
    at = stored_find( &stored_classes, name );
    if (copy->depth && !*stored_find( &stored_classes, copy->derivation[0] )) hr = WBEM_E_INVALID_SUPERCLASS;
    else if (*at && (flags & WBEM_FLAG_CREATE_ONLY)) hr = WBEM_E_ALREADY_EXISTS;
    else if (!*at && (flags & WBEM_FLAG_UPDATE_ONLY)) hr = WBEM_E_NOT_FOUND;
    else if (*at)
    {
        for (s = stored_instances; s && SUCCEEDED(hr); s = s->next)
            if (cim_is_a( s->obj, name, FALSE ) && !(flags & WBEM_FLAG_UPDATE_FORCE_MODE))
                hr = WBEM_E_CLASS_HAS_INSTANCES;
        for (s = stored_classes; s && SUCCEEDED(hr); s = s->next)
            if (s != *at && cim_is_a( s->obj, name, FALSE )
                && !(flags & (WBEM_FLAG_UPDATE_SAFE_MODE | WBEM_FLAG_UPDATE_FORCE_MODE)))
                hr = WBEM_E_CLASS_HAS_CHILDREN;
        if (SUCCEEDED(hr)) stored_replace( *at, copy, &gone );
    }
    else hr = stored_add( at, name, copy );
    LeaveCriticalSection( &testwmi_cs );
    stored_free( gone );
    return hr;
}

static HRESULT classes_put_instance( struct cim *copy, LONG flags, WCHAR *path, size_t cap )
{
    struct stored **at, *gone = NULL;
    HRESULT hr;

    if (FAILED(hr = cim_relpath( copy, path, cap ))) return hr;
    EnterCriticalSection( &testwmi_cs );
    at = stored_find( &stored_instances, path );
    if (!*stored_find( &stored_classes, copy->cls )) hr = WBEM_E_INVALID_CLASS;
    else if (*at && (flags & WBEM_FLAG_CREATE_ONLY)) hr = WBEM_E_ALREADY_EXISTS;
    else if (!*at && (flags & WBEM_FLAG_UPDATE_ONLY)) hr = WBEM_E_NOT_FOUND;
    else if (*at) stored_replace( *at, copy, &gone );
    else hr = stored_add( at, path, copy );
    LeaveCriticalSection( &testwmi_cs );
    stored_free( gone );
    return hr;
}

/* PutClass or PutInstance, by the object's genus; *PATH: the class name or relative path. */
HRESULT classes_put( IWbemClassObject *obj, LONG flags, BSTR *path )
{
    struct cim *o = cim_from( obj ), *copy = NULL;
    WCHAR key[512] = L"";
    BOOL is_class = o && o->is_class;
    HRESULT hr;

    *path = NULL;
    /* Only this server's objects: anything else is not one of this namespace's. */
    if (!o) hr = WBEM_E_INVALID_OBJECT;
    else if (SUCCEEDED(hr = cim_copy( o, COPY_CLONE, &copy )))
    {
        if (is_class) hr = classes_put_class( copy, flags ), lstrcpynW( key, o->cls ? o->cls : L"", 512 );
        else hr = classes_put_instance( copy, flags, key, ARRAYSIZE(key) );
        IWbemClassObject_Release( &copy->IWbemClassObject_iface );
    }
    if (SUCCEEDED(hr) && !(*path = SysAllocString( key ))) hr = E_OUTOFMEMORY;
    return classes_record( is_class ? "PutClass" : "PutInstance", flags, key, hr );
}

/* "root\testclasses:Lw_Thing.Id=1" -> "Lw_Thing.Id=1" */
static const WCHAR *classes_relative( const WCHAR *path )
{
    const WCHAR *colon = wcschr( path, ':' );
    return colon ? colon + 1 : path;
}

static BOOL classes_is_class_path( const WCHAR *path )
{
    return !wcspbrk( classes_relative( path ), L".=" );
}

/* DeleteClass (the class, its subclasses and their instances) or DeleteInstance, by the path. */
HRESULT classes_delete( const WCHAR *path )
{
    struct stored **at, *gone = NULL;
    BOOL is_class;
    HRESULT hr = S_OK;

    if (!path || !*path) return WBEM_E_INVALID_PARAMETER;
    is_class = classes_is_class_path( path );
    path = classes_relative( path );
    EnterCriticalSection( &testwmi_cs );
    if (is_class)
    {
        if (!*stored_find( &stored_classes, path )) hr = WBEM_E_NOT_FOUND;
        else
        {
            stored_take( &stored_instances, path, &gone );
            stored_take( &stored_classes, path, &gone );
        }
    }
    else if (!*(at = stored_find( &stored_instances, path ))) hr = WBEM_E_NOT_FOUND;
    else
    {
        gone = *at;
        *at = gone->next;
        gone->next = NULL;
    }
    LeaveCriticalSection( &testwmi_cs );
    stored_free( gone );
    return classes_record( is_class ? "DeleteClass" : "DeleteInstance", 0, path, hr );
}

/* Copies of the classes (CLASSES) or instances under CLS (NULL: every class). */
static HRESULT classes_list( BOOL classes, const WCHAR *cls, BOOL shallow, struct objects *out )
{
    struct stored *s;
    HRESULT hr = S_OK;

    EnterCriticalSection( &testwmi_cs );
    if (cls && *cls && !*stored_find( &stored_classes, cls )) hr = WBEM_E_INVALID_CLASS;
    for (s = classes ? stored_classes : stored_instances; s && SUCCEEDED(hr); s = s->next)
    {
        IWbemClassObject *copy;
        if (cls && *cls && (!cim_is_a( s->obj, cls, shallow ) || (classes && !_wcsicmp( s->obj->cls, cls ))))
            continue;
        if (!classes && shallow && _wcsicmp( s->obj->cls, cls )) continue;
        hr = (copy = cim_clone_iface( s->obj )) ? objects_add( out, copy ) : E_OUTOFMEMORY;
    }
    LeaveCriticalSection( &testwmi_cs );
    return hr;
}

/* "SELECT * FROM Class" -> Class (into BUF), the only query this namespace answers. */
static BOOL classes_parse_query( const WCHAR *wql, WCHAR *buf, size_t cap )
{
    const WCHAR *p = wql;
    size_t n = 0;

    if (!p) return FALSE;
    while (*p == ' ') p++;
    if (_wcsnicmp( p, L"SELECT", 6 )) return FALSE;
    for (p += 6; *p == ' '; p++);
    if (*p++ != '*') return FALSE;
    while (*p == ' ') p++;
    if (_wcsnicmp( p, L"FROM ", 5 )) return FALSE;
    for (p += 5; *p == ' '; p++);
    while ((iswalnum( *p ) || *p == '_') && n + 1 < cap) buf[n++] = *p++;
    buf[n] = 0;
    while (*p == ' ') p++;
    return n && !*p;
}

HRESULT classes_collect( int kind, const WCHAR *a, LONG flags, struct objects *out )
{
    static const char *const methods[] = { "ExecQuery", "CreateInstanceEnum", "CreateClassEnum", "GetObject",
                                           "ExecMethod" };
    BOOL shallow = (flags & WBEM_FLAG_SHALLOW) != 0;
    IWbemClassObject *obj = NULL;
    struct stored *s;
    struct cim *empty;
    WCHAR cls[256];
    HRESULT hr;

    switch (kind)
    {
    case COLLECT_QUERY:
        hr = classes_parse_query( a, cls, ARRAYSIZE(cls) ) ? classes_list( FALSE, cls, FALSE, out )
                                                           : (HRESULT)WBEM_E_INVALID_QUERY;
        break;
    case COLLECT_INSTANCES:
        hr = a && *a ? classes_list( FALSE, a, shallow, out ) : (HRESULT)WBEM_E_INVALID_CLASS;
        break;
    case COLLECT_CLASSES:
        hr = classes_list( TRUE, a, shallow, out );
        break;
    case COLLECT_GET:
        if (!a || !*a)
        {
            /* A new, empty class for the client to define (IWbemServices::GetObject). */
            hr = (empty = cim_alloc( TRUE )) ? objects_add( out, &empty->IWbemClassObject_iface ) : E_OUTOFMEMORY;
            break;
        }
        EnterCriticalSection( &testwmi_cs );
        s = *stored_find( classes_is_class_path( a ) ? &stored_classes : &stored_instances, classes_relative( a ) );
        obj = s ? cim_clone_iface( s->obj ) : NULL;
        LeaveCriticalSection( &testwmi_cs );
        hr = obj ? objects_add( out, obj ) : s ? E_OUTOFMEMORY : (HRESULT)WBEM_E_NOT_FOUND;
        break;
    default:
        hr = WBEM_E_NOT_SUPPORTED;
    }
    if (FAILED(hr)) objects_free( out );
    return classes_record( methods[kind], flags, a, hr );
}

/* testwmi.class_log() --> { { method =, flags =, target =, hresult = }, ... } since the last reset. */
int classes_push_log( lua_State *L )
{
    ULONG i, n;
    char target[512];

    EnterCriticalSection( &testwmi_cs );
    n = class_log_count;
    lua_createtable( L, (int)n, 0 );
    for (i = 0; i < n; i++)
    {
        lua_createtable( L, 0, 4 );
        lua_pushstring( L, class_log[i].method );
        lua_setfield( L, -2, "method" );
        lua_pushinteger( L, class_log[i].flags );
        lua_setfield( L, -2, "flags" );
        WideCharToMultiByte( CP_UTF8, 0, class_log[i].target, -1, target, sizeof(target), NULL, NULL );
        lua_pushstring( L, target );
        lua_setfield( L, -2, "target" );
        lua_pushinteger( L, (ULONG)class_log[i].hr );
        lua_setfield( L, -2, "hresult" );
        lua_rawseti( L, -2, (lua_Integer)i + 1 );
    }
    LeaveCriticalSection( &testwmi_cs );
    return 1;
}

/*
 * Objects the test WMI server makes itself: the extended error object of a
 * failed call and the event objects of a subscription. Read-only property bags
 * with a class name, enough for a client to read them as it reads any instance.
 *
 * Wine has no __ExtendedStatus class (GetObject answers WBEM_E_NOT_FOUND), so the
 * error object is made here with the properties Windows gives it: Description,
 * Operation, ParameterInfo, ProviderName and StatusCode.
 */
#include "testwmi.h"

#include <lua.h>

#include <stdio.h>
#include <stdlib.h>
#include <wchar.h>

struct bag
{
    IWbemClassObject IWbemClassObject_iface;
    LONG refs;
    WCHAR *cls;
    const WCHAR *super;     /* a static string, or NULL */
    struct bag_prop *props;
    ULONG count;
    ULONG pos;              /* BeginEnumeration / Next */
};

static inline struct bag *impl_from_IWbemClassObject( IWbemClassObject *iface )
{
    return CONTAINING_RECORD( iface, struct bag, IWbemClassObject_iface );
}

static HRESULT WINAPI bag_QueryInterface( IWbemClassObject *iface, REFIID riid, void **obj )
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

static ULONG WINAPI bag_AddRef( IWbemClassObject *iface )
{
    return InterlockedIncrement( &impl_from_IWbemClassObject( iface )->refs );
}

static void bag_free_props( struct bag_prop *props, ULONG n )
{
    ULONG i;
    for (i = 0; i < n; i++) VariantClear( &props[i].value );
}

static ULONG WINAPI bag_Release( IWbemClassObject *iface )
{
    struct bag *bag = impl_from_IWbemClassObject( iface );
    LONG refs = InterlockedDecrement( &bag->refs );

    if (!refs)
    {
        bag_free_props( bag->props, bag->count );
        free( bag->props );
        free( bag->cls );
        free( bag );
        testwmi_count( STAT_OBJECTS, -1 );
    }
    return refs;
}

static HRESULT WINAPI bag_GetQualifierSet( IWbemClassObject *iface, IWbemQualifierSet **set )
{
    (void)iface;
    if (set) *set = NULL;
    return WBEM_E_NOT_SUPPORTED;
}

static HRESULT bag_system( struct bag *bag, const WCHAR *name, VARIANT *val, CIMTYPE *type )
{
    if (!_wcsicmp( name, L"__CLASS" ))
    {
        if (type) *type = CIM_STRING;
        if (val)
        {
            V_VT( val ) = VT_BSTR;
            if (!(V_BSTR( val ) = SysAllocString( bag->cls ))) return E_OUTOFMEMORY;
        }
        return S_OK;
    }
    if (!_wcsicmp( name, L"__GENUS" ))
    {
        if (type) *type = CIM_SINT32;
        if (val)
        {
            V_VT( val ) = VT_I4;
            V_I4( val ) = WBEM_GENUS_INSTANCE;
        }
        return S_OK;
    }
    if (!_wcsicmp( name, L"__SUPERCLASS" ))
    {
        if (type) *type = CIM_STRING;
        if (val)
        {
            V_VT( val ) = VT_NULL;
            if (bag->super && (V_BSTR( val ) = SysAllocString( bag->super ))) V_VT( val ) = VT_BSTR;
        }
        return S_OK;
    }
    /* Neither an error object nor an event has a path. */
    if (!_wcsicmp( name, L"__RELPATH" ) || !_wcsicmp( name, L"__PATH" ) || !_wcsicmp( name, L"__SERVER" )
        || !_wcsicmp( name, L"__NAMESPACE" ))
    {
        if (type) *type = CIM_STRING;
        if (val) V_VT( val ) = VT_NULL;
        return S_OK;
    }
    return WBEM_E_NOT_FOUND;
}

static HRESULT WINAPI bag_Get( IWbemClassObject *iface, LPCWSTR name, LONG flags, VARIANT *val, CIMTYPE *type,
                               LONG *flavor )
{
    struct bag *bag = impl_from_IWbemClassObject( iface );
    ULONG i;

    (void)flags;
    if (!name) return WBEM_E_INVALID_PARAMETER;
    if (flavor) *flavor = WBEM_FLAVOR_ORIGIN_LOCAL;
    if (val) VariantInit( val );
    if (name[0] == '_' && name[1] == '_') return bag_system( bag, name, val, type );
    for (i = 0; i < bag->count; i++)
    {
        if (_wcsicmp( bag->props[i].name, name )) continue;
        if (type) *type = bag->props[i].type;
        return val ? VariantCopy( val, &bag->props[i].value ) : S_OK;
    }
    return WBEM_E_NOT_FOUND;
}

static HRESULT WINAPI bag_Put( IWbemClassObject *iface, LPCWSTR name, LONG flags, VARIANT *val, CIMTYPE type )
{
    (void)iface; (void)name; (void)flags; (void)val; (void)type;
    return WBEM_E_READ_ONLY;
}

static HRESULT WINAPI bag_Delete( IWbemClassObject *iface, LPCWSTR name )
{
    (void)iface; (void)name;
    return WBEM_E_READ_ONLY;
}

static HRESULT WINAPI bag_GetNames( IWbemClassObject *iface, LPCWSTR qualifier, LONG flags, VARIANT *val,
                                    SAFEARRAY **names )
{
    struct bag *bag = impl_from_IWbemClassObject( iface );
    static const WCHAR *const system[] = { L"__CLASS", L"__GENUS" };
    BOOL sys = (flags & WBEM_FLAG_SYSTEM_ONLY) != 0, nonsys = (flags & WBEM_FLAG_NONSYSTEM_ONLY) != 0;
    ULONG n = 0, i;
    LONG at = 0;
    SAFEARRAY *sa;

    (void)qualifier; (void)val;
    if (!names) return WBEM_E_INVALID_PARAMETER;
    if (!nonsys) n += ARRAYSIZE(system);
    if (!sys) n += bag->count;
    if (!(sa = SafeArrayCreateVector( VT_BSTR, 0, n ))) return E_OUTOFMEMORY;
    for (i = 0; !nonsys && i < ARRAYSIZE(system); i++, at++)
    {
        BSTR s = SysAllocString( system[i] );
        SafeArrayPutElement( sa, &at, s );
        SysFreeString( s );
    }
    for (i = 0; !sys && i < bag->count; i++, at++)
    {
        BSTR s = SysAllocString( bag->props[i].name );
        SafeArrayPutElement( sa, &at, s );
        SysFreeString( s );
    }
    *names = sa;
    return S_OK;
}

static HRESULT WINAPI bag_BeginEnumeration( IWbemClassObject *iface, LONG flags )
{
    (void)flags;
    impl_from_IWbemClassObject( iface )->pos = 0;
    return S_OK;
}

static HRESULT WINAPI bag_Next( IWbemClassObject *iface, LONG flags, BSTR *name, VARIANT *val, CIMTYPE *type,
                                LONG *flavor )
{
    struct bag *bag = impl_from_IWbemClassObject( iface );
    struct bag_prop *p;

    (void)flags;
    if (bag->pos >= bag->count) return WBEM_S_NO_MORE_DATA;
    p = &bag->props[bag->pos++];
    if (name && !(*name = SysAllocString( p->name ))) return E_OUTOFMEMORY;
    if (type) *type = p->type;
    if (flavor) *flavor = WBEM_FLAVOR_ORIGIN_LOCAL;
    if (val)
    {
        VariantInit( val );
        return VariantCopy( val, &p->value );
    }
    return S_OK;
}

static HRESULT WINAPI bag_EndEnumeration( IWbemClassObject *iface )
{
    impl_from_IWbemClassObject( iface )->pos = 0;
    return S_OK;
}

static HRESULT WINAPI bag_GetPropertyQualifierSet( IWbemClassObject *iface, LPCWSTR prop, IWbemQualifierSet **set )
{
    (void)iface; (void)prop;
    if (set) *set = NULL;
    return WBEM_E_NOT_SUPPORTED;
}

static HRESULT WINAPI bag_Clone( IWbemClassObject *iface, IWbemClassObject **copy )
{
    struct bag *bag = impl_from_IWbemClassObject( iface );
    struct bag_prop *props;
    ULONG i;

    if (!copy) return WBEM_E_INVALID_PARAMETER;
    *copy = NULL;
    if (!(props = calloc( bag->count + 1, sizeof(*props) ))) return E_OUTOFMEMORY;
    for (i = 0; i < bag->count; i++)
    {
        props[i].name = bag->props[i].name;
        props[i].type = bag->props[i].type;
        VariantInit( &props[i].value );
        VariantCopy( &props[i].value, &bag->props[i].value );
    }
    *copy = bag_create( bag->cls, props, bag->count );
    free( props );
    return *copy ? S_OK : E_OUTOFMEMORY;
}

/* MOF text, as GetObjectText gives it. */
static HRESULT WINAPI bag_GetObjectText( IWbemClassObject *iface, LONG flags, BSTR *text )
{
    struct bag *bag = impl_from_IWbemClassObject( iface );
    WCHAR buf[4096];
    size_t len;
    ULONG i;

    (void)flags;
    if (!text) return WBEM_E_INVALID_PARAMETER;
    len = swprintf( buf, ARRAYSIZE(buf), L"\ninstance of %ls\n{\n", bag->cls );
    for (i = 0; i < bag->count && len < ARRAYSIZE(buf) - 8; i++)
    {
        VARIANT v;
        VariantInit( &v );
        if (V_VT( &bag->props[i].value ) == VT_NULL || FAILED(VariantChangeType( &v, &bag->props[i].value, 0, VT_BSTR )))
            continue;
        len += swprintf( buf + len, ARRAYSIZE(buf) - len, V_VT( &bag->props[i].value ) == VT_BSTR
                         ? L"\t%ls = \"%ls\";\n" : L"\t%ls = %ls;\n", bag->props[i].name, V_BSTR( &v ) );
        VariantClear( &v );
    }
    if (len < ARRAYSIZE(buf) - 4) len += swprintf( buf + len, ARRAYSIZE(buf) - len, L"};\n" );
    return (*text = SysAllocString( buf )) ? S_OK : E_OUTOFMEMORY;
}

static HRESULT WINAPI bag_SpawnDerivedClass( IWbemClassObject *iface, LONG flags, IWbemClassObject **out )
{
    (void)iface; (void)flags;
    if (out) *out = NULL;
    return WBEM_E_INCOMPLETE_CLASS;
}

static HRESULT WINAPI bag_SpawnInstance( IWbemClassObject *iface, LONG flags, IWbemClassObject **out )
{
    (void)iface; (void)flags;
    if (out) *out = NULL;
    return WBEM_E_INCOMPLETE_CLASS;
}

static const IWbemClassObjectVtbl bag_vtbl;
static volatile LONG bag_compare_calls, bag_compare_flags;

/* IWbemClassObject::CompareTo as Microsoft documents it: WBEM_S_SAME when the
 * objects are alike under FLAGS, WBEM_S_DIFFERENT when not. A bag has no
 * qualifiers, flavors nor source, so those flags change nothing; the class name
 * counts unless WBEM_FLAG_IGNORE_CLASS, strings are compared case-insensitively
 * under WBEM_FLAG_IGNORE_CASE. An object that is no bag is different. Each call
 * and its flags are recorded (testwmi.compares()). */
static HRESULT WINAPI bag_CompareTo( IWbemClassObject *iface, LONG flags, IWbemClassObject *other )
{
    struct bag *bag = impl_from_IWbemClassObject( iface ), *them;
    ULONG i;

    InterlockedIncrement( &bag_compare_calls );
    InterlockedExchange( &bag_compare_flags, flags );
    if (!other) return WBEM_E_INVALID_PARAMETER;
    if (other->lpVtbl != &bag_vtbl) return WBEM_S_DIFFERENT;
    them = impl_from_IWbemClassObject( other );
    if (them->count != bag->count) return WBEM_S_DIFFERENT;
    if (!(flags & WBEM_FLAG_IGNORE_CLASS) && _wcsicmp( them->cls, bag->cls )) return WBEM_S_DIFFERENT;
    for (i = 0; i < bag->count; i++)
    {
        VARIANT *a = &bag->props[i].value, *b = &them->props[i].value;
        if (_wcsicmp( bag->props[i].name, them->props[i].name ) || bag->props[i].type != them->props[i].type)
            return WBEM_S_DIFFERENT;
        if (V_VT( a ) == VT_NULL || V_VT( b ) == VT_NULL)
        {
            if (V_VT( a ) != V_VT( b )) return WBEM_S_DIFFERENT;
        }
        else if (VarCmp( a, b, LOCALE_INVARIANT, flags & WBEM_FLAG_IGNORE_CASE ? NORM_IGNORECASE : 0 ) != VARCMP_EQ)
            return WBEM_S_DIFFERENT;
    }
    return WBEM_S_SAME;
}

/* testwmi.compares() --> CompareTo calls on the server's objects so far, and the
 * flags of the last one (-1: none yet). */
int bag_compares( lua_State *L )
{
    lua_pushinteger( L, InterlockedCompareExchange( &bag_compare_calls, 0, 0 ) );
    lua_pushinteger( L, bag_compare_calls ? InterlockedCompareExchange( &bag_compare_flags, 0, 0 ) : -1 );
    return 2;
}

static HRESULT WINAPI bag_GetPropertyOrigin( IWbemClassObject *iface, LPCWSTR name, BSTR *cls )
{
    struct bag *bag = impl_from_IWbemClassObject( iface );
    (void)name;
    if (!cls) return WBEM_E_INVALID_PARAMETER;
    return (*cls = SysAllocString( bag->cls )) ? S_OK : E_OUTOFMEMORY;
}

static HRESULT WINAPI bag_InheritsFrom( IWbemClassObject *iface, LPCWSTR ancestor )
{
    struct bag *bag = impl_from_IWbemClassObject( iface );
    return bag->super && ancestor && !_wcsicmp( ancestor, bag->super ) ? WBEM_S_NO_ERROR : WBEM_S_FALSE;
}

/* The methods of an object that has none (a bag; a stored class: testwmi_classes.c). */
HRESULT WINAPI nomethod_GetMethod( IWbemClassObject *iface, LPCWSTR name, LONG flags, IWbemClassObject **in,
                                     IWbemClassObject **out )
{
    (void)iface; (void)name; (void)flags;
    if (in) *in = NULL;
    if (out) *out = NULL;
    return WBEM_E_NOT_FOUND;
}

static HRESULT WINAPI bag_PutMethod( IWbemClassObject *iface, LPCWSTR name, LONG flags, IWbemClassObject *in,
                                     IWbemClassObject *out )
{
    (void)iface; (void)name; (void)flags; (void)in; (void)out;
    return WBEM_E_READ_ONLY;
}

static HRESULT WINAPI bag_DeleteMethod( IWbemClassObject *iface, LPCWSTR name )
{
    (void)iface; (void)name;
    return WBEM_E_READ_ONLY;
}

HRESULT WINAPI nomethod_BeginMethodEnumeration( IWbemClassObject *iface, LONG flags )
{
    (void)iface; (void)flags;
    return S_OK;
}

HRESULT WINAPI nomethod_NextMethod( IWbemClassObject *iface, LONG flags, BSTR *name, IWbemClassObject **in,
                                      IWbemClassObject **out )
{
    (void)iface; (void)flags;
    if (name) *name = NULL;
    if (in) *in = NULL;
    if (out) *out = NULL;
    return WBEM_S_NO_MORE_DATA;
}

HRESULT WINAPI nomethod_EndMethodEnumeration( IWbemClassObject *iface )
{
    (void)iface;
    return S_OK;
}

HRESULT WINAPI nomethod_GetMethodQualifierSet( IWbemClassObject *iface, LPCWSTR method, IWbemQualifierSet **set )
{
    (void)iface; (void)method;
    if (set) *set = NULL;
    return WBEM_E_NOT_FOUND;
}

HRESULT WINAPI nomethod_GetMethodOrigin( IWbemClassObject *iface, LPCWSTR method, BSTR *cls )
{
    (void)iface; (void)method;
    if (cls) *cls = NULL;
    return WBEM_E_NOT_FOUND;
}

static const IWbemClassObjectVtbl bag_vtbl =
{
    bag_QueryInterface,
    bag_AddRef,
    bag_Release,
    bag_GetQualifierSet,
    bag_Get,
    bag_Put,
    bag_Delete,
    bag_GetNames,
    bag_BeginEnumeration,
    bag_Next,
    bag_EndEnumeration,
    bag_GetPropertyQualifierSet,
    bag_Clone,
    bag_GetObjectText,
    bag_SpawnDerivedClass,
    bag_SpawnInstance,
    bag_CompareTo,
    bag_GetPropertyOrigin,
    bag_InheritsFrom,
    nomethod_GetMethod,
    bag_PutMethod,
    bag_DeleteMethod,
    nomethod_BeginMethodEnumeration,
    nomethod_NextMethod,
    nomethod_EndMethodEnumeration,
    nomethod_GetMethodQualifierSet,
    nomethod_GetMethodOrigin
};

/* Names are static strings; the values are taken (cleared on failure too). */
IWbemClassObject *bag_create( const WCHAR *cls, struct bag_prop *props, ULONG n )
{
    struct bag *bag = calloc( 1, sizeof(*bag) );

    if (!bag || !(bag->cls = _wcsdup( cls )) || !(bag->props = calloc( n + 1, sizeof(*props) )))
    {
        if (bag) free( bag->cls );
        free( bag );
        bag_free_props( props, n );
        return NULL;
    }
    bag->IWbemClassObject_iface.lpVtbl = &bag_vtbl;
    bag->refs = 1;
    memcpy( bag->props, props, n * sizeof(*props) );
    bag->count = n;
    testwmi_count( STAT_OBJECTS, 1 );
    return &bag->IWbemClassObject_iface;
}

static void bag_string( struct bag_prop *p, const WCHAR *name, const WCHAR *value )
{
    p->name = name;
    p->type = CIM_STRING;
    VariantInit( &p->value );
    if (value && (V_BSTR( &p->value ) = SysAllocString( value ))) V_VT( &p->value ) = VT_BSTR;
    else V_VT( &p->value ) = VT_NULL;
}

IWbemClassObject *bag_node( void )
{
    struct bag_prop props[3];

    bag_string( &props[0], L"Name", L"node" );
    props[1].name = L"Port";
    props[1].type = CIM_UINT32;
    V_VT( &props[1].value ) = VT_I4;
    V_I4( &props[1].value ) = 135;
    bag_string( &props[2], L"Host", L"from-the-class" );
    return bag_create( L"TestWmi_Node", props, ARRAYSIZE(props) );
}

IWbemClassObject *bag_status( HRESULT hr, const WCHAR *operation, const WCHAR *param, BOOL subclass )
{
    struct bag_prop props[5];
    IWbemClassObject *obj;
    WCHAR text[96];

    swprintf( text, ARRAYSIZE(text), L"%ls failed with 0x%08lX", operation, (unsigned long)(DWORD)hr );
    bag_string( &props[0], L"Description", text );
    bag_string( &props[1], L"Operation", operation );
    bag_string( &props[2], L"ParameterInfo", param );
    bag_string( &props[3], L"ProviderName", L"testwmi" );
    props[4].name = L"StatusCode";
    props[4].type = CIM_UINT32;
    V_VT( &props[4].value ) = VT_I4;    /* uint32 travels as VT_I4, as WMI sends it */
    V_I4( &props[4].value ) = hr;
    /* Win32_PrivilegesStatus: a subclass of __ExtendedStatus that Windows sends. */
    obj = bag_create( subclass ? L"Win32_PrivilegesStatus" : L"__ExtendedStatus", props, ARRAYSIZE(props) );
    if (obj && subclass) impl_from_IWbemClassObject( obj )->super = L"__ExtendedStatus";
    return obj;
}

/*
 * Classes the test WMI server describes itself, with the qualifiers Wine leaves
 * out: Wine's qualifier sets are empty, its GetNames(WBEM_FLAG_KEYS_ONLY) and
 * GetPropertyOrigin are not implemented, and its Win32_Process.Create lacks
 * ProcessStartupInformation. Their MOF is taken from Microsoft's published class
 * docs (Win32_Service, Win32_BaseService's method return values, Win32_Process),
 * reduced to a few properties and methods:
 *
 *   TestWmi_Service  (as Win32_Service): key Name; StartService, StopService with
 *                    ValueMap/Values, ChangeStartMode (a parameter with
 *                    ValueMap/Values), static Create (12 parameters). Instances
 *                    "TestRunning" and "TestStopped"; StopService of a stopped
 *                    service returns 6 ("Service Not Active"), StartService of a
 *                    running one 10 ("Service Already Running"), otherwise 0. The
 *                    services never change state.
 *   TestWmi_Process  (as Win32_Process): key Handle; static Create(CommandLine,
 *                    CurrentDirectory, ProcessStartupInformation) => (ProcessId).
 *   TestWmi_Pair     a class with two keys (Antecedent, Dependent), as an association.
 *
 * The contract followed: IWbemClassObject and IWbemQualifierSet (the SDK pages),
 * [MS-WMI] 2.2.4.2 (qualifier flavors: an instance carries the class's qualifiers
 * that propagate to instances, marked WBEM_FLAVOR_ORIGIN_PROPAGATED), and
 * WBEM_FLAG_USE_AMENDED_QUALIFIERS: amended qualifiers (Description, Values: the
 * localizable text, flavor WBEM_FLAVOR_AMENDED) are in an object only when the
 * call that gave it passed the flag; without it they are left out, as Windows does.
 * A method's parameters are listed by GetNames alphabetically in TestWmi_Service's
 * Create, so that only their ID qualifiers give the declared order.
 */
#include "testwmi.h"

#include <stdlib.h>
#include <wchar.h>

/* --- the descriptions ---------------------------------------------------------------- */

enum qual_kind { Q_BOOL, Q_INT, Q_STR, Q_STRS };
struct qual
{
    const WCHAR *name;
    enum qual_kind kind;
    LONG i;
    const WCHAR *s;
    const WCHAR *const *list;       /* NULL-ended */
    LONG flavor;
};
#define INST WBEM_FLAVOR_FLAG_PROPAGATE_TO_INSTANCE
#define SUB WBEM_FLAVOR_FLAG_PROPAGATE_TO_DERIVED_CLASS
#define AMENDED (WBEM_FLAVOR_AMENDED | SUB)
#define QBOOL( n, f ) { n, Q_BOOL, 1, NULL, NULL, f }
#define QINT( n, v, f ) { n, Q_INT, v, NULL, NULL, f }
#define QSTR( n, v, f ) { n, Q_STR, 0, v, NULL, f }
#define QSTRS( n, v, f ) { n, Q_STRS, 0, NULL, v, f }
#define QEND { NULL, 0, 0, NULL, NULL, 0 }

struct prop
{
    const WCHAR *name;
    CIMTYPE type;
    const WCHAR *origin;
    const struct qual *quals;
};
struct method
{
    const WCHAR *name;
    const struct qual *quals;
    const struct cls *in, *out;     /* __PARAMETERS classes, NULL: none */
};
struct cls
{
    const WCHAR *name, *super;
    const WCHAR *const *derivation;
    const struct qual *quals;
    const struct prop *props;
    ULONG nprops;
    const struct method *methods;
    ULONG nmethods;
};

/* Win32_BaseService's return values ("Win32_BaseService class", StartService and StopService). */
static const WCHAR *const service_valuemap[] = { L"0", L"1", L"2", L"3", L"4", L"5", L"6", L"7", L"8", L"9", L"10",
    L"11", L"12", L"13", L"14", L"15", L"16", L"17", L"18", L"19", L"20", L"21", L"22", L"23", L"24", L"..", NULL };
static const WCHAR *const service_values[] = { L"Success", L"Not Supported", L"Access Denied",
    L"Dependent Services Running", L"Invalid Service Control", L"Service Cannot Accept Control",
    L"Service Not Active", L"Service Request Timeout", L"Unknown Failure", L"Path Not Found",
    L"Service Already Running", L"Service Database Locked", L"Service Dependency Deleted",
    L"Service Dependency Failure", L"Service Disabled", L"Service Logon Failed", L"Service Marked For Deletion",
    L"Service No Thread", L"Status Circular Dependency", L"Status Duplicate Name", L"Status Invalid Name",
    L"Status Invalid Parameter", L"Status Invalid Service Account", L"Status Service Exists",
    L"Service Already Paused", L"Other", NULL };
static const WCHAR *const start_modes[] = { L"Boot", L"System", L"Automatic", L"Manual", L"Disabled", NULL };
static const WCHAR *const process_valuemap[] = { L"0", L"2", L"3", L"8", L"9", L"21", L"..", NULL };
static const WCHAR *const process_values[] = { L"Successful Completion", L"Access Denied",
    L"Insufficient Privilege", L"Unknown failure", L"Path Not Found", L"Invalid Parameter", L"Other", NULL };
static const WCHAR *const service_derivation[] = { L"Win32_BaseService", L"CIM_Service", L"CIM_LogicalElement",
    L"CIM_ManagedSystemElement", NULL };
static const WCHAR *const process_derivation[] = { L"CIM_Process", L"CIM_LogicalElement",
    L"CIM_ManagedSystemElement", NULL };
static const WCHAR *const no_derivation[] = { NULL };

#define PARAM_QUALS( id, dir, cimtype ) { QBOOL( dir, INST ), QINT( L"ID", id, INST ), \
    QSTR( L"CIMTYPE", cimtype, INST ), QEND }
static const struct qual return_quals[] = { QBOOL( L"out", INST ), QSTR( L"CIMTYPE", L"uint32", INST ), QEND };
static const struct prop return_value[] = { { L"ReturnValue", CIM_UINT32, L"__PARAMETERS", return_quals } };
static const struct cls returns_uint32 = { L"__PARAMETERS", NULL, no_derivation, NULL, return_value, 1, NULL, 0 };

static const struct qual start_mode_quals[] = { QBOOL( L"In", INST ), QINT( L"ID", 0, INST ),
    QSTR( L"CIMTYPE", L"string", INST ), QSTRS( L"ValueMap", start_modes, INST ), QSTRS( L"Values", start_modes, INST | AMENDED ), QEND };
static const struct prop change_start_mode_in[] = { { L"StartMode", CIM_STRING, L"__PARAMETERS", start_mode_quals } };
static const struct cls change_start_mode_args = { L"__PARAMETERS", NULL, no_derivation, NULL, change_start_mode_in, 1, NULL, 0 };

/* Win32_Service.Create's parameters, alphabetically: GetNames' order is not the declared one. */
static const struct qual q_desktop[] = PARAM_QUALS( 6, L"In", L"boolean" );
static const struct qual q_display[] = PARAM_QUALS( 1, L"In", L"string" );
static const struct qual q_error[] = PARAM_QUALS( 4, L"In", L"uint8" );
static const struct qual q_group[] = PARAM_QUALS( 9, L"In", L"string" );
static const struct qual q_group_deps[] = PARAM_QUALS( 10, L"In", L"string" );
static const struct qual q_name[] = PARAM_QUALS( 0, L"In", L"string" );
static const struct qual q_path[] = PARAM_QUALS( 2, L"In", L"string" );
static const struct qual q_deps[] = PARAM_QUALS( 11, L"In", L"string" );
static const struct qual q_type[] = PARAM_QUALS( 3, L"In", L"uint8" );
static const struct qual q_mode[] = PARAM_QUALS( 5, L"In", L"string" );
static const struct qual q_start_name[] = PARAM_QUALS( 7, L"In", L"string" );
static const struct qual q_password[] = PARAM_QUALS( 8, L"In", L"string" );
static const struct prop service_create_in[] = {
    { L"DesktopInteract", CIM_BOOLEAN, L"__PARAMETERS", q_desktop },
    { L"DisplayName", CIM_STRING, L"__PARAMETERS", q_display },
    { L"ErrorControl", CIM_UINT8, L"__PARAMETERS", q_error },
    { L"LoadOrderGroup", CIM_STRING, L"__PARAMETERS", q_group },
    { L"LoadOrderGroupDependencies", CIM_STRING | CIM_FLAG_ARRAY, L"__PARAMETERS", q_group_deps },
    { L"Name", CIM_STRING, L"__PARAMETERS", q_name },
    { L"PathName", CIM_STRING, L"__PARAMETERS", q_path },
    { L"ServiceDependencies", CIM_STRING | CIM_FLAG_ARRAY, L"__PARAMETERS", q_deps },
    { L"ServiceType", CIM_UINT8, L"__PARAMETERS", q_type },
    { L"StartMode", CIM_STRING, L"__PARAMETERS", q_mode },
    { L"StartName", CIM_STRING, L"__PARAMETERS", q_start_name },
    { L"StartPassword", CIM_STRING, L"__PARAMETERS", q_password },
};
static const struct cls service_create_args = { L"__PARAMETERS", NULL, no_derivation, NULL, service_create_in,
    ARRAYSIZE(service_create_in), NULL, 0 };

static const struct qual service_method_quals[] = { QBOOL( L"Implemented", INST ),
    QSTRS( L"ValueMap", service_valuemap, INST ), QSTRS( L"Values", service_values, INST | AMENDED ),
    QSTR( L"Description", L"The StopService method places the service in the stopped state.", AMENDED ), QEND };
static const struct qual start_quals[] = { QBOOL( L"Implemented", INST ),
    QSTRS( L"ValueMap", service_valuemap, INST ), QSTRS( L"Values", service_values, INST | AMENDED ), QEND };
static const struct qual create_quals[] = { QBOOL( L"Static", INST ), QBOOL( L"Implemented", INST ),
    QSTRS( L"ValueMap", service_valuemap, INST ), QSTRS( L"Values", service_values, INST | AMENDED ), QEND };
static const struct method service_methods[] = {
    { L"StartService", start_quals, NULL, &returns_uint32 },
    { L"StopService", service_method_quals, NULL, &returns_uint32 },
    { L"ChangeStartMode", start_quals, &change_start_mode_args, &returns_uint32 },
    { L"Create", create_quals, &service_create_args, &returns_uint32 },
};

static const struct qual q_key_name[] = { QBOOL( L"key", INST | SUB | WBEM_FLAVOR_NOT_OVERRIDABLE ),
    QBOOL( L"read", INST ), QSTR( L"CIMTYPE", L"string", INST ), QINT( L"MaxLen", 256, INST ),
    QSTR( L"Description", L"The Name property uniquely identifies the service.", AMENDED ), QEND };
static const struct qual q_read_string[] = { QBOOL( L"read", INST ), QSTR( L"CIMTYPE", L"string", INST ), QEND };
static const WCHAR *const states[] = { L"Stopped", L"Start Pending", L"Stop Pending", L"Running",
    L"Continue Pending", L"Pause Pending", L"Paused", L"Unknown", NULL };
static const struct qual q_state[] = { QBOOL( L"read", INST ), QSTR( L"CIMTYPE", L"string", INST ),
    QSTRS( L"ValueMap", states, INST ), QEND };
static const struct qual q_read_bool[] = { QBOOL( L"read", INST ), QSTR( L"CIMTYPE", L"boolean", INST ), QEND };
static const struct qual q_read_uint32[] = { QBOOL( L"read", INST ), QSTR( L"CIMTYPE", L"uint32", INST ), QEND };
static const struct qual q_datetime[] = { QBOOL( L"read", INST ), QSTR( L"CIMTYPE", L"datetime", INST ), QEND };
static const struct qual q_write_string[] = { QBOOL( L"read", INST ), QBOOL( L"write", INST ),
    QSTR( L"CIMTYPE", L"string", INST ), QEND };
static const struct prop service_props[] = {
    { L"Name", CIM_STRING, L"CIM_ManagedSystemElement", q_key_name },
    { L"DisplayName", CIM_STRING, L"Win32_BaseService", q_write_string },
    { L"State", CIM_STRING, L"Win32_BaseService", q_state },
    { L"Started", CIM_BOOLEAN, L"CIM_Service", q_read_bool },
    { L"StartMode", CIM_STRING, L"Win32_BaseService", q_read_string },
    { L"ProcessId", CIM_UINT32, L"Win32_BaseService", q_read_uint32 },
    { L"InstallDate", CIM_DATETIME, L"CIM_ManagedSystemElement", q_datetime },
};
static const struct qual service_quals[] = { QBOOL( L"dynamic", INST ), QSTR( L"provider", L"CIMWin32", INST ),
    QSTR( L"UUID", L"{8502C4D9-5FBB-11D2-AAC1-006008C78BC7}", INST ), QINT( L"Locale", 1033, INST | AMENDED ),
    QSTR( L"Description", L"The Win32_Service class represents a service on a computer system running Windows.",
          AMENDED ), QEND };
static const struct cls service_class = { L"TestWmi_Service", L"Win32_BaseService", service_derivation,
    service_quals, service_props, ARRAYSIZE(service_props), service_methods, ARRAYSIZE(service_methods) };

/* Win32_Process.Create: "uint32 Create(string CommandLine, string CurrentDirectory,
 * Win32_ProcessStartup ProcessStartupInformation, uint32 ProcessId)". */
static const struct qual q_command_line[] = PARAM_QUALS( 0, L"In", L"string" );
static const struct qual q_directory[] = PARAM_QUALS( 1, L"In", L"string" );
static const struct qual q_startup[] = PARAM_QUALS( 2, L"In", L"object:Win32_ProcessStartup" );
static const struct qual q_process_id[] = PARAM_QUALS( 3, L"Out", L"uint32" );
static const struct prop process_create_in[] = {
    { L"CommandLine", CIM_STRING, L"__PARAMETERS", q_command_line },
    { L"CurrentDirectory", CIM_STRING, L"__PARAMETERS", q_directory },
    { L"ProcessStartupInformation", CIM_OBJECT, L"__PARAMETERS", q_startup },
};
static const struct prop process_create_out[] = {
    { L"ProcessId", CIM_UINT32, L"__PARAMETERS", q_process_id },
    { L"ReturnValue", CIM_UINT32, L"__PARAMETERS", return_quals },
};
static const struct cls process_create_args = { L"__PARAMETERS", NULL, no_derivation, NULL, process_create_in,
    ARRAYSIZE(process_create_in), NULL, 0 };
static const struct cls process_create_results = { L"__PARAMETERS", NULL, no_derivation, NULL, process_create_out,
    ARRAYSIZE(process_create_out), NULL, 0 };
static const struct qual process_create_quals[] = { QBOOL( L"Static", INST ), QBOOL( L"Constructor", INST ),
    QBOOL( L"Implemented", INST ), QSTRS( L"ValueMap", process_valuemap, INST ),
    QSTRS( L"Values", process_values, INST | AMENDED ), QEND };
static const struct method process_methods[] = {
    { L"Create", process_create_quals, &process_create_args, &process_create_results },
};
static const struct qual q_handle[] = { QBOOL( L"key", INST | SUB | WBEM_FLAVOR_NOT_OVERRIDABLE ),
    QBOOL( L"read", INST ), QSTR( L"CIMTYPE", L"string", INST ), QINT( L"MaxLen", 256, INST ), QEND };
static const struct qual q_parent[] = { QBOOL( L"read", INST ), QSTR( L"CIMTYPE", L"uint32", INST ), QEND };
static const struct qual q_working_set[] = { QBOOL( L"read", INST ), QSTR( L"CIMTYPE", L"uint64", INST ),
    QSTR( L"Units", L"bytes", INST ), QEND };
static const struct prop process_props[] = {
    { L"Handle", CIM_STRING, L"CIM_Process", q_handle },
    { L"ParentProcessId", CIM_UINT32, L"Win32_Process", q_parent },
    { L"WorkingSetSize", CIM_UINT64, L"CIM_Process", q_working_set },
    { L"CreationDate", CIM_DATETIME, L"CIM_Process", q_datetime },
};
static const struct qual process_quals[] = { QBOOL( L"dynamic", INST ), QSTR( L"provider", L"CIMWin32", INST ),
    QSTR( L"Description", L"The Win32_Process class represents a process on an operating system.", AMENDED ), QEND };
static const struct cls process_class = { L"TestWmi_Process", L"CIM_Process", process_derivation, process_quals,
    process_props, ARRAYSIZE(process_props), process_methods, ARRAYSIZE(process_methods) };

/* An association's two keys are references, as Win32_LogicalDiskToPartition's. */
static const struct qual q_antecedent[] = { QBOOL( L"key", INST | SUB | WBEM_FLAVOR_NOT_OVERRIDABLE ),
    QBOOL( L"read", INST ), QSTR( L"CIMTYPE", L"ref:Win32_DiskPartition", INST ), QEND };
static const struct qual q_dependent[] = { QBOOL( L"key", INST | SUB | WBEM_FLAVOR_NOT_OVERRIDABLE ),
    QBOOL( L"read", INST ), QSTR( L"CIMTYPE", L"ref:Win32_LogicalDisk", INST ), QEND };
static const struct qual q_offsets[] = { QBOOL( L"read", INST ), QSTR( L"CIMTYPE", L"uint64", INST ), QEND };
static const struct prop pair_props[] = {
    { L"Antecedent", CIM_REFERENCE, L"TestWmi_Pair", q_antecedent },
    { L"Dependent", CIM_REFERENCE, L"TestWmi_Pair", q_dependent },
    { L"StartingAddress", CIM_UINT64, L"TestWmi_Pair", q_offsets },
};
static const struct qual pair_quals[] = { QBOOL( L"Association", INST | SUB | WBEM_FLAVOR_NOT_OVERRIDABLE ),
    QBOOL( L"dynamic", INST ), QEND };
static const struct cls pair_class = { L"TestWmi_Pair", NULL, no_derivation, pair_quals, pair_props,
    ARRAYSIZE(pair_props), NULL, 0 };

static const struct cls *const classes[] = { &service_class, &process_class, &pair_class };

/* The instances of TestWmi_Service: values in the order of service_props. */
static const WCHAR *const services[][ARRAYSIZE(service_props)] = {
    { L"TestRunning", L"Test running service", L"Running", L"TRUE", L"Auto", L"4242", L"20260101000000.000000+000" },
    { L"TestStopped", L"Test stopped service", L"Stopped", L"FALSE", L"Manual", L"0", NULL },
};

/* --- IWbemQualifierSet ------------------------------------------------------------------- */

struct qset
{
    IWbemQualifierSet IWbemQualifierSet_iface;
    LONG refs;
    const struct qual *quals;       /* NULL: none */
    BOOL instance, amended;         /* of an instance; with amended qualifiers */
    ULONG pos;
};

static inline struct qset *impl_from_IWbemQualifierSet( IWbemQualifierSet *iface )
{
    return CONTAINING_RECORD( iface, struct qset, IWbemQualifierSet_iface );
}

/* Whether the object's set holds Q: an instance carries what propagates to instances. */
static BOOL qset_has( const struct qset *set, const struct qual *q )
{
    if ((q->flavor & WBEM_FLAVOR_AMENDED) && !set->amended) return FALSE;
    return !set->instance || (q->flavor & INST);
}

static LONG qset_flavor( const struct qset *set, const struct qual *q )
{
    return q->flavor | (set->instance ? WBEM_FLAVOR_ORIGIN_PROPAGATED : WBEM_FLAVOR_ORIGIN_LOCAL);
}

static HRESULT qual_value( const struct qual *q, VARIANT *v )
{
    LONG i, n = 0;
    VariantInit( v );
    switch (q->kind)
    {
    case Q_BOOL: V_VT( v ) = VT_BOOL; V_BOOL( v ) = q->i ? VARIANT_TRUE : VARIANT_FALSE; return S_OK;
    case Q_INT: V_VT( v ) = VT_I4; V_I4( v ) = q->i; return S_OK;
    case Q_STR:
        V_VT( v ) = VT_BSTR;
        return (V_BSTR( v ) = SysAllocString( q->s )) ? S_OK : E_OUTOFMEMORY;
    case Q_STRS:
        while (q->list[n]) n++;
        if (!(V_ARRAY( v ) = SafeArrayCreateVector( VT_BSTR, 0, n ))) return E_OUTOFMEMORY;
        V_VT( v ) = VT_ARRAY | VT_BSTR;
        for (i = 0; i < n; i++)
        {
            BSTR s = SysAllocString( q->list[i] );
            HRESULT hr = s ? SafeArrayPutElement( V_ARRAY( v ), &i, s ) : E_OUTOFMEMORY;
            SysFreeString( s );
            if (FAILED(hr))
            {
                VariantClear( v );
                return hr;
            }
        }
        return S_OK;
    }
    return E_FAIL;
}

static HRESULT WINAPI qset_QueryInterface( IWbemQualifierSet *iface, REFIID riid, void **obj )
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

static ULONG WINAPI qset_AddRef( IWbemQualifierSet *iface )
{
    return InterlockedIncrement( &impl_from_IWbemQualifierSet( iface )->refs );
}

static ULONG WINAPI qset_Release( IWbemQualifierSet *iface )
{
    struct qset *set = impl_from_IWbemQualifierSet( iface );
    LONG refs = InterlockedDecrement( &set->refs );
    if (!refs)
    {
        free( set );
        testwmi_count( STAT_OBJECTS, -1 );
    }
    return refs;
}

/* IWbemQualifierSet::Get: names compare without case. */
static HRESULT WINAPI qset_Get( IWbemQualifierSet *iface, LPCWSTR name, LONG flags, VARIANT *val, LONG *flavor )
{
    struct qset *set = impl_from_IWbemQualifierSet( iface );
    const struct qual *q;

    (void)flags;
    if (!name) return WBEM_E_INVALID_PARAMETER;
    for (q = set->quals; q && q->name; q++)
    {
        if (_wcsicmp( q->name, name ) || !qset_has( set, q )) continue;
        if (flavor) *flavor = qset_flavor( set, q );
        return val ? qual_value( q, val ) : S_OK;
    }
    return WBEM_E_NOT_FOUND;
}

static HRESULT WINAPI qset_Put( IWbemQualifierSet *iface, LPCWSTR name, VARIANT *val, LONG flavor )
{
    (void)iface; (void)name; (void)val; (void)flavor;
    return WBEM_E_READ_ONLY;
}

static HRESULT WINAPI qset_Delete( IWbemQualifierSet *iface, LPCWSTR name )
{
    (void)iface; (void)name;
    return WBEM_E_READ_ONLY;
}

static HRESULT WINAPI qset_GetNames( IWbemQualifierSet *iface, LONG flags, SAFEARRAY **names )
{
    struct qset *set = impl_from_IWbemQualifierSet( iface );
    const struct qual *q;
    LONG n = 0;

    (void)flags;
    if (!names) return WBEM_E_INVALID_PARAMETER;
    for (q = set->quals; q && q->name; q++) n += qset_has( set, q );
    if (!(*names = SafeArrayCreateVector( VT_BSTR, 0, n ))) return E_OUTOFMEMORY;
    for (q = set->quals, n = 0; q && q->name; q++)
    {
        BSTR s;
        if (!qset_has( set, q )) continue;
        if (!(s = SysAllocString( q->name )))
        {
            SafeArrayDestroy( *names );
            *names = NULL;
            return E_OUTOFMEMORY;
        }
        SafeArrayPutElement( *names, &n, s );
        SysFreeString( s );
        n++;
    }
    return S_OK;
}

static HRESULT WINAPI qset_BeginEnumeration( IWbemQualifierSet *iface, LONG flags )
{
    (void)flags;
    impl_from_IWbemQualifierSet( iface )->pos = 0;
    return S_OK;
}

static HRESULT WINAPI qset_Next( IWbemQualifierSet *iface, LONG flags, BSTR *name, VARIANT *val, LONG *flavor )
{
    struct qset *set = impl_from_IWbemQualifierSet( iface );
    const struct qual *q;
    HRESULT hr;

    (void)flags;
    for (;;)
    {
        if (!set->quals || !set->quals[set->pos].name) return WBEM_S_NO_MORE_DATA;
        q = &set->quals[set->pos++];
        if (qset_has( set, q )) break;
    }
    if (name && !(*name = SysAllocString( q->name ))) return E_OUTOFMEMORY;
    if (flavor) *flavor = qset_flavor( set, q );
    if (val && FAILED(hr = qual_value( q, val )))
    {
        if (name) SysFreeString( *name );
        return hr;
    }
    return S_OK;
}

static HRESULT WINAPI qset_EndEnumeration( IWbemQualifierSet *iface )
{
    impl_from_IWbemQualifierSet( iface )->pos = 0;
    return S_OK;
}

static const IWbemQualifierSetVtbl qset_vtbl =
{
    qset_QueryInterface, qset_AddRef, qset_Release, qset_Get, qset_Put, qset_Delete, qset_GetNames,
    qset_BeginEnumeration, qset_Next, qset_EndEnumeration
};

static HRESULT qset_create( const struct qual *quals, BOOL instance, BOOL amended, IWbemQualifierSet **out )
{
    struct qset *set;
    if (!out) return WBEM_E_INVALID_PARAMETER;
    if (!(set = calloc( 1, sizeof(*set) ))) return E_OUTOFMEMORY;
    set->IWbemQualifierSet_iface.lpVtbl = &qset_vtbl;
    set->refs = 1;
    set->quals = quals;
    set->instance = instance;
    set->amended = amended;
    testwmi_count( STAT_OBJECTS, 1 );
    *out = &set->IWbemQualifierSet_iface;
    return S_OK;
}

/* --- IWbemClassObject ---------------------------------------------------------------------- */

struct sobj
{
    IWbemClassObject IWbemClassObject_iface;
    LONG refs;
    const struct cls *cls;
    BOOL instance, amended;
    VARIANT *values;            /* an instance's, one per property */
    ULONG pos, method_pos;
};

static const IWbemClassObjectVtbl sobj_vtbl;

static inline struct sobj *impl_from_IWbemClassObject( IWbemClassObject *iface )
{
    return CONTAINING_RECORD( iface, struct sobj, IWbemClassObject_iface );
}

static struct sobj *sobj_create( const struct cls *cls, BOOL instance, BOOL amended )
{
    struct sobj *o = calloc( 1, sizeof(*o) );
    ULONG i;
    if (!o) return NULL;
    if (instance && !(o->values = calloc( cls->nprops ? cls->nprops : 1, sizeof(VARIANT) )))
    {
        free( o );
        return NULL;
    }
    for (i = 0; instance && i < cls->nprops; i++) V_VT( &o->values[i] ) = VT_NULL;
    o->IWbemClassObject_iface.lpVtbl = &sobj_vtbl;
    o->refs = 1;
    o->cls = cls;
    o->instance = instance;
    o->amended = amended;
    testwmi_count( STAT_OBJECTS, 1 );
    return o;
}

static HRESULT WINAPI sobj_QueryInterface( IWbemClassObject *iface, REFIID riid, void **obj )
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

static ULONG WINAPI sobj_AddRef( IWbemClassObject *iface )
{
    return InterlockedIncrement( &impl_from_IWbemClassObject( iface )->refs );
}

static ULONG WINAPI sobj_Release( IWbemClassObject *iface )
{
    struct sobj *o = impl_from_IWbemClassObject( iface );
    LONG refs = InterlockedDecrement( &o->refs );
    ULONG i;
    if (!refs)
    {
        for (i = 0; o->values && i < o->cls->nprops; i++) VariantClear( &o->values[i] );
        free( o->values );
        free( o );
        testwmi_count( STAT_OBJECTS, -1 );
    }
    return refs;
}

static const struct prop *sobj_prop( const struct sobj *o, const WCHAR *name, ULONG *index )
{
    ULONG i;
    for (i = 0; name && i < o->cls->nprops; i++)
    {
        if (_wcsicmp( o->cls->props[i].name, name )) continue;
        if (index) *index = i;
        return &o->cls->props[i];
    }
    return NULL;
}

static const struct method *cls_method( const struct cls *cls, const WCHAR *name )
{
    ULONG i;
    for (i = 0; name && i < cls->nmethods; i++)
        if (!_wcsicmp( cls->methods[i].name, name )) return &cls->methods[i];
    return NULL;
}

/* "TestWmi_Service.Name=\"TestStopped\"": the class and its (first) key's value. */
static HRESULT sobj_relpath( const struct sobj *o, BSTR *out )
{
    WCHAR buf[512];
    ULONG i;
    *out = NULL;
    if (!o->instance) return (*out = SysAllocString( o->cls->name )) ? S_OK : E_OUTOFMEMORY;
    for (i = 0; i < o->cls->nprops; i++)
    {
        const struct qual *q;
        for (q = o->cls->props[i].quals; q && q->name; q++)
            if (!_wcsicmp( q->name, L"key" )) break;
        if (!q || !q->name) continue;
        if (V_VT( &o->values[i] ) != VT_BSTR) return S_FALSE;
        swprintf( buf, ARRAYSIZE(buf), L"%ls.%ls=\"%ls\"", o->cls->name, o->cls->props[i].name,
                  V_BSTR( &o->values[i] ) );
        return (*out = SysAllocString( buf )) ? S_OK : E_OUTOFMEMORY;
    }
    return S_FALSE;     /* method parameters have no path */
}

static HRESULT sobj_system( struct sobj *o, const WCHAR *name, VARIANT *val, CIMTYPE *type )
{
    const WCHAR *text = NULL;
    BSTR path = NULL;
    HRESULT hr;
    LONG i, n = 0;

    if (type) *type = CIM_STRING;
    if (!_wcsicmp( name, L"__GENUS" ))
    {
        if (type) *type = CIM_SINT32;
        if (val)
        {
            V_VT( val ) = VT_I4;
            V_I4( val ) = o->instance ? WBEM_GENUS_INSTANCE : WBEM_GENUS_CLASS;
        }
        return S_OK;
    }
    if (!_wcsicmp( name, L"__DERIVATION" ))
    {
        if (type) *type = CIM_STRING | CIM_FLAG_ARRAY;
        if (!val) return S_OK;
        while (o->cls->derivation[n]) n++;
        if (!(V_ARRAY( val ) = SafeArrayCreateVector( VT_BSTR, 0, n ))) return E_OUTOFMEMORY;
        V_VT( val ) = VT_ARRAY | VT_BSTR;
        for (i = 0; i < n; i++)
        {
            BSTR s = SysAllocString( o->cls->derivation[i] );
            SafeArrayPutElement( V_ARRAY( val ), &i, s );
            SysFreeString( s );
        }
        return S_OK;
    }
    if (!_wcsicmp( name, L"__CLASS" )) text = o->cls->name;
    else if (!_wcsicmp( name, L"__SUPERCLASS" )) text = o->cls->super;
    else if (!_wcsicmp( name, L"__DYNASTY" ))
    {
        n = 0;
        while (o->cls->derivation[n]) n++;
        text = n ? o->cls->derivation[n - 1] : o->cls->name;
    }
    else if (!_wcsicmp( name, L"__NAMESPACE" )) text = L"ROOT\\CIMV2";
    else if (!_wcsicmp( name, L"__RELPATH" ) || !_wcsicmp( name, L"__PATH" ))
    {
        if (FAILED(hr = sobj_relpath( o, &path ))) return hr;
        if (path && !_wcsicmp( name, L"__PATH" ))
        {
            WCHAR buf[600];
            swprintf( buf, ARRAYSIZE(buf), L"\\\\.\\ROOT\\CIMV2:%ls", path );
            SysFreeString( path );
            if (!(path = SysAllocString( buf ))) return E_OUTOFMEMORY;
        }
        if (val)
        {
            V_VT( val ) = path ? VT_BSTR : VT_NULL;
            V_BSTR( val ) = path;
        }
        else SysFreeString( path );
        return S_OK;
    }
    else return WBEM_E_NOT_FOUND;
    if (!val) return S_OK;
    V_VT( val ) = VT_NULL;
    if (text && !(V_BSTR( val ) = SysAllocString( text ))) return E_OUTOFMEMORY;
    if (text) V_VT( val ) = VT_BSTR;
    return S_OK;
}

static HRESULT WINAPI sobj_GetQualifierSet( IWbemClassObject *iface, IWbemQualifierSet **set )
{
    struct sobj *o = impl_from_IWbemClassObject( iface );
    return qset_create( o->cls->quals, o->instance, o->amended, set );
}

static HRESULT WINAPI sobj_Get( IWbemClassObject *iface, LPCWSTR name, LONG flags, VARIANT *val, CIMTYPE *type,
                                LONG *flavor )
{
    struct sobj *o = impl_from_IWbemClassObject( iface );
    const struct prop *p;
    ULONG i;

    (void)flags;
    if (!name) return WBEM_E_INVALID_PARAMETER;
    if (flavor) *flavor = WBEM_FLAVOR_ORIGIN_LOCAL;
    if (val) VariantInit( val );
    if (name[0] == '_' && name[1] == '_') return sobj_system( o, name, val, type );
    if (!(p = sobj_prop( o, name, &i ))) return WBEM_E_NOT_FOUND;
    if (type) *type = p->type;
    if (!val) return S_OK;
    if (!o->instance)
    {
        V_VT( val ) = VT_NULL;
        return S_OK;
    }
    return VariantCopy( val, &o->values[i] );
}

static HRESULT WINAPI sobj_Put( IWbemClassObject *iface, LPCWSTR name, LONG flags, VARIANT *val, CIMTYPE type )
{
    struct sobj *o = impl_from_IWbemClassObject( iface );
    VARIANT copy;
    HRESULT hr;
    ULONG i;

    (void)flags; (void)type;
    if (!o->instance) return WBEM_E_READ_ONLY;
    if (!sobj_prop( o, name, &i )) return WBEM_E_NOT_FOUND;
    VariantInit( &copy );
    if (val && FAILED(hr = VariantCopy( &copy, val ))) return hr;
    if (!val || V_VT( &copy ) == VT_EMPTY) V_VT( &copy ) = VT_NULL;
    VariantClear( &o->values[i] );
    o->values[i] = copy;
    return S_OK;
}

static HRESULT WINAPI sobj_Delete( IWbemClassObject *iface, LPCWSTR name )
{
    (void)iface; (void)name;
    return WBEM_E_READ_ONLY;
}

static HRESULT WINAPI sobj_GetNames( IWbemClassObject *iface, LPCWSTR qualifier, LONG flags, VARIANT *val,
                                     SAFEARRAY **names )
{
    struct sobj *o = impl_from_IWbemClassObject( iface );
    static const WCHAR *const system[] = { L"__CLASS", L"__DERIVATION", L"__GENUS", L"__RELPATH", L"__PATH" };
    /* The origin group: LOCAL_ONLY 0x10, PROPAGATED_ONLY 0x20, SYSTEM_ONLY 0x30, NONSYSTEM_ONLY 0x40. */
    BOOL keys = (flags & WBEM_FLAG_KEYS_ONLY) != 0, sys = (flags & 0x70) == WBEM_FLAG_SYSTEM_ONLY;
    BOOL nonsys = keys || (flags & 0x70) == WBEM_FLAG_NONSYSTEM_ONLY;
    LONG n = 0, at = 0;
    ULONG i;
    SAFEARRAY *sa;

    (void)val;
    if (!names) return WBEM_E_INVALID_PARAMETER;
    if (qualifier) return WBEM_E_NOT_SUPPORTED;
    for (i = 0; !sys && i < o->cls->nprops; i++)
    {
        const struct qual *q;
        BOOL key = FALSE;
        for (q = o->cls->props[i].quals; q && q->name; q++) key = key || !_wcsicmp( q->name, L"key" );
        n += !keys || key;
    }
    if (!nonsys) n += ARRAYSIZE(system);
    if (!(sa = SafeArrayCreateVector( VT_BSTR, 0, n ))) return E_OUTOFMEMORY;
    for (i = 0; !nonsys && i < ARRAYSIZE(system); i++, at++)
    {
        BSTR s = SysAllocString( system[i] );
        SafeArrayPutElement( sa, &at, s );
        SysFreeString( s );
    }
    for (i = 0; !sys && i < o->cls->nprops; i++)
    {
        const struct qual *q;
        BOOL key = FALSE;
        BSTR s;
        for (q = o->cls->props[i].quals; q && q->name; q++) key = key || !_wcsicmp( q->name, L"key" );
        if (keys && !key) continue;
        s = SysAllocString( o->cls->props[i].name );
        SafeArrayPutElement( sa, &at, s );
        SysFreeString( s );
        at++;
    }
    *names = sa;
    return S_OK;
}

static HRESULT WINAPI sobj_BeginEnumeration( IWbemClassObject *iface, LONG flags )
{
    (void)flags;
    impl_from_IWbemClassObject( iface )->pos = 0;
    return S_OK;
}

static HRESULT WINAPI sobj_Next( IWbemClassObject *iface, LONG flags, BSTR *name, VARIANT *val, CIMTYPE *type,
                                 LONG *flavor )
{
    struct sobj *o = impl_from_IWbemClassObject( iface );
    const WCHAR *prop;
    HRESULT hr;

    (void)flags;
    if (o->pos >= o->cls->nprops) return WBEM_S_NO_MORE_DATA;
    prop = o->cls->props[o->pos++].name;
    if (name && !(*name = SysAllocString( prop ))) return E_OUTOFMEMORY;
    if (FAILED(hr = sobj_Get( iface, prop, 0, val, type, flavor )) && name) SysFreeString( *name );
    return hr;
}

static HRESULT WINAPI sobj_EndEnumeration( IWbemClassObject *iface )
{
    impl_from_IWbemClassObject( iface )->pos = 0;
    return S_OK;
}

static HRESULT WINAPI sobj_GetPropertyQualifierSet( IWbemClassObject *iface, LPCWSTR name, IWbemQualifierSet **set )
{
    struct sobj *o = impl_from_IWbemClassObject( iface );
    const struct prop *p = sobj_prop( o, name, NULL );
    if (set) *set = NULL;
    if (!p) return WBEM_E_NOT_FOUND;
    return qset_create( p->quals, o->instance, o->amended, set );
}

static HRESULT WINAPI sobj_Clone( IWbemClassObject *iface, IWbemClassObject **copy )
{
    struct sobj *o = impl_from_IWbemClassObject( iface ), *c;
    ULONG i;
    if (!copy) return WBEM_E_INVALID_PARAMETER;
    if (!(c = sobj_create( o->cls, o->instance, o->amended ))) return E_OUTOFMEMORY;
    for (i = 0; o->instance && i < o->cls->nprops; i++) VariantCopy( &c->values[i], &o->values[i] );
    *copy = &c->IWbemClassObject_iface;
    return S_OK;
}

static HRESULT WINAPI sobj_GetObjectText( IWbemClassObject *iface, LONG flags, BSTR *text )
{
    struct sobj *o = impl_from_IWbemClassObject( iface );
    WCHAR buf[128];
    (void)flags;
    if (!text) return WBEM_E_INVALID_PARAMETER;
    swprintf( buf, ARRAYSIZE(buf), L"\n%ls %ls\n{\n};\n", o->instance ? L"instance of" : L"class", o->cls->name );
    return (*text = SysAllocString( buf )) ? S_OK : E_OUTOFMEMORY;
}

static HRESULT WINAPI sobj_SpawnDerivedClass( IWbemClassObject *iface, LONG flags, IWbemClassObject **out )
{
    (void)iface; (void)flags;
    if (out) *out = NULL;
    return WBEM_E_NOT_SUPPORTED;
}

static HRESULT WINAPI sobj_SpawnInstance( IWbemClassObject *iface, LONG flags, IWbemClassObject **out )
{
    struct sobj *o = impl_from_IWbemClassObject( iface ), *inst;
    (void)flags;
    if (!out) return WBEM_E_INVALID_PARAMETER;
    *out = NULL;
    if (o->instance) return WBEM_E_INVALID_OPERATION;
    if (!(inst = sobj_create( o->cls, TRUE, o->amended ))) return E_OUTOFMEMORY;
    *out = &inst->IWbemClassObject_iface;
    return S_OK;
}

static HRESULT WINAPI sobj_CompareTo( IWbemClassObject *iface, LONG flags, IWbemClassObject *other )
{
    (void)flags;
    return iface == other ? WBEM_S_SAME : WBEM_S_DIFFERENT;
}

static HRESULT WINAPI sobj_GetPropertyOrigin( IWbemClassObject *iface, LPCWSTR name, BSTR *cls )
{
    const struct prop *p = sobj_prop( impl_from_IWbemClassObject( iface ), name, NULL );
    if (!cls) return WBEM_E_INVALID_PARAMETER;
    *cls = NULL;
    if (!p) return WBEM_E_NOT_FOUND;
    return (*cls = SysAllocString( p->origin )) ? S_OK : E_OUTOFMEMORY;
}

static HRESULT WINAPI sobj_InheritsFrom( IWbemClassObject *iface, LPCWSTR ancestor )
{
    struct sobj *o = impl_from_IWbemClassObject( iface );
    const WCHAR *const *d;
    for (d = o->cls->derivation; ancestor && *d; d++)
        if (!_wcsicmp( *d, ancestor )) return S_OK;
    return WBEM_S_FALSE;
}

/* A method's signatures: class objects of __PARAMETERS, NULL for none. */
static HRESULT sobj_signature( const struct cls *sig, BOOL amended, IWbemClassObject **out )
{
    struct sobj *s;
    if (!out) return S_OK;
    *out = NULL;
    if (!sig) return S_OK;
    if (!(s = sobj_create( sig, FALSE, amended ))) return E_OUTOFMEMORY;
    *out = &s->IWbemClassObject_iface;
    return S_OK;
}

static HRESULT sobj_signatures( const struct sobj *o, const struct method *m, IWbemClassObject **in,
                                IWbemClassObject **out )
{
    HRESULT hr = sobj_signature( m->in, o->amended, in );
    if (SUCCEEDED(hr) && FAILED(hr = sobj_signature( m->out, o->amended, out )) && in && *in)
    {
        IWbemClassObject_Release( *in );
        *in = NULL;
    }
    return hr;
}

static HRESULT WINAPI sobj_GetMethod( IWbemClassObject *iface, LPCWSTR name, LONG flags, IWbemClassObject **in,
                                      IWbemClassObject **out )
{
    struct sobj *o = impl_from_IWbemClassObject( iface );
    const struct method *m = cls_method( o->cls, name );
    (void)flags;
    if (in) *in = NULL;
    if (out) *out = NULL;
    if (!m) return WBEM_E_NOT_FOUND;
    return sobj_signatures( o, m, in, out );
}

static HRESULT WINAPI sobj_PutMethod( IWbemClassObject *iface, LPCWSTR name, LONG flags, IWbemClassObject *in,
                                      IWbemClassObject *out )
{
    (void)iface; (void)name; (void)flags; (void)in; (void)out;
    return WBEM_E_READ_ONLY;
}

static HRESULT WINAPI sobj_DeleteMethod( IWbemClassObject *iface, LPCWSTR name )
{
    (void)iface; (void)name;
    return WBEM_E_READ_ONLY;
}

static HRESULT WINAPI sobj_BeginMethodEnumeration( IWbemClassObject *iface, LONG flags )
{
    (void)flags;
    impl_from_IWbemClassObject( iface )->method_pos = 0;
    return S_OK;
}

static HRESULT WINAPI sobj_NextMethod( IWbemClassObject *iface, LONG flags, BSTR *name, IWbemClassObject **in,
                                       IWbemClassObject **out )
{
    struct sobj *o = impl_from_IWbemClassObject( iface );
    const struct method *m;
    HRESULT hr;

    (void)flags;
    if (in) *in = NULL;
    if (out) *out = NULL;
    if (o->method_pos >= o->cls->nmethods) return WBEM_S_NO_MORE_DATA;
    m = &o->cls->methods[o->method_pos++];
    if (name && !(*name = SysAllocString( m->name ))) return E_OUTOFMEMORY;
    if (FAILED(hr = sobj_signatures( o, m, in, out )) && name) SysFreeString( *name );
    return hr;
}

static HRESULT WINAPI sobj_EndMethodEnumeration( IWbemClassObject *iface )
{
    impl_from_IWbemClassObject( iface )->method_pos = 0;
    return S_OK;
}

static HRESULT WINAPI sobj_GetMethodQualifierSet( IWbemClassObject *iface, LPCWSTR name, IWbemQualifierSet **set )
{
    struct sobj *o = impl_from_IWbemClassObject( iface );
    const struct method *m = cls_method( o->cls, name );
    if (set) *set = NULL;
    if (!m) return WBEM_E_NOT_FOUND;
    return qset_create( m->quals, o->instance, o->amended, set );
}

static HRESULT WINAPI sobj_GetMethodOrigin( IWbemClassObject *iface, LPCWSTR name, BSTR *cls )
{
    struct sobj *o = impl_from_IWbemClassObject( iface );
    if (!cls) return WBEM_E_INVALID_PARAMETER;
    *cls = NULL;
    if (!cls_method( o->cls, name )) return WBEM_E_NOT_FOUND;
    return (*cls = SysAllocString( o->cls->name )) ? S_OK : E_OUTOFMEMORY;
}

static const IWbemClassObjectVtbl sobj_vtbl =
{
    sobj_QueryInterface, sobj_AddRef, sobj_Release, sobj_GetQualifierSet, sobj_Get, sobj_Put, sobj_Delete,
    sobj_GetNames, sobj_BeginEnumeration, sobj_Next, sobj_EndEnumeration, sobj_GetPropertyQualifierSet,
    sobj_Clone, sobj_GetObjectText, sobj_SpawnDerivedClass, sobj_SpawnInstance, sobj_CompareTo,
    sobj_GetPropertyOrigin, sobj_InheritsFrom, sobj_GetMethod, sobj_PutMethod, sobj_DeleteMethod,
    sobj_BeginMethodEnumeration, sobj_NextMethod, sobj_EndMethodEnumeration, sobj_GetMethodQualifierSet,
    sobj_GetMethodOrigin
};

/* --- what the services serve ------------------------------------------------------------- */

/* An instance of TestWmi_Service, from row ROW of services[]. */
static HRESULT schema_service( ULONG row, BOOL amended, IWbemClassObject **out )
{
    struct sobj *o = sobj_create( &service_class, TRUE, amended );
    HRESULT hr = S_OK;
    ULONG i;

    *out = NULL;
    if (!o) return E_OUTOFMEMORY;
    for (i = 0; i < ARRAYSIZE(service_props) && SUCCEEDED(hr); i++)
    {
        const WCHAR *text = services[row][i];
        VARIANT *v = &o->values[i];
        if (!text) continue;
        switch (service_props[i].type)
        {
        case CIM_BOOLEAN: V_VT( v ) = VT_BOOL; V_BOOL( v ) = !wcscmp( text, L"TRUE" ) ? VARIANT_TRUE : VARIANT_FALSE; break;
        case CIM_UINT32: V_VT( v ) = VT_I4; V_I4( v ) = wcstol( text, NULL, 10 ); break;
        default:
            if ((V_BSTR( v ) = SysAllocString( text ))) V_VT( v ) = VT_BSTR;
            else hr = E_OUTOFMEMORY;
        }
    }
    if (FAILED(hr)) IWbemClassObject_Release( &o->IWbemClassObject_iface );
    else *out = &o->IWbemClassObject_iface;
    return hr;
}

/* The class of PATH ("[\\server\ns:]Class[.Key=value]") when it is one of ours,
 * and in *KEY the start of the key part (NULL for a class path). */
static const struct cls *schema_find( const WCHAR *path, const WCHAR **key )
{
    const WCHAR *start = path, *end, *colon;
    size_t len, i;

    *key = NULL;
    if (!path) return NULL;
    for (end = path; *end && *end != '.' && *end != '='; end++);
    if ((colon = wcschr( path, ':' )) && colon < end) start = colon + 1;
    len = end - start;
    for (i = 0; i < ARRAYSIZE(classes); i++)
    {
        if (wcslen( classes[i]->name ) != len || _wcsnicmp( classes[i]->name, start, len )) continue;
        if (*end) *key = end + 1;
        return classes[i];
    }
    return NULL;
}

/* The row of services[] whose Name is the value in KEY ("Name=\"TestStopped\"" or "\"TestStopped\""). */
static LONG schema_service_row( const WCHAR *key )
{
    const WCHAR *value = wcschr( key, '=' );
    WCHAR name[64];
    size_t len;
    ULONG i;

    value = value ? value + 1 : key;
    if (*value == '"') value++;
    for (len = 0; value[len] && value[len] != '"' && len < ARRAYSIZE(name) - 1; len++) name[len] = value[len];
    name[len] = 0;
    for (i = 0; i < ARRAYSIZE(services); i++)
        if (!_wcsicmp( services[i][0], name )) return i;
    return -1;
}

/* StartService and StopService of an instance: their ReturnValue. */
static HRESULT schema_exec( const struct cls *cls, const WCHAR *key, const WCHAR *method, BOOL amended,
                            IWbemClassObject **out )
{
    BOOL running, start;
    struct sobj *o;
    LONG row;

    *out = NULL;
    if (!cls_method( cls, method )) return WBEM_E_INVALID_METHOD;
    if (cls != &service_class || (_wcsicmp( method, L"StartService" ) && _wcsicmp( method, L"StopService" )))
        return WBEM_E_NOT_SUPPORTED;
    if (!key) return WBEM_E_INVALID_METHOD_PARAMETERS;      /* a method of an instance, called on the class */
    if ((row = schema_service_row( key )) < 0) return WBEM_E_NOT_FOUND;
    running = !wcscmp( services[row][2], L"Running" );
    start = !_wcsicmp( method, L"StartService" );
    if (!(o = sobj_create( &returns_uint32, TRUE, amended ))) return E_OUTOFMEMORY;
    V_VT( &o->values[0] ) = VT_I4;
    /* Win32_BaseService: 10 Service Already Running, 6 Service Not Active. */
    V_I4( &o->values[0] ) = start ? (running ? 10 : 0) : (running ? 0 : 6);
    *out = &o->IWbemClassObject_iface;
    return S_OK;
}

HRESULT schema_collect( int kind, const WCHAR *a, const WCHAR *b, LONG flags, struct objects *out )
{
    BOOL amended = (flags & WBEM_FLAG_USE_AMENDED_QUALIFIERS) != 0;
    const WCHAR *key;
    const struct cls *cls = schema_find( a, &key );
    IWbemClassObject *obj = NULL;
    struct sobj *o;
    HRESULT hr = S_OK;
    ULONG i;
    LONG row;

    if (!cls) return S_FALSE;
    switch (kind)
    {
    case COLLECT_GET:
        if (!key)
        {
            if (!(o = sobj_create( cls, FALSE, amended ))) return E_OUTOFMEMORY;
            return objects_add( out, &o->IWbemClassObject_iface );
        }
        if (cls != &service_class || (row = schema_service_row( key )) < 0) return WBEM_E_NOT_FOUND;
        if (SUCCEEDED(hr = schema_service( row, amended, &obj ))) hr = objects_add( out, obj );
        return hr;
    case COLLECT_INSTANCES:
        if (key) return WBEM_E_INVALID_CLASS;
        for (i = 0; cls == &service_class && i < ARRAYSIZE(services) && SUCCEEDED(hr); i++)
            if (SUCCEEDED(hr = schema_service( i, amended, &obj ))) hr = objects_add( out, obj );
        return hr;
    case COLLECT_EXEC:
        if (SUCCEEDED(hr = schema_exec( cls, key, b, amended, &obj ))) hr = objects_add( out, obj );
        return hr;
    }
    return S_FALSE;
}

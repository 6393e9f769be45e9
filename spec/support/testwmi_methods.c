/*
 * Methods Wine's provider lacks, served on Wine's real processes as Windows
 * documents them: Win32_Process.Terminate(Reason) ends the process with exit code
 * Reason; its ReturnValue is 0 (success), 2 (access denied), 8 (unknown failure) or
 * 9 (path not found), as the Win32_Process Terminate method page lists them. Its
 * out-parameters are a __PARAMETERS object holding ReturnValue, what ExecMethod
 * hands back ([MS-WMI] 3.1.4.3.22).
 */
#include "testwmi.h"

#include <stdlib.h>
#include <wchar.h>

/* "\\host\root\cimv2:Win32_Process.Handle=\"42\"" -> 42; 0 for another path. */
static DWORD methods_process_id( const WCHAR *path )
{
    const WCHAR *colon = wcschr( path, ':' ), *value;
    static const WCHAR prefix[] = L"Win32_Process.Handle=";

    if (colon) path = colon + 1;
    if (_wcsnicmp( path, prefix, ARRAYSIZE(prefix) - 1 )) return 0;
    value = path + ARRAYSIZE(prefix) - 1;
    if (*value == '"') value++;
    return wcstoul( value, NULL, 10 );
}

static DWORD methods_terminate( DWORD pid, IWbemClassObject *in )
{
    UINT reason = 0;
    VARIANT v;
    HANDLE process;
    DWORD result = 0;

    VariantInit( &v );
    if (in && SUCCEEDED(IWbemClassObject_Get( in, L"Reason", 0, &v, NULL, NULL )) && V_VT( &v ) == VT_I4)
        reason = V_I4( &v );
    VariantClear( &v );
    if (!(process = OpenProcess( PROCESS_TERMINATE, FALSE, pid )))
        return GetLastError() == ERROR_ACCESS_DENIED ? 2 : 9;
    if (!TerminateProcess( process, reason )) result = GetLastError() == ERROR_ACCESS_DENIED ? 2 : 8;
    CloseHandle( process );
    return result;
}

/* S_FALSE when PATH's METHOD is none of these (Wine's provider serves it). */
HRESULT methods_exec( const WCHAR *path, const WCHAR *method, IWbemClassObject *in, IWbemClassObject **out )
{
    struct bag_prop ret;
    DWORD pid;

    *out = NULL;
    if (!path || !method || _wcsicmp( method, L"Terminate" ) || !(pid = methods_process_id( path ))) return S_FALSE;
    ret.name = L"ReturnValue";
    ret.type = CIM_UINT32;
    V_VT( &ret.value ) = VT_I4;    /* uint32 travels as VT_I4, as WMI sends it */
    V_I4( &ret.value ) = methods_terminate( pid, in );
    return (*out = bag_create( L"__PARAMETERS", &ret, 1 )) ? S_OK : E_OUTOFMEMORY;
}

/*
 * HRESULT names and messages.
 *
 * WBEM codes carry their own one-line text: WMI's messages live in wmiutils
 * rather than the system message table, and Wine has none of them, so our
 * own words keep messages identical on Wine and Windows.  Other codes ask
 * FormatMessage and fall back to the table text.
 */

#include <stdio.h>
#include <string.h>

#include <windows.h>
#include <wbemcli.h>

#include <lua.h>
#include <lauxlib.h>

#include "hresult.h"

struct hresult_entry
{
    DWORD code;         /* unsigned, so 0x8004xxxx compares without sign games */
    const char *name;
    const char *text;   /* one line, no trailing period */
    BOOL own_text;      /* TRUE: text wins over the system's message */
};

/* The name is the constant's own spelling, so the compiler checks the value. */
#define ENTRY_WBEM(c, t)  { (DWORD)(c), #c, t, TRUE }
#define ENTRY_COM(c, t)   { (DWORD)(c), #c, t, FALSE }
/* Win32 errors as HRESULT_FROM_WIN32, which is not a constant expression in
 * every header version. */
#define ENTRY_WIN32(e, t) { 0x80070000u | ((DWORD)(e) & 0xffff), #e, t, FALSE }
#define ENTRY_WIN32_OWN(e, t) { 0x80070000u | ((DWORD)(e) & 0xffff), #e, t, TRUE }

/* Ascending by code, only for the reader (and to make duplicates stand out):
 * lookups are a linear scan, which is plenty on an error path.  WBEM_S_NO_ERROR
 * and WBEM_S_FALSE are the same values as S_OK and S_FALSE and use those names. */
static const struct hresult_entry hresult_table[] =
{
    ENTRY_WBEM(S_OK, "Success"),
    ENTRY_WBEM(S_FALSE, "Success, with a false or partial result"),

    ENTRY_WBEM(WBEM_S_ALREADY_EXISTS, "Object already exists"),
    ENTRY_WBEM(WBEM_S_RESET_TO_DEFAULT, "Value was reset to its default"),
    ENTRY_WBEM(WBEM_S_DIFFERENT, "Compared objects differ"),
    ENTRY_WBEM(WBEM_S_TIMEDOUT, "Call timed out before all results were ready"),
    ENTRY_WBEM(WBEM_S_NO_MORE_DATA, "No more objects to return"),
    ENTRY_WBEM(WBEM_S_OPERATION_CANCELLED, "Operation was cancelled"),
    ENTRY_WBEM(WBEM_S_PENDING, "Operation is still in progress"),
    ENTRY_WBEM(WBEM_S_DUPLICATE_OBJECTS, "Some objects were returned more than once"),
    ENTRY_WBEM(WBEM_S_ACCESS_DENIED, "Some results were withheld for lack of access rights"),
    ENTRY_WBEM(WBEM_S_PARTIAL_RESULTS, "Only part of the results were returned"),
    ENTRY_WBEM(WBEM_S_SOURCE_NOT_AVAILABLE, "Event source is not available"),

    ENTRY_COM(E_PENDING, "Data is not available yet"),
    ENTRY_COM(E_NOTIMPL, "Not implemented"),
    ENTRY_COM(E_NOINTERFACE, "Interface not supported"),
    ENTRY_COM(E_POINTER, "Invalid pointer"),
    ENTRY_COM(E_ABORT, "Operation aborted"),
    ENTRY_COM(E_FAIL, "Unspecified failure"),
    ENTRY_COM(E_UNEXPECTED, "Unexpected failure"),
    ENTRY_COM(RPC_E_CALL_REJECTED, "Server rejected the call"),
    ENTRY_COM(RPC_E_CALL_CANCELED, "Call was cancelled"),
    ENTRY_COM(RPC_E_SERVERFAULT, "Server raised an exception while handling the call"),
    ENTRY_COM(RPC_E_CHANGED_MODE, "COM is already initialized with another threading model on this thread"),
    ENTRY_COM(RPC_E_DISCONNECTED, "Object has been disconnected from its clients"),
    ENTRY_COM(RPC_E_SERVERCALL_RETRYLATER, "Server is busy, retry later"),
    ENTRY_COM(RPC_E_CANTCALLOUT_ININPUTSYNCCALL, "Outgoing call not allowed during an input-synchronous call"),
    ENTRY_COM(RPC_E_WRONG_THREAD, "Interface pointer used from the wrong apartment"),
    ENTRY_COM(RPC_E_TOO_LATE, "COM security can no longer be initialized or changed"),
    ENTRY_COM(RPC_E_NO_GOOD_SECURITY_PACKAGES, "No usable security package"),
    ENTRY_COM(RPC_E_ACCESS_DENIED, "COM call access denied"),
    ENTRY_COM(RPC_E_TIMEOUT, "COM call timed out"),
    ENTRY_COM(DISP_E_UNKNOWNINTERFACE, "Unknown interface"),
    ENTRY_COM(DISP_E_MEMBERNOTFOUND, "Member not found"),
    ENTRY_COM(DISP_E_PARAMNOTFOUND, "Parameter not found"),
    ENTRY_COM(DISP_E_TYPEMISMATCH, "Type mismatch"),
    ENTRY_COM(DISP_E_UNKNOWNNAME, "Unknown name"),
    ENTRY_COM(DISP_E_BADVARTYPE, "Invalid variant type"),
    ENTRY_COM(DISP_E_EXCEPTION, "Called member raised an exception"),
    ENTRY_COM(DISP_E_OVERFLOW, "Value does not fit its type"),
    ENTRY_COM(DISP_E_BADINDEX, "Array index out of bounds"),
    ENTRY_COM(DISP_E_ARRAYISLOCKED, "Array is locked"),
    ENTRY_COM(DISP_E_BADPARAMCOUNT, "Wrong number of parameters"),
    ENTRY_COM(DISP_E_PARAMNOTOPTIONAL, "Required parameter missing"),
    ENTRY_COM(DISP_E_DIVBYZERO, "Division by zero"),
    ENTRY_COM(CLASS_E_NOAGGREGATION, "Class does not support aggregation"),
    ENTRY_COM(CLASS_E_CLASSNOTAVAILABLE, "Class factory cannot create this class"),
    ENTRY_COM(REGDB_E_CLASSNOTREG, "Class not registered"),
    ENTRY_COM(MK_E_SYNTAX, "Invalid moniker syntax"),
    ENTRY_COM(CO_E_NOTINITIALIZED, "COM is not initialized on this thread"),
    ENTRY_COM(CO_E_CLASSSTRING, "Invalid class string"),
    ENTRY_COM(CO_E_OBJNOTCONNECTED, "Object is not connected to its server"),

    ENTRY_WBEM(WBEM_E_FAILED, "Unspecified WMI failure"),
    ENTRY_WBEM(WBEM_E_NOT_FOUND, "Object not found"),
    ENTRY_WBEM(WBEM_E_ACCESS_DENIED, "WMI access denied"),
    ENTRY_WBEM(WBEM_E_PROVIDER_FAILURE, "Provider failed"),
    ENTRY_WBEM(WBEM_E_TYPE_MISMATCH, "Value type does not match the property type"),
    ENTRY_WBEM(WBEM_E_OUT_OF_MEMORY, "WMI ran out of memory"),
    ENTRY_WBEM(WBEM_E_INVALID_CONTEXT, "Invalid context object"),
    ENTRY_WBEM(WBEM_E_INVALID_PARAMETER, "Invalid parameter"),
    ENTRY_WBEM(WBEM_E_NOT_AVAILABLE, "Resource not available"),
    ENTRY_WBEM(WBEM_E_CRITICAL_ERROR, "Critical internal WMI error"),
    ENTRY_WBEM(WBEM_E_INVALID_STREAM, "Corrupt or unreadable object stream"),
    ENTRY_WBEM(WBEM_E_NOT_SUPPORTED, "Operation not supported"),
    ENTRY_WBEM(WBEM_E_INVALID_SUPERCLASS, "Invalid superclass"),
    ENTRY_WBEM(WBEM_E_INVALID_NAMESPACE, "Invalid namespace"),
    ENTRY_WBEM(WBEM_E_INVALID_OBJECT, "Invalid object"),
    ENTRY_WBEM(WBEM_E_INVALID_CLASS, "Invalid class"),
    ENTRY_WBEM(WBEM_E_PROVIDER_NOT_FOUND, "Provider not found"),
    ENTRY_WBEM(WBEM_E_INVALID_PROVIDER_REGISTRATION, "Invalid provider registration"),
    ENTRY_WBEM(WBEM_E_PROVIDER_LOAD_FAILURE, "Provider could not be loaded"),
    ENTRY_WBEM(WBEM_E_INITIALIZATION_FAILURE, "WMI failed to initialize"),
    ENTRY_WBEM(WBEM_E_TRANSPORT_FAILURE, "Network transport failure"),
    ENTRY_WBEM(WBEM_E_INVALID_OPERATION, "Operation not valid here"),
    ENTRY_WBEM(WBEM_E_INVALID_QUERY, "Invalid query"),
    ENTRY_WBEM(WBEM_E_INVALID_QUERY_TYPE, "Unsupported query language"),
    ENTRY_WBEM(WBEM_E_ALREADY_EXISTS, "Object already exists"),
    ENTRY_WBEM(WBEM_E_OVERRIDE_NOT_ALLOWED, "Qualifier cannot be overridden"),
    ENTRY_WBEM(WBEM_E_PROPAGATED_QUALIFIER, "Qualifier is inherited and cannot be changed here"),
    ENTRY_WBEM(WBEM_E_PROPAGATED_PROPERTY, "Property is inherited and cannot be changed here"),
    ENTRY_WBEM(WBEM_E_UNEXPECTED, "Unexpected WMI failure"),
    ENTRY_WBEM(WBEM_E_ILLEGAL_OPERATION, "Operation not allowed"),
    ENTRY_WBEM(WBEM_E_CANNOT_BE_KEY, "Property cannot be a key"),
    ENTRY_WBEM(WBEM_E_INCOMPLETE_CLASS, "Class definition is incomplete"),
    ENTRY_WBEM(WBEM_E_INVALID_SYNTAX, "Syntax error in query"),
    ENTRY_WBEM(WBEM_E_NONDECORATED_OBJECT, "Object lacks server and namespace information"),
    ENTRY_WBEM(WBEM_E_READ_ONLY, "Property is read-only"),
    ENTRY_WBEM(WBEM_E_PROVIDER_NOT_CAPABLE, "Provider cannot perform this operation"),
    ENTRY_WBEM(WBEM_E_CLASS_HAS_CHILDREN, "Class has derived classes"),
    ENTRY_WBEM(WBEM_E_CLASS_HAS_INSTANCES, "Class has instances"),
    ENTRY_WBEM(WBEM_E_QUERY_NOT_IMPLEMENTED, "Provider does not support this query"),
    ENTRY_WBEM(WBEM_E_ILLEGAL_NULL, "Property does not accept NULL"),
    ENTRY_WBEM(WBEM_E_INVALID_QUALIFIER_TYPE, "Invalid qualifier type"),
    ENTRY_WBEM(WBEM_E_INVALID_PROPERTY_TYPE, "Invalid property type"),
    ENTRY_WBEM(WBEM_E_VALUE_OUT_OF_RANGE, "Value out of range"),
    ENTRY_WBEM(WBEM_E_CANNOT_BE_SINGLETON, "Class cannot be a singleton"),
    ENTRY_WBEM(WBEM_E_INVALID_CIM_TYPE, "Invalid CIM type"),
    ENTRY_WBEM(WBEM_E_INVALID_METHOD, "Invalid method"),
    ENTRY_WBEM(WBEM_E_INVALID_METHOD_PARAMETERS, "Invalid method parameters"),
    ENTRY_WBEM(WBEM_E_SYSTEM_PROPERTY, "System property cannot be changed"),
    ENTRY_WBEM(WBEM_E_INVALID_PROPERTY, "Property does not exist"),
    ENTRY_WBEM(WBEM_E_CALL_CANCELLED, "Call cancelled"),
    ENTRY_WBEM(WBEM_E_SHUTTING_DOWN, "WMI is shutting down"),
    ENTRY_WBEM(WBEM_E_PROPAGATED_METHOD, "Method is inherited and cannot be changed here"),
    ENTRY_WBEM(WBEM_E_UNSUPPORTED_PARAMETER, "Parameter not supported"),
    ENTRY_WBEM(WBEM_E_MISSING_PARAMETER_ID, "Method parameter has no ID qualifier"),
    ENTRY_WBEM(WBEM_E_INVALID_PARAMETER_ID, "Invalid method parameter ID"),
    ENTRY_WBEM(WBEM_E_NONCONSECUTIVE_PARAMETER_IDS, "Method parameter IDs are not consecutive"),
    ENTRY_WBEM(WBEM_E_PARAMETER_ID_ON_RETVAL, "Return value must not have an ID qualifier"),
    ENTRY_WBEM(WBEM_E_INVALID_OBJECT_PATH, "Invalid object path"),
    ENTRY_WBEM(WBEM_E_OUT_OF_DISK_SPACE, "Out of disk space"),
    ENTRY_WBEM(WBEM_E_BUFFER_TOO_SMALL, "Buffer too small"),
    ENTRY_WBEM(WBEM_E_UNSUPPORTED_PUT_EXTENSION, "Put extension not supported"),
    ENTRY_WBEM(WBEM_E_UNKNOWN_OBJECT_TYPE, "Unknown object type in stream"),
    ENTRY_WBEM(WBEM_E_UNKNOWN_PACKET_TYPE, "Unknown packet type"),
    ENTRY_WBEM(WBEM_E_MARSHAL_VERSION_MISMATCH, "Marshalling version mismatch"),
    ENTRY_WBEM(WBEM_E_MARSHAL_INVALID_SIGNATURE, "Bad signature in marshalled data"),
    ENTRY_WBEM(WBEM_E_INVALID_QUALIFIER, "Invalid qualifier"),
    ENTRY_WBEM(WBEM_E_INVALID_DUPLICATE_PARAMETER, "Parameter given more than once"),
    ENTRY_WBEM(WBEM_E_TOO_MUCH_DATA, "Too much data"),
    ENTRY_WBEM(WBEM_E_SERVER_TOO_BUSY, "WMI server too busy"),
    ENTRY_WBEM(WBEM_E_INVALID_FLAVOR, "Invalid qualifier flavor"),
    ENTRY_WBEM(WBEM_E_CIRCULAR_REFERENCE, "Circular reference"),
    ENTRY_WBEM(WBEM_E_UNSUPPORTED_CLASS_UPDATE, "Class change not supported"),
    ENTRY_WBEM(WBEM_E_CANNOT_CHANGE_KEY_INHERITANCE, "Cannot change key inheritance of a class with subclasses"),
    ENTRY_WBEM(WBEM_E_CANNOT_CHANGE_INDEX_INHERITANCE, "Cannot change index inheritance of a class with subclasses"),
    ENTRY_WBEM(WBEM_E_TOO_MANY_PROPERTIES, "Too many properties"),
    ENTRY_WBEM(WBEM_E_UPDATE_TYPE_MISMATCH, "Property type conflicts with a derived class"),
    ENTRY_WBEM(WBEM_E_UPDATE_OVERRIDE_NOT_ALLOWED, "Override conflicts with a derived class"),
    ENTRY_WBEM(WBEM_E_UPDATE_PROPAGATED_METHOD, "Method conflicts with one in a derived class"),
    ENTRY_WBEM(WBEM_E_METHOD_NOT_IMPLEMENTED, "Method not implemented by the provider"),
    ENTRY_WBEM(WBEM_E_METHOD_DISABLED, "Method is disabled"),
    ENTRY_WBEM(WBEM_E_REFRESHER_BUSY, "Refresher is busy"),
    ENTRY_WBEM(WBEM_E_UNPARSABLE_QUERY, "Query could not be parsed"),
    ENTRY_WBEM(WBEM_E_NOT_EVENT_CLASS, "Not an event class"),
    ENTRY_WBEM(WBEM_E_MISSING_GROUP_WITHIN, "GROUP BY needs a GROUP WITHIN clause"),
    ENTRY_WBEM(WBEM_E_MISSING_AGGREGATION_LIST, "GROUP BY without a property list is not supported"),
    ENTRY_WBEM(WBEM_E_PROPERTY_NOT_AN_OBJECT, "Dot notation used on a property that is not an object"),
    ENTRY_WBEM(WBEM_E_AGGREGATING_BY_OBJECT, "Cannot group by an object-valued property"),
    ENTRY_WBEM(WBEM_E_UNINTERPRETABLE_PROVIDER_QUERY, "Provider registration query not understood"),
    ENTRY_WBEM(WBEM_E_BACKUP_RESTORE_WINMGMT_RUNNING, "Cannot restore the repository while WMI is running"),
    ENTRY_WBEM(WBEM_E_QUEUE_OVERFLOW, "Event queue overflowed"),
    ENTRY_WBEM(WBEM_E_PRIVILEGE_NOT_HELD, "Required privilege not held"),
    ENTRY_WBEM(WBEM_E_INVALID_OPERATOR, "Operator not valid for this property type"),
    ENTRY_WBEM(WBEM_E_LOCAL_CREDENTIALS, "Credentials cannot be used for a local connection"),
    ENTRY_WBEM(WBEM_E_CANNOT_BE_ABSTRACT, "Class cannot be abstract"),
    ENTRY_WBEM(WBEM_E_AMENDED_OBJECT, "Amended object written without the amended-qualifiers flag"),
    ENTRY_WBEM(WBEM_E_CLIENT_TOO_SLOW, "Client too slow to accept results"),
    ENTRY_WBEM(WBEM_E_NULL_SECURITY_DESCRIPTOR, "Null security descriptor"),
    ENTRY_WBEM(WBEM_E_TIMED_OUT, "Operation timed out"),
    ENTRY_WBEM(WBEM_E_INVALID_ASSOCIATION, "Invalid association"),
    ENTRY_WBEM(WBEM_E_AMBIGUOUS_OPERATION, "Ambiguous operation"),
    ENTRY_WBEM(WBEM_E_QUOTA_VIOLATION, "WMI quota exceeded"),
    ENTRY_WBEM(WBEM_E_RESERVED_001, "Reserved error code"),
    ENTRY_WBEM(WBEM_E_RESERVED_002, "Reserved error code"),
    ENTRY_WBEM(WBEM_E_UNSUPPORTED_LOCALE, "Unsupported locale"),
    ENTRY_WBEM(WBEM_E_HANDLE_OUT_OF_DATE, "Handle is out of date"),
    ENTRY_WBEM(WBEM_E_CONNECTION_FAILED, "Connection to the server failed"),
    ENTRY_WBEM(WBEM_E_INVALID_HANDLE_REQUEST, "Invalid handle request"),
    ENTRY_WBEM(WBEM_E_PROPERTY_NAME_TOO_WIDE, "Property name too long"),
    ENTRY_WBEM(WBEM_E_CLASS_NAME_TOO_WIDE, "Class name too long"),
    ENTRY_WBEM(WBEM_E_METHOD_NAME_TOO_WIDE, "Method name too long"),
    ENTRY_WBEM(WBEM_E_QUALIFIER_NAME_TOO_WIDE, "Qualifier name too long"),
    ENTRY_WBEM(WBEM_E_RERUN_COMMAND, "Run the command again"),
    ENTRY_WBEM(WBEM_E_DATABASE_VER_MISMATCH, "Repository version mismatch"),
    ENTRY_WBEM(WBEM_E_VETO_DELETE, "Provider refused the deletion"),
    ENTRY_WBEM(WBEM_E_VETO_PUT, "Provider refused the write"),
    ENTRY_WBEM(WBEM_E_INVALID_LOCALE, "Invalid locale"),
    ENTRY_WBEM(WBEM_E_PROVIDER_SUSPENDED, "Provider is suspended"),
    ENTRY_WBEM(WBEM_E_SYNCHRONIZATION_REQUIRED, "Object must be written and read back first"),
    ENTRY_WBEM(WBEM_E_NO_SCHEMA, "No schema"),
    ENTRY_WBEM(WBEM_E_PROVIDER_ALREADY_REGISTERED, "Provider already registered"),
    ENTRY_WBEM(WBEM_E_PROVIDER_NOT_REGISTERED, "Provider not registered"),
    ENTRY_WBEM(WBEM_E_FATAL_TRANSPORT_ERROR, "Fatal transport error"),
    ENTRY_WBEM(WBEM_E_ENCRYPTED_CONNECTION_REQUIRED, "Encrypted connection required"),
    ENTRY_WBEM(WBEM_E_PROVIDER_TIMED_OUT, "Provider timed out"),
    ENTRY_WBEM(WBEM_E_NO_KEY, "Key property has no value"),
    ENTRY_WBEM(WBEM_E_PROVIDER_DISABLED, "Provider is disabled"),

    ENTRY_WBEM(WBEMESS_E_REGISTRATION_TOO_BROAD, "Provider registration overlaps the system event domain"),
    ENTRY_WBEM(WBEMESS_E_REGISTRATION_TOO_PRECISE, "Event query needs a WITHIN clause"),
    ENTRY_WBEM(WBEMESS_E_AUTHZ_NOT_PRIVILEGED, "Missing domain permissions for this subscription"),

    ENTRY_WBEM(WBEMMOF_E_EXPECTED_QUALIFIER_NAME, "MOF: qualifier name expected"),
    ENTRY_WBEM(WBEMMOF_E_EXPECTED_SEMI, "MOF: ';' expected"),
    ENTRY_WBEM(WBEMMOF_E_EXPECTED_OPEN_BRACE, "MOF: '{' expected"),
    ENTRY_WBEM(WBEMMOF_E_EXPECTED_CLOSE_BRACE, "MOF: '}' expected"),
    ENTRY_WBEM(WBEMMOF_E_EXPECTED_CLOSE_BRACKET, "MOF: ']' expected"),
    ENTRY_WBEM(WBEMMOF_E_EXPECTED_CLOSE_PAREN, "MOF: ')' expected"),
    ENTRY_WBEM(WBEMMOF_E_ILLEGAL_CONSTANT_VALUE, "MOF: invalid constant value"),
    ENTRY_WBEM(WBEMMOF_E_EXPECTED_TYPE_IDENTIFIER, "MOF: type identifier expected"),
    ENTRY_WBEM(WBEMMOF_E_EXPECTED_OPEN_PAREN, "MOF: '(' expected"),
    ENTRY_WBEM(WBEMMOF_E_UNRECOGNIZED_TOKEN, "MOF: unrecognized token"),
    ENTRY_WBEM(WBEMMOF_E_UNRECOGNIZED_TYPE, "MOF: unrecognized type"),
    ENTRY_WBEM(WBEMMOF_E_EXPECTED_PROPERTY_NAME, "MOF: property name expected"),
    ENTRY_WBEM(WBEMMOF_E_TYPEDEF_NOT_SUPPORTED, "MOF: typedef not supported"),
    ENTRY_WBEM(WBEMMOF_E_UNEXPECTED_ALIAS, "MOF: alias not allowed here"),
    ENTRY_WBEM(WBEMMOF_E_UNEXPECTED_ARRAY_INIT, "MOF: array initializer not allowed here"),
    ENTRY_WBEM(WBEMMOF_E_INVALID_AMENDMENT_SYNTAX, "MOF: invalid amendment syntax"),
    ENTRY_WBEM(WBEMMOF_E_INVALID_DUPLICATE_AMENDMENT, "MOF: duplicate amendment"),
    ENTRY_WBEM(WBEMMOF_E_INVALID_PRAGMA, "MOF: invalid pragma"),
    ENTRY_WBEM(WBEMMOF_E_INVALID_NAMESPACE_SYNTAX, "MOF: invalid namespace syntax"),
    ENTRY_WBEM(WBEMMOF_E_EXPECTED_CLASS_NAME, "MOF: class name expected"),
    ENTRY_WBEM(WBEMMOF_E_TYPE_MISMATCH, "MOF: value does not match the declared type"),
    ENTRY_WBEM(WBEMMOF_E_EXPECTED_ALIAS_NAME, "MOF: alias name expected"),
    ENTRY_WBEM(WBEMMOF_E_INVALID_CLASS_DECLARATION, "MOF: invalid class declaration"),
    ENTRY_WBEM(WBEMMOF_E_INVALID_INSTANCE_DECLARATION, "MOF: invalid instance declaration"),
    ENTRY_WBEM(WBEMMOF_E_EXPECTED_DOLLAR, "MOF: '$' expected"),
    ENTRY_WBEM(WBEMMOF_E_CIMTYPE_QUALIFIER, "MOF: CIMTYPE qualifier not allowed here"),
    ENTRY_WBEM(WBEMMOF_E_DUPLICATE_PROPERTY, "MOF: duplicate property"),
    ENTRY_WBEM(WBEMMOF_E_INVALID_NAMESPACE_SPECIFICATION, "MOF: invalid namespace path"),
    ENTRY_WBEM(WBEMMOF_E_OUT_OF_RANGE, "MOF: value out of range"),
    ENTRY_WBEM(WBEMMOF_E_INVALID_FILE, "MOF: not a valid MOF file"),
    ENTRY_WBEM(WBEMMOF_E_ALIASES_IN_EMBEDDED, "MOF: aliases not allowed in embedded objects"),
    ENTRY_WBEM(WBEMMOF_E_NULL_ARRAY_ELEM, "MOF: NULL array element"),
    ENTRY_WBEM(WBEMMOF_E_DUPLICATE_QUALIFIER, "MOF: duplicate qualifier"),
    ENTRY_WBEM(WBEMMOF_E_EXPECTED_FLAVOR_TYPE, "MOF: qualifier flavor expected"),
    ENTRY_WBEM(WBEMMOF_E_INCOMPATIBLE_FLAVOR_TYPES, "MOF: conflicting qualifier flavors"),
    ENTRY_WBEM(WBEMMOF_E_MULTIPLE_ALIASES, "MOF: more than one alias"),
    ENTRY_WBEM(WBEMMOF_E_INCOMPATIBLE_FLAVOR_TYPES2, "MOF: conflicting qualifier flavors"),
    ENTRY_WBEM(WBEMMOF_E_NO_ARRAYS_RETURNED, "MOF: methods cannot return arrays"),
    ENTRY_WBEM(WBEMMOF_E_MUST_BE_IN_OR_OUT, "MOF: parameter must be [in] or [out]"),
    ENTRY_WBEM(WBEMMOF_E_INVALID_FLAGS_SYNTAX, "MOF: invalid flags syntax"),
    ENTRY_WBEM(WBEMMOF_E_EXPECTED_BRACE_OR_BAD_TYPE, "MOF: '{' expected or unknown type"),
    ENTRY_WBEM(WBEMMOF_E_UNSUPPORTED_CIMV22_QUAL_VALUE, "MOF: unsupported CIM 2.2 qualifier value"),
    ENTRY_WBEM(WBEMMOF_E_UNSUPPORTED_CIMV22_DATA_TYPE, "MOF: unsupported CIM 2.2 data type"),
    ENTRY_WBEM(WBEMMOF_E_INVALID_DELETEINSTANCE_SYNTAX, "MOF: invalid #pragma deleteinstance"),
    ENTRY_WBEM(WBEMMOF_E_INVALID_QUALIFIER_SYNTAX, "MOF: invalid qualifier syntax"),
    ENTRY_WBEM(WBEMMOF_E_QUALIFIER_USED_OUTSIDE_SCOPE, "MOF: qualifier used outside its scope"),
    ENTRY_WBEM(WBEMMOF_E_ERROR_CREATING_TEMP_FILE, "MOF: cannot create a temporary file"),
    ENTRY_WBEM(WBEMMOF_E_ERROR_INVALID_INCLUDE_FILE, "MOF: invalid include file"),
    ENTRY_WBEM(WBEMMOF_E_INVALID_DELETECLASS_SYNTAX, "MOF: invalid #pragma deleteclass"),

    ENTRY_WIN32(ERROR_FILE_NOT_FOUND, "File not found"),
    ENTRY_WIN32(ERROR_PATH_NOT_FOUND, "Path not found"),
    ENTRY_COM(E_ACCESSDENIED, "Access denied"),
    ENTRY_COM(E_HANDLE, "Invalid handle"),
    ENTRY_WIN32(ERROR_NOT_ENOUGH_MEMORY, "Not enough memory"),
    ENTRY_WIN32(ERROR_BAD_FORMAT, "Invalid executable format"),
    ENTRY_COM(E_OUTOFMEMORY, "Out of memory"),
    ENTRY_WIN32(ERROR_NOT_SUPPORTED, "Request not supported"),
    ENTRY_WIN32(ERROR_BAD_NETPATH, "Network path not found"),
    ENTRY_WIN32(ERROR_BAD_NET_NAME, "Network name not found"),
    ENTRY_COM(E_INVALIDARG, "Invalid argument"),
    ENTRY_WIN32(ERROR_INSUFFICIENT_BUFFER, "Buffer too small"),
    ENTRY_WIN32(ERROR_INVALID_NAME, "Invalid name syntax"),
    ENTRY_WIN32(ERROR_MOD_NOT_FOUND, "Module not found"),
    ENTRY_WIN32(ERROR_PROC_NOT_FOUND, "Procedure not found"),
    ENTRY_WIN32(ERROR_ALREADY_EXISTS, "Already exists"),
    ENTRY_WIN32(ERROR_MORE_DATA, "More data is available"),
    ENTRY_WIN32(WAIT_TIMEOUT, "Wait timed out"),
    ENTRY_WIN32(ERROR_INVALID_FLAGS, "Invalid flags"),
    ENTRY_WIN32(ERROR_SERVICE_DISABLED, "Service is disabled"),
    ENTRY_WIN32(ERROR_SERVICE_DOES_NOT_EXIST, "Service does not exist"),
    ENTRY_WIN32(ERROR_SERVICE_NOT_ACTIVE, "Service is not running"),
    ENTRY_WIN32(ERROR_NOT_FOUND, "Element not found"),
    ENTRY_WIN32(ERROR_NOT_ALL_ASSIGNED, "Not all privileges referenced are assigned to the caller"),
    ENTRY_WIN32(ERROR_CANCELLED, "Operation cancelled by the user"),
    ENTRY_WIN32(ERROR_NETWORK_UNREACHABLE, "Network unreachable"),
    ENTRY_WIN32(ERROR_PRIVILEGE_NOT_HELD, "Required privilege not held"),
    ENTRY_WIN32(ERROR_LOGON_FAILURE, "Logon failed: unknown user name or bad password"),
    ENTRY_WIN32(ERROR_PASSWORD_EXPIRED, "Password expired"),
    ENTRY_WIN32(ERROR_TIMEOUT, "Operation timed out"),
    ENTRY_WIN32(RPC_S_UNKNOWN_IF, "Unknown RPC interface"),
    ENTRY_WIN32(RPC_S_SERVER_UNAVAILABLE, "RPC server unavailable"),
    ENTRY_WIN32(RPC_S_SERVER_TOO_BUSY, "RPC server too busy"),
    ENTRY_WIN32(RPC_S_CALL_FAILED, "Remote procedure call failed"),
    ENTRY_WIN32(RPC_S_CALL_FAILED_DNE, "Remote procedure call failed and did not run"),
    ENTRY_WIN32(RPC_S_PROTOCOL_ERROR, "RPC protocol error"),
    ENTRY_WIN32(RPC_S_UNKNOWN_AUTHN_SERVICE, "Unknown authentication service"),
    ENTRY_WIN32(EPT_S_NOT_REGISTERED, "Endpoint mapper has no endpoint for the service"),
    ENTRY_WIN32(RPC_S_CALL_CANCELLED, "Remote procedure call cancelled"),
    ENTRY_WIN32(RPC_S_SEC_PKG_ERROR, "Security package error"),
    ENTRY_WIN32(ERROR_ACCOUNT_LOCKED_OUT, "Account locked out"),
    /* Wine 8's system text for 1910 is another error's ("Invalid pixel format") */
    ENTRY_WIN32_OWN(OR_INVALID_OXID, "Object exporter not found"),

    ENTRY_COM(CO_E_SERVER_EXEC_FAILURE, "COM server failed to start"),
    ENTRY_COM(CO_E_SERVER_STOPPING, "COM server is stopping"),
};

#undef ENTRY_WBEM
#undef ENTRY_COM
#undef ENTRY_WIN32
#undef ENTRY_WIN32_OWN

/* Room for a system message in UTF-8; longer ones are cut. */
#define HRESULT_TEXT_MAX 1024

static const struct hresult_entry *hresult_find(HRESULT hr)
{
    size_t i;

    for (i = 0; i < sizeof(hresult_table) / sizeof(hresult_table[0]); i++)
        if (hresult_table[i].code == (DWORD)hr) return &hresult_table[i];
    return NULL;
}

/* The system's text for a message id as one UTF-8 line, without the trailing
 * period; returns its length, 0 when the system has none. */
static int hresult_system_text(DWORD id, char *buf, int size)
{
    WCHAR *msg = NULL;
    DWORD len, i, j = 0;
    int n;

    len = FormatMessageW(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS |
                         FORMAT_MESSAGE_ALLOCATE_BUFFER, NULL, id, 0, (WCHAR *)&msg, 0, NULL);
    if (!len || !msg)
    {
        if (msg) LocalFree(msg);
        return 0;
    }

    /* Some messages span lines: fold CR/LF/tab runs into single spaces. */
    for (i = 0; i < len; i++)
    {
        WCHAR c = msg[i];

        if (c == '\r' || c == '\n' || c == '\t') c = ' ';
        if (c == ' ' && (!j || msg[j - 1] == ' ')) continue;
        msg[j++] = c;
    }
    while (j && (msg[j - 1] == ' ' || msg[j - 1] == '.')) j--;

    /* A UTF-16 unit never takes more than 3 UTF-8 bytes, so this fits;
     * never cut a surrogate pair in half. */
    if (j > (DWORD)(size - 1) / 3)
    {
        j = (DWORD)(size - 1) / 3;
        if (j && IS_HIGH_SURROGATE(msg[j - 1])) j--;
    }

    n = j ? WideCharToMultiByte(CP_UTF8, 0, msg, (int)j, buf, size - 1, NULL, NULL) : 0;
    LocalFree(msg);
    if (n <= 0) return 0;
    buf[n] = 0;
    return n;
}

/* Fills buf with the message for hr; returns the table entry, NULL if unknown.
 * Uses no Lua, so nothing can longjmp past LocalFree. */
static const struct hresult_entry *hresult_describe(HRESULT hr, char *buf, int size)
{
    const struct hresult_entry *entry = hresult_find(hr);

    if (entry && entry->own_text)
        snprintf(buf, (size_t)size, "%s", entry->text);
    /* Only failures go to the system: a success code such as S_FALSE (1)
     * would otherwise read as Win32 error 1. */
    else if (FAILED(hr) &&
             (hresult_system_text((DWORD)hr, buf, size) ||
              (HRESULT_FACILITY(hr) == FACILITY_WIN32 &&
               hresult_system_text(HRESULT_CODE(hr), buf, size))))
        ;
    else
        snprintf(buf, (size_t)size, "%s", entry ? entry->text : "unknown error");
    return entry;
}

const char *hresult_name(HRESULT hr)
{
    const struct hresult_entry *entry = hresult_find(hr);

    return entry ? entry->name : NULL;
}

void hresult_push_message(lua_State *L, HRESULT hr)
{
    char text[HRESULT_TEXT_MAX], hex[16];
    const struct hresult_entry *entry = hresult_describe(hr, text, sizeof(text));

    /* lua_pushfstring has no %X */
    snprintf(hex, sizeof(hex), "0x%08lX", (unsigned long)(DWORD)hr);
    lua_pushfstring(L, "%s (%s): %s", entry ? entry->name : "HRESULT", hex, text);
}

int hresult_fail_msg(lua_State *L, HRESULT hr, const char *context)
{
    luaL_pushfail(L);
    if (context)
    {
        lua_pushstring(L, context);
        lua_pushliteral(L, ": ");
        hresult_push_message(L, hr);
        lua_concat(L, 3);
    }
    else
        hresult_push_message(L, hr);
    lua_pushinteger(L, (lua_Integer)(DWORD)hr);
    return 3;
}

int hresult_fail(lua_State *L, HRESULT hr)
{
    return hresult_fail_msg(L, hr, NULL);
}

/*** The name and text of an HRESULT.
 * @function hresult
 * @tparam integer hr as 0x80041017 or -2147217385
 * @treturn string its name (`"WBEM_E_INVALID_QUERY"`), or `"0x%08X"` for an unknown one
 * @treturn string its text
 */
int hresult_l_hresult(lua_State *L)
{
    lua_Integer value = luaL_checkinteger(L, 1);
    char text[HRESULT_TEXT_MAX], hex[16];
    const struct hresult_entry *entry;
    HRESULT hr;

    /* Accept both spellings: -2147217385 and 0x80041017. */
    luaL_argcheck(L, value >= -(lua_Integer)0x80000000 && value <= (lua_Integer)0xffffffff,
                  1, "HRESULT out of 32-bit range");
    hr = (HRESULT)(DWORD)value;

    entry = hresult_describe(hr, text, sizeof(text));
    if (entry)
        lua_pushstring(L, entry->name);
    else
    {
        snprintf(hex, sizeof(hex), "0x%08lX", (unsigned long)(DWORD)hr);
        lua_pushstring(L, hex);
    }
    lua_pushstring(L, text);
    return 2;
}

/* The schema of a wmi.Object (class or instance), read from the object itself:
 * qualifiers with their flavors (IWbemQualifierSet), declared CIM types, keys,
 * origins and method signatures, as plain Lua tables (obj:qualifiers,
 * obj:schema, obj:keys, obj:method).
 *
 * Everything runs protected: pushing a value allocates, and an allocation may
 * raise (out of memory) or run a finalizer that closes the user's object. The
 * object is pinned for the whole read, and every COM pointer, BSTR and array
 * the read holds lives in a struct schema that the caller frees after the
 * protected call, whatever happened in it. */
#include <limits.h>
#include <stdlib.h>
#include <wchar.h>

#include "luawmi.h"

#define SCHEMA_METHOD "wmi.Method"

/* What a read holds; each field is NULL (VT_EMPTY) when it holds nothing. */
struct schema
{
    IWbemClassObject *obj;      /* pinned: our own reference */
    IWbemQualifierSet *qs;
    IWbemClassObject *in, *out; /* a method's signatures */
    SAFEARRAY *names, *params;  /* GetNames of the object, of a signature */
    struct schema_param *order; /* a signature's parameters in ID order */
    BSTR name, name2;           /* a property or method, a parameter */
    VARIANT v;
    BOOL method_enum;           /* BeginMethodEnumeration is in force */
    int (*body)(lua_State *L, struct schema *s);   /* what to read, given the call's arguments */
};

struct schema_param
{
    LONG id;                    /* the ID qualifier, LONG_MAX when it has none */
    LONG index;                 /* its place in GetNames */
};

static void schema_free(struct schema *s)
{
    if (s->qs) IWbemQualifierSet_Release(s->qs);
    if (s->in) IWbemClassObject_Release(s->in);
    if (s->out) IWbemClassObject_Release(s->out);
    if (s->method_enum) IWbemClassObject_EndMethodEnumeration(s->obj);
    if (s->obj) IWbemClassObject_Release(s->obj);
    if (s->names) SafeArrayDestroy(s->names);
    if (s->params) SafeArrayDestroy(s->params);
    free(s->order);
    SysFreeString(s->name);
    SysFreeString(s->name2);
    VariantClear(&s->v);
}

static void schema_drop_qs(struct schema *s)
{
    if (s->qs) IWbemQualifierSet_Release(s->qs);
    s->qs = NULL;
}

/* Raises for a failure that is no answer (out of memory); returns HR otherwise. */
static HRESULT schema_check(lua_State *L, HRESULT hr)
{
    if (hr == E_OUTOFMEMORY || hr == (HRESULT)WBEM_E_OUT_OF_MEMORY) luaL_error(L, "not enough memory");
    return hr;
}

/* *OUT = a BSTR of the string at IDX; a name that is no UTF-8 or holds a NUL
 * names nothing WMI has (WBEM_E_NOT_FOUND). */
static HRESULT schema_bstr(lua_State *L, int idx, BSTR *out)
{
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    HRESULT hr;
    if (strlen(s) != len) return WBEM_E_NOT_FOUND;
    hr = schema_check(L, str_to_bstr(s, len, out));
    return hr == E_INVALIDARG ? (HRESULT)WBEM_E_NOT_FOUND : hr;
}

static int schema_count(SAFEARRAY *sa)
{
    return sa ? (int)sa->rgsabound[0].cElements : 0;
}

static BSTR schema_element(SAFEARRAY *sa, int i)
{
    return ((BSTR *)sa->pvData)[i];
}

/* --- qualifiers --------------------------------------------------------------- */

/* Pushes qualifier NAME of S->qs as a Lua value and returns TRUE, or pushes
 * nothing and returns FALSE when the set has no such qualifier. */
static BOOL schema_push_qualifier(lua_State *L, struct schema *s, const WCHAR *name)
{
    if (!s->qs || FAILED(IWbemQualifierSet_Get(s->qs, name, 0, &s->v, NULL))) return FALSE;
    variant_push(L, &s->v, CIM_EMPTY);
    VariantClear(&s->v);
    return TRUE;
}

/* Pushes the flavor bits as { amended, to_instance, to_subclass, overridable,
 * propagated } (WBEM_FLAVOR_TYPE, [MS-WMI] 2.2.4.2's qualifier flavors). */
static void schema_push_flavor(lua_State *L, LONG flavor)
{
    lua_createtable(L, 0, 5);
    lua_pushboolean(L, (flavor & WBEM_FLAVOR_AMENDED) != 0);
    lua_setfield(L, -2, "amended");
    lua_pushboolean(L, (flavor & WBEM_FLAVOR_FLAG_PROPAGATE_TO_INSTANCE) != 0);
    lua_setfield(L, -2, "to_instance");
    lua_pushboolean(L, (flavor & WBEM_FLAVOR_FLAG_PROPAGATE_TO_DERIVED_CLASS) != 0);
    lua_setfield(L, -2, "to_subclass");
    lua_pushboolean(L, (flavor & WBEM_FLAVOR_NOT_OVERRIDABLE) == 0);
    lua_setfield(L, -2, "overridable");
    lua_pushboolean(L, (flavor & WBEM_FLAVOR_ORIGIN_PROPAGATED) != 0);
    lua_setfield(L, -2, "propagated");
}

/* Pushes the qualifiers of S->qs as name -> value, then, with FLAVORS, name ->
 * flavor table. A missing set (NULL: the object has none to give) is empty. */
static void schema_push_qualifiers(lua_State *L, struct schema *s, BOOL flavors)
{
    int values, flavor_table = 0;
    LONG flavor;

    lua_newtable(L);
    values = lua_gettop(L);
    if (flavors)
    {
        lua_newtable(L);
        flavor_table = lua_gettop(L);
    }
    if (!s->qs || FAILED(IWbemQualifierSet_BeginEnumeration(s->qs, 0))) return;
    for (;;)
    {
        flavor = 0;
        if (IWbemQualifierSet_Next(s->qs, 0, &s->name2, &s->v, &flavor) != WBEM_S_NO_ERROR) break;
        str_push_wide(L, s->name2, -1);
        SysFreeString(s->name2);
        s->name2 = NULL;
        variant_push(L, &s->v, CIM_EMPTY);
        VariantClear(&s->v);
        if (flavors)
        {
            lua_pushvalue(L, -2);
            schema_push_flavor(L, flavor);
            lua_rawset(L, flavor_table);
        }
        lua_rawset(L, values);
    }
    IWbemQualifierSet_EndEnumeration(s->qs);
}

/* --- types ---------------------------------------------------------------------- */

/* Pushes the CIM type as WMI writes it, then sets field "array" of the table
 * at -2 as well as "type": the CIMTYPE qualifier when the object has it
 * ("ref:Win32_Process", "object:Win32_ProcessStartup"), else the type code's
 * name. Needs the property's qualifier set in S->qs (or NULL). */
static void schema_set_type(lua_State *L, struct schema *s, CIMTYPE type)
{
    CIMTYPE base = type & ~CIM_FLAG_ARRAY;
    BOOL got = schema_push_qualifier(L, s, L"CIMTYPE");
    if (got && lua_type(L, -1) == LUA_TSTRING)
    {
        size_t len;
        const char *text = lua_tolstring(L, -1, &len);
        if (len > 2 && !strcmp(text + len - 2, "[]")) /* the element's type, as the convention says */
        {
            lua_pushlstring(L, text, len - 2);
            lua_remove(L, -2);
        }
    }
    else
    {
        if (got) lua_pop(L, 1);
        lua_pushstring(L, base == CIM_REFERENCE ? "ref" : variant_cimtype_name(base));
    }
    lua_setfield(L, -2, "type");
    lua_pushboolean(L, (type & CIM_FLAG_ARRAY) != 0);
    lua_setfield(L, -2, "array");
}

/* --- properties ----------------------------------------------------------------- */

/* The names of S->obj's non-system properties (or of its keys), in S->names. */
static HRESULT schema_names(lua_State *L, struct schema *s, BOOL keys)
{
    LONG flags = (keys ? WBEM_FLAG_KEYS_ONLY : WBEM_FLAG_ALWAYS) | WBEM_FLAG_NONSYSTEM_ONLY;
    if (s->names) SafeArrayDestroy(s->names);
    s->names = NULL;
    return schema_check(L, IWbemClassObject_GetNames(s->obj, NULL, flags, NULL, &s->names));
}

/* TRUE when qualifier NAME of S->qs is the boolean true (DEF when it has none). */
static BOOL schema_flag(lua_State *L, struct schema *s, const WCHAR *name, BOOL def)
{
    BOOL yes = def;
    if (schema_push_qualifier(L, s, name))
    {
        if (lua_type(L, -1) == LUA_TBOOLEAN) yes = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    return yes;
}

/* Pushes the key property names as a sequence, in WMI's order: GetNames of the
 * keys, else the properties with the key qualifier, else, for an instance of a
 * provider that gives neither (Wine: GetNames answers E_NOTIMPL and property
 * qualifier sets are empty), the names its __RELPATH gives values to
 * ("Class.A=...,B=...", [MS-WMI] 2.2.? object paths), in that path's order. */
static HRESULT schema_push_keys(lua_State *L, struct schema *s)
{
    HRESULT hr = schema_names(L, s, TRUE);
    int i, j, n = SUCCEEDED(hr) ? schema_count(s->names) : 0, found = 0;
    const WCHAR *path;

    lua_createtable(L, n, 0);
    for (i = 0; i < n; i++)
    {
        str_push_wide(L, schema_element(s->names, i), -1);
        lua_rawseti(L, -2, i + 1);
    }
    if (n) return S_OK;
    if (FAILED(hr = schema_names(L, s, FALSE)))
    {
        lua_pop(L, 1);
        return hr;
    }
    n = schema_count(s->names);
    for (i = 0; i < n; i++)
    {
        schema_drop_qs(s);
        if (FAILED(IWbemClassObject_GetPropertyQualifierSet(s->obj, schema_element(s->names, i), &s->qs))) continue;
        if (!schema_flag(L, s, L"key", FALSE)) continue;
        str_push_wide(L, schema_element(s->names, i), -1);
        lua_rawseti(L, -2, ++found);
    }
    schema_drop_qs(s);
    if (found || FAILED(IWbemClassObject_Get(s->obj, L"__RELPATH", 0, &s->v, NULL, NULL))) return S_OK;
    path = V_VT(&s->v) == VT_BSTR && V_BSTR(&s->v) ? wcschr(V_BSTR(&s->v), '.') : NULL;
    /* In the path's order: the name that starts at each '.' or ',' followed by "Name=". */
    for (; path && *path; path++)
    {
        if (*path != '.' && *path != ',') continue;
        for (j = 0; j < n; j++)
        {
            const WCHAR *name = schema_element(s->names, j);
            size_t len = wcslen(name);
            if (_wcsnicmp(path + 1, name, len) || path[1 + len] != '=') continue;
            str_push_wide(L, name, -1);
            lua_rawseti(L, -2, ++found);
            break;
        }
    }
    VariantClear(&s->v);
    return S_OK;
}

/* Pushes the description of property S->name of S->obj; KEYS is the index of
 * the table whose fields are the key names. */
static HRESULT schema_push_property(lua_State *L, struct schema *s, int keys)
{
    CIMTYPE type = CIM_EMPTY;
    HRESULT hr = schema_check(L, IWbemClassObject_Get(s->obj, s->name, 0, NULL, &type, NULL));
    BSTR origin = NULL;

    if (FAILED(hr)) return hr;
    schema_drop_qs(s);
    schema_check(L, IWbemClassObject_GetPropertyQualifierSet(s->obj, s->name, &s->qs));
    lua_createtable(L, 0, 9);
    str_push_wide(L, s->name, -1);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "name");
    lua_pushboolean(L, lua_rawget(L, keys) != LUA_TNIL);
    lua_setfield(L, -3, "key");
    lua_pop(L, 1);
    schema_set_type(L, s, type);
    /* CIM's defaults: Read is true unless said otherwise, Write false. */
    lua_pushboolean(L, schema_flag(L, s, L"read", TRUE));
    lua_setfield(L, -2, "read");
    lua_pushboolean(L, schema_flag(L, s, L"write", FALSE));
    lua_setfield(L, -2, "write");
    if (SUCCEEDED(schema_check(L, IWbemClassObject_GetPropertyOrigin(s->obj, s->name, &origin))) && origin)
    {
        SysFreeString(s->name2);
        s->name2 = origin;
        str_push_wide(L, origin, -1);
        lua_setfield(L, -2, "origin");
    }
    schema_push_qualifiers(L, s, FALSE);
    lua_setfield(L, -2, "qualifiers");
    schema_drop_qs(s);
    return S_OK;
}

/* --- methods ---------------------------------------------------------------------- */

static int schema_param_order(const void *a, const void *b)
{
    const struct schema_param *x = a, *y = b;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Pushes the parameters of signature SIG (S->in or S->out; NULL: none) in ID
 * order, ReturnValue left out: it sets "return_type" of the table at -2. */
static HRESULT schema_push_params(lua_State *L, struct schema *s, IWbemClassObject *sig)
{
    int i, n, shown = 0;
    HRESULT hr;

    lua_newtable(L);
    if (!sig) return S_OK;
    if (s->params) SafeArrayDestroy(s->params);
    s->params = NULL;
    hr = schema_check(L, IWbemClassObject_GetNames(sig, NULL, WBEM_FLAG_ALWAYS | WBEM_FLAG_NONSYSTEM_ONLY, NULL,
                                                   &s->params));
    if (FAILED(hr)) return hr;
    n = schema_count(s->params);
    free(s->order);
    if (!(s->order = calloc(n ? n : 1, sizeof(*s->order)))) return luaL_error(L, "not enough memory");
    for (i = 0; i < n; i++)
    {
        s->order[i].id = LONG_MAX;
        s->order[i].index = i;
        schema_drop_qs(s);
        if (FAILED(IWbemClassObject_GetPropertyQualifierSet(sig, schema_element(s->params, i), &s->qs))) continue;
        if (SUCCEEDED(IWbemQualifierSet_Get(s->qs, L"ID", 0, &s->v, NULL)) && V_VT(&s->v) == VT_I4)
            s->order[i].id = V_I4(&s->v);
        VariantClear(&s->v);
    }
    qsort(s->order, n, sizeof(*s->order), schema_param_order);
    for (i = 0; i < n; i++)
    {
        BSTR name = schema_element(s->params, s->order[i].index);
        CIMTYPE type = CIM_EMPTY;
        BOOL ret = !lstrcmpiW(name, L"ReturnValue");

        schema_drop_qs(s);
        if (FAILED(hr = schema_check(L, IWbemClassObject_Get(sig, name, 0, NULL, &type, NULL)))) return hr;
        schema_check(L, IWbemClassObject_GetPropertyQualifierSet(sig, name, &s->qs));
        if (ret)
        {
            /* The return type on the method; its ValueMap/Values, where WMI puts
             * them on the parameter, stay readable by qualifiers{ parameter = ... }. */
            lua_createtable(L, 0, 2);
            schema_set_type(L, s, type);
            lua_getfield(L, -1, "type");
            lua_setfield(L, -4, "return_type");
            lua_pop(L, 1);
            continue;
        }
        lua_createtable(L, 0, 4);
        str_push_wide(L, name, -1);
        lua_setfield(L, -2, "name");
        schema_set_type(L, s, type);
        schema_push_qualifiers(L, s, FALSE);
        lua_setfield(L, -2, "qualifiers");
        lua_rawseti(L, -2, ++shown);
    }
    schema_drop_qs(s);
    return S_OK;
}

/* Pushes the description of method S->name (a wmi.Method table), or nothing
 * when it fails. */
static HRESULT schema_push_method(lua_State *L, struct schema *s)
{
    HRESULT hr;

    if (s->in) IWbemClassObject_Release(s->in);
    if (s->out) IWbemClassObject_Release(s->out);
    s->in = s->out = NULL;
    if (FAILED(hr = schema_check(L, IWbemClassObject_GetMethod(s->obj, s->name, 0, &s->in, &s->out)))) return hr;
    lua_createtable(L, 0, 7);
    str_push_wide(L, s->name, -1);
    lua_setfield(L, -2, "name");
    schema_drop_qs(s);
    schema_check(L, IWbemClassObject_GetMethodQualifierSet(s->obj, s->name, &s->qs));
    lua_pushboolean(L, schema_flag(L, s, L"Static", FALSE));
    lua_setfield(L, -2, "static");
    schema_push_qualifiers(L, s, FALSE);
    lua_setfield(L, -2, "qualifiers");
    schema_drop_qs(s);
    if (FAILED(hr = schema_push_params(L, s, s->in))) return hr;
    lua_setfield(L, -2, "inparams");
    if (FAILED(hr = schema_push_params(L, s, s->out))) return hr;
    lua_setfield(L, -2, "outparams");
    luaL_setmetatable(L, SCHEMA_METHOD);
    return S_OK;
}

/* Pushes the method names of S->obj, in WMI's order. */
static HRESULT schema_method_names(lua_State *L, struct schema *s)
{
    HRESULT hr;
    int n = 0;

    lua_newtable(L);
    if (FAILED(hr = schema_check(L, IWbemClassObject_BeginMethodEnumeration(s->obj, 0)))) return hr;
    s->method_enum = TRUE;
    for (;;)
    {
        IWbemClassObject *in = NULL, *out = NULL;   /* Wine writes through them unchecked */
        hr = IWbemClassObject_NextMethod(s->obj, 0, &s->name2, &in, &out);
        if (in) IWbemClassObject_Release(in);
        if (out) IWbemClassObject_Release(out);
        if (hr != WBEM_S_NO_ERROR) break;
        str_push_wide(L, s->name2, -1);
        SysFreeString(s->name2);
        s->name2 = NULL;
        lua_rawseti(L, -2, ++n);
    }
    IWbemClassObject_EndMethodEnumeration(s->obj);
    s->method_enum = FALSE;
    return SUCCEEDED(schema_check(L, hr)) ? S_OK : hr;
}

/* Appends the value at the top to the string at ACC. */
static void schema_append(lua_State *L, int acc)
{
    lua_pushvalue(L, acc);
    lua_insert(L, -2);
    lua_concat(L, 2);
    lua_replace(L, acc);
}

/* Appends the names of the parameters in field FIELD of the method at 1, and
 * returns how many. */
static lua_Integer schema_append_names(lua_State *L, int acc, const char *field)
{
    lua_Integer i, n;
    lua_getfield(L, 1, field);
    n = lua_istable(L, -1) ? (lua_Integer)lua_rawlen(L, -1) : 0;
    for (i = 1; i <= n; i++)
    {
        if (i > 1)
        {
            lua_pushliteral(L, ", ");
            schema_append(L, acc);
        }
        lua_rawgeti(L, -1, i);
        lua_getfield(L, -1, "name");
        lua_remove(L, -2);
        luaL_tolstring(L, -1, NULL);
        lua_remove(L, -2);
        schema_append(L, acc);
    }
    lua_pop(L, 1);
    return n;
}

/* A wmi.Method's tostring, the form of Python's wmi:
 * "Create(CommandLine, CurrentDirectory, ProcessStartupInformation) => (ProcessId, ReturnValue)". */
static int schema_method_tostring(lua_State *L)
{
    lua_Integer n;
    int acc;
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_getfield(L, 1, "name");
    luaL_tolstring(L, -1, NULL);
    lua_remove(L, -2);
    acc = lua_gettop(L);
    lua_pushliteral(L, "(");
    schema_append(L, acc);
    schema_append_names(L, acc, "inparams");
    lua_pushliteral(L, ") => (");
    schema_append(L, acc);
    n = schema_append_names(L, acc, "outparams");
    if (lua_getfield(L, 1, "return_type") != LUA_TNIL)
    {
        lua_pushstring(L, n ? ", ReturnValue" : "ReturnValue");
        schema_append(L, acc);
    }
    lua_pushliteral(L, ")");
    schema_append(L, acc);
    lua_settop(L, acc);
    return 1;
}

/* --- the protected reads ---------------------------------------------------------- */

static int schema_protected(lua_State *L)
{
    struct schema *s = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return s->body(L, s);
}

/* Runs BODY protected with the object at 1 pinned in the struct schema it gets
 * (the last value on its stack, which it pops); the rest of the stack is the
 * caller's arguments. Frees what the read held, then raises its error or returns
 * its results. */
static int schema_run(lua_State *L, int (*body)(lua_State *L, struct schema *s))
{
    struct schema s;
    int top = lua_gettop(L), status;

    memset(&s, 0, sizeof(s));
    VariantInit(&s.v);
    s.body = body;
    lua_pushcfunction(L, schema_protected);
    lua_insert(L, 1);
    lua_pushlightuserdata(L, &s);
    s.obj = object_check(L, 2);         /* late: nothing allocates before the call */
    IWbemClassObject_AddRef(s.obj);
    status = lua_pcall(L, top + 1, LUA_MULTRET, 0);
    schema_free(&s);
    if (status != LUA_OK) return lua_error(L);
    return lua_gettop(L);
}

/* The qualifier set of property NAME of OBJ in S->qs; WBEM_E_NOT_FOUND when OBJ
 * has no such property (Wine gives any name a qualifier set). */
static HRESULT schema_param_qualifiers(lua_State *L, struct schema *s, IWbemClassObject *obj, const WCHAR *name)
{
    HRESULT hr = schema_check(L, IWbemClassObject_Get(obj, name, 0, NULL, NULL, NULL));
    if (FAILED(hr)) return hr;
    return schema_check(L, IWbemClassObject_GetPropertyQualifierSet(obj, name, &s->qs));
}

/* The qualifier set that qualifiers()'s argument at 2 names, in S->qs. */
static HRESULT schema_target(lua_State *L, struct schema *s)
{
    HRESULT hr;
    int t = lua_type(L, 2);

    if (t == LUA_TNONE || t == LUA_TNIL) return schema_check(L, IWbemClassObject_GetQualifierSet(s->obj, &s->qs));
    if (t == LUA_TSTRING || core_opt_field(L, 2, "property") != LUA_TNIL)
    {
        if (FAILED(hr = schema_bstr(L, t == LUA_TSTRING ? 2 : -1, &s->name))) return hr;
        return schema_param_qualifiers(L, s, s->obj, s->name);
    }
    core_opt_field(L, 2, "method");
    if (FAILED(hr = schema_bstr(L, -1, &s->name))) return hr;
    /* The method must exist: Wine gives any name a qualifier set. */
    if (FAILED(hr = schema_check(L, IWbemClassObject_GetMethod(s->obj, s->name, 0, &s->in, &s->out)))) return hr;
    if (core_opt_field(L, 2, "parameter") == LUA_TNIL)
        return schema_check(L, IWbemClassObject_GetMethodQualifierSet(s->obj, s->name, &s->qs));
    if (FAILED(hr = schema_bstr(L, -1, &s->name2))) return hr;
    /* In-parameters first: a parameter that is both is the same parameter. */
    hr = WBEM_E_NOT_FOUND;
    if (s->in) hr = schema_param_qualifiers(L, s, s->in, s->name2);
    if (FAILED(hr) && s->out) hr = schema_param_qualifiers(L, s, s->out, s->name2);
    return hr;
}

static int schema_qualifiers_body(lua_State *L, struct schema *s)
{
    HRESULT hr;
    if (FAILED(hr = schema_target(L, s))) return hresult_fail(L, hr);
    schema_push_qualifiers(L, s, TRUE);
    return 2;
}

/*** The qualifiers of the class or instance, of a property, of a method or of a method's parameter.
 * Read with IWbemQualifierSet: what the object carries. Amended qualifiers (Description, the text of
 * Values) are there only when the object was read with the `amended` option.
 * @function Object:qualifiers
 * @tparam[opt] string|table target nil: the object's own; a property name; or a table
 *   `{ property = name }`, `{ method = name }` or `{ method = name, parameter = name }`
 * @treturn table name -> value (a boolean, number, string or a list of them)
 * @treturn table name -> flavor `{ amended, to_instance, to_subclass, overridable, propagated }` (booleans)
 * @return or nil, message, hresult (WBEM_E_NOT_FOUND for a property, method or parameter that does not exist)
 */
int schema_qualifiers(lua_State *L)
{
    static const char *const fields[] = { "property", "method", "parameter", NULL };
    int t = lua_type(L, 2);
    size_t len;

    luaL_argexpected(L, t == LUA_TNONE || t == LUA_TNIL || t == LUA_TSTRING || t == LUA_TTABLE, 2,
                     "nil, string or table");
    if (t == LUA_TSTRING) core_check_text(L, 2, &len);
    if (t == LUA_TTABLE)
    {
        int p, m, a;
        core_opt_check(L, 2, "qualifiers", "field", fields);
        p = core_opt_field(L, 2, "property");
        m = core_opt_field(L, 2, "method");
        a = core_opt_field(L, 2, "parameter");
        lua_pop(L, 3);
        if (p != LUA_TNIL && p != LUA_TSTRING) return luaL_error(L, "bad field 'property' to 'qualifiers' (string expected, got %s)", lua_typename(L, p));
        if (m != LUA_TNIL && m != LUA_TSTRING) return luaL_error(L, "bad field 'method' to 'qualifiers' (string expected, got %s)", lua_typename(L, m));
        if (a != LUA_TNIL && a != LUA_TSTRING) return luaL_error(L, "bad field 'parameter' to 'qualifiers' (string expected, got %s)", lua_typename(L, a));
        if ((p == LUA_TNIL) == (m == LUA_TNIL))
            return luaL_argerror(L, 2, "a 'property' or a 'method' expected (one of them)");
        if (a != LUA_TNIL && m == LUA_TNIL) return luaL_argerror(L, 2, "a 'parameter' needs its 'method'");
    }
    lua_settop(L, 2);
    return schema_run(L, schema_qualifiers_body);
}

static int schema_keys_body(lua_State *L, struct schema *s)
{
    HRESULT hr;
    return FAILED(hr = schema_push_keys(L, s)) ? hresult_fail(L, hr) : 1;
}

/*** The names of the class's key properties, in WMI's order.
 * @function Object:keys
 * @treturn table a sequence of names (empty for a class without keys, such as a singleton)
 * @return or nil, message, hresult
 */
int schema_keys(lua_State *L)
{
    lua_settop(L, 1);
    return schema_run(L, schema_keys_body);
}

static int schema_method_body(lua_State *L, struct schema *s)
{
    HRESULT hr;
    if (FAILED(hr = schema_bstr(L, 2, &s->name)) || FAILED(hr = schema_push_method(L, s))) return hresult_fail(L, hr);
    return 1;
}

/*** The description of one method, the same table as in @{Object:schema}'s methods.
 * Its tostring is the method's signature the way Python's wmi shows it:
 * `Create(CommandLine, CurrentDirectory, ProcessStartupInformation) => (ProcessId, ReturnValue)`.
 * @function Object:method
 * @tparam string name the method's name
 * @treturn table `{ name, static, return_type, qualifiers, inparams, outparams }` (a wmi.Method)
 * @return or nil, message, hresult (WBEM_E_NOT_FOUND for a method the class does not have)
 */
int schema_method(lua_State *L)
{
    size_t len;
    core_check_text(L, 2, &len);
    lua_settop(L, 2);
    return schema_run(L, schema_method_body);
}

/* Sets field FIELD of the table at -1 to the system property NAME, when it has one. */
static void schema_set_system(lua_State *L, struct schema *s, const WCHAR *name, const char *field)
{
    if (FAILED(IWbemClassObject_Get(s->obj, name, 0, &s->v, NULL, NULL))) return;
    if (V_VT(&s->v) == VT_BSTR || V_VT(&s->v) == (VT_ARRAY | VT_BSTR))
    {
        variant_push(L, &s->v, CIM_EMPTY);
        lua_setfield(L, -2, field);
    }
    VariantClear(&s->v);
}

static int schema_schema_body(lua_State *L, struct schema *s)
{
    int i, n, keys, desc;
    HRESULT hr;

    lua_createtable(L, 0, 8);
    desc = lua_gettop(L);
    schema_set_system(L, s, L"__CLASS", "class");
    schema_set_system(L, s, L"__SUPERCLASS", "superclass");
    schema_set_system(L, s, L"__DERIVATION", "derivation");
    if (lua_getfield(L, desc, "derivation") == LUA_TNIL)
    {
        lua_newtable(L);
        lua_setfield(L, desc, "derivation");
    }
    lua_pop(L, 1);
    schema_check(L, IWbemClassObject_GetQualifierSet(s->obj, &s->qs));
    schema_push_qualifiers(L, s, FALSE);
    lua_setfield(L, desc, "qualifiers");
    schema_drop_qs(s);

    if (FAILED(hr = schema_push_keys(L, s))) return hresult_fail(L, hr);
    lua_newtable(L);            /* the key names as a set */
    keys = lua_gettop(L);
    n = (int)lua_rawlen(L, -2);
    for (i = 1; i <= n; i++)
    {
        lua_rawgeti(L, -2, i);
        lua_pushboolean(L, 1);
        lua_rawset(L, keys);
    }

    if (FAILED(hr = schema_names(L, s, FALSE))) return hresult_fail(L, hr);
    n = schema_count(s->names);
    lua_createtable(L, n, 0);
    for (i = 0; i < n; i++)
    {
        SysFreeString(s->name);
        if (!(s->name = SysAllocString(schema_element(s->names, i)))) return luaL_error(L, "not enough memory");
        if (FAILED(hr = schema_push_property(L, s, keys))) return hresult_fail(L, hr);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, desc, "properties");
    lua_pop(L, 1);              /* the key set */
    lua_setfield(L, desc, "keys");

    if (FAILED(hr = schema_method_names(L, s))) return hresult_fail(L, hr);
    n = (int)lua_rawlen(L, -1);
    lua_createtable(L, n, 0);
    for (i = 1; i <= n; i++)
    {
        lua_rawgeti(L, -2, i);
        SysFreeString(s->name);
        s->name = NULL;
        hr = schema_bstr(L, -1, &s->name);
        lua_pop(L, 1);
        if (FAILED(hr) || FAILED(hr = schema_push_method(L, s))) return hresult_fail(L, hr);
        lua_rawseti(L, -2, i);
    }
    lua_setfield(L, desc, "methods");
    lua_settop(L, desc);
    return 1;
}

/*** The class's description as plain tables (the shape `wmiq describe` reads).
 * `{ class, superclass, derivation = {...}, qualifiers = {...}, keys = {...},
 * properties = { { name, type, array, key, read, write, origin, qualifiers }, ... },
 * methods = { { name, static, return_type, qualifiers, inparams = { { name, type, array, qualifiers }, ... },
 * outparams = {...} }, ... } }`. Properties are in WMI's order, parameters in `ID` order;
 * `type` is WMI's CIM type of the element (`uint32`, `datetime`, `ref:Win32_Process`,
 * `object:Win32_ProcessStartup`) with `array = true` for an array; outparams leave out
 * ReturnValue, whose type is `return_type` (nil when the method returns nothing). `read` and
 * `write` follow the Read and Write qualifiers (CIM's defaults: true, false). Each method is a
 * wmi.Method (tostring: its signature).
 * @function Object:schema
 * @treturn table the description
 * @return or nil, message, hresult
 */
int schema_schema(lua_State *L)
{
    lua_settop(L, 1);
    return schema_run(L, schema_schema_body);
}

void schema_register(lua_State *L)
{
    luaL_newmetatable(L, SCHEMA_METHOD);
    lua_pushcfunction(L, schema_method_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
}

/* Writing classes: svc:define (a class object from a Lua description), the put
 * modes of svc:put / svc:put_async, and telling classes from instances so that
 * put and delete reach PutClass / DeleteClass. */
#include "luawmi.h"

#include <string.h>

/* CIM type names as WMI spells them (the CIMTYPE qualifier, obj:schema()). */
static const struct { const char *name; CIMTYPE type; } classdef_types[] =
{
    { "sint8", CIM_SINT8 }, { "uint8", CIM_UINT8 }, { "sint16", CIM_SINT16 }, { "uint16", CIM_UINT16 },
    { "sint32", CIM_SINT32 }, { "uint32", CIM_UINT32 }, { "sint64", CIM_SINT64 }, { "uint64", CIM_UINT64 },
    { "real32", CIM_REAL32 }, { "real64", CIM_REAL64 }, { "boolean", CIM_BOOLEAN }, { "string", CIM_STRING },
    { "datetime", CIM_DATETIME }, { "char16", CIM_CHAR16 }, { "ref", CIM_REFERENCE }, { "object", CIM_OBJECT },
};

LONG classdef_put_flags(lua_State *L, int opts, const char *func)
{
    static const char *const modes[] = { "either", "create", "update", NULL };
    static const LONG flags[] = { WBEM_FLAG_CREATE_OR_UPDATE, WBEM_FLAG_CREATE_ONLY, WBEM_FLAG_UPDATE_ONLY };
    if (!lua_isnoneornil(L, opts)) luaL_checktype(L, opts, LUA_TTABLE);
    return flags[core_opt_choice(L, opts, func, "mode", "either", modes)];
}

/* Pushes the __CLASS of OBJ (what svc:put returns for a class). */
int classdef_push_name(lua_State *L, IWbemClassObject *obj)
{
    VARIANT name;
    HRESULT hr;

    VariantInit(&name);
    if (FAILED(hr = IWbemClassObject_Get(obj, L"__CLASS", 0, &name, NULL, NULL))) return hresult_fail(L, hr);
    str_push_wide(L, V_VT(&name) == VT_BSTR ? V_BSTR(&name) : NULL, -1);
    VariantClear(&name);
    return 1;
}

BOOL classdef_is_class(IWbemClassObject *obj)
{
    VARIANT v;
    BOOL is_class;
    VariantInit(&v);
    is_class = SUCCEEDED(IWbemClassObject_Get(obj, L"__GENUS", 0, &v, NULL, NULL)) && V_VT(&v) == VT_I4
               && V_I4(&v) == WBEM_GENUS_CLASS;
    VariantClear(&v);
    return is_class;
}

/* "Lw_Thing" or "\\srv\root\x:Lw_Thing": a class path has no key part ('.' or '='
 * after the class name; a server name may hold a '.'). */
BOOL classdef_is_class_path(const WCHAR *path)
{
    const WCHAR *p = path;
    if ((p[0] == '\\' || p[0] == '/') && (p[1] == '\\' || p[1] == '/'))
        for (p += 2; *p && *p != '\\' && *p != '/'; p++);
    if (wcschr(p, ':')) p = wcschr(p, ':') + 1;
    return !wcspbrk(p, L".=");
}

/* --- svc:define ------------------------------------------------------------------------ */

/* The CIM type of a type name; for "ref:Class" and "object:Class" *NAMED is set (the
 * CIMTYPE qualifier then carries the class). 0 when unknown. */
static CIMTYPE classdef_type(const char *s, BOOL *named)
{
    size_t i, n;
    *named = FALSE;
    for (i = 0; i < ARRAYSIZE(classdef_types); i++)
    {
        n = strlen(classdef_types[i].name);
        if (strncmp(s, classdef_types[i].name, n)) continue;
        if (!s[n]) return classdef_types[i].type;
        if (s[n] == ':' && s[n + 1]
            && (classdef_types[i].type == CIM_REFERENCE || classdef_types[i].type == CIM_OBJECT))
        {
            *named = TRUE;
            return classdef_types[i].type;
        }
    }
    return 0;
}

/* Raises an argument error about FIELD of the description (at ARG). */
static int classdef_field_error(lua_State *L, int arg, const char *field, const char *msg)
{
    return luaL_argerror(L, arg, lua_pushfstring(L, "%s: %s", field, msg));
}

/* Checks the qualifiers table at IDX (of FIELD): string names, values WMI can
 * carry in a qualifier (VT_I4, VT_R8, VT_BSTR, VT_BOOL or arrays of them). */
static void classdef_check_qualifiers(lua_State *L, int arg, int idx, const char *field)
{
    idx = lua_absindex(L, idx);
    if (lua_isnil(L, idx)) return;
    if (!lua_istable(L, idx)) classdef_field_error(L, arg, field, "table expected");
    lua_pushnil(L);
    while (lua_next(L, idx))
    {
        VARIANT v;
        const char *why;
        VARTYPE vt;
        if (lua_type(L, -2) != LUA_TSTRING || !str_is_utf8(lua_tostring(L, -2), lua_rawlen(L, -2)))
            classdef_field_error(L, arg, field, "qualifier names must be strings");
        if ((why = variant_from_lua(L, -1, CIM_EMPTY, &v)))
            classdef_field_error(L, arg, lua_pushfstring(L, "%s.%s", field, lua_tostring(L, -2)), why);
        vt = V_VT(&v) & ~VT_ARRAY;
        VariantClear(&v);
        /* An integer beyond 32 bits would travel as a sint64's decimal string. */
        if (lua_istable(L, -1)) lua_rawgeti(L, -1, 1);
        else lua_pushvalue(L, -1);
        if (lua_type(L, -1) == LUA_TNUMBER && vt == VT_BSTR) vt = VT_EMPTY;
        lua_pop(L, 1);
        if (vt != VT_I4 && vt != VT_R8 && vt != VT_BSTR && vt != VT_BOOL)
            classdef_field_error(L, arg, lua_pushfstring(L, "%s.%s", field, lua_tostring(L, -2)),
                                 "a qualifier is a 32-bit integer, number, string, boolean or a list of one of them");
        lua_pop(L, 1);
    }
}

/* Checks the whole description at ARG before anything is acquired. */
static void classdef_check(lua_State *L, int arg)
{
    static const char *const fields[] = { "name", "superclass", "qualifiers", "properties", NULL };
    static const char *const prop_fields[] = { "name", "type", "array", "key", "default", "qualifiers", NULL };
    lua_Integer i, n;

    luaL_checktype(L, arg, LUA_TTABLE);
    core_opt_check(L, arg, "define", "field", fields);
    if (lua_getfield(L, arg, "name") != LUA_TSTRING || !lua_rawlen(L, -1)
        || !str_is_utf8(lua_tostring(L, -1), lua_rawlen(L, -1)))
        classdef_field_error(L, arg, "name", "non-empty string expected");
    if (lua_getfield(L, arg, "superclass") != LUA_TNIL && (lua_type(L, -1) != LUA_TSTRING || !lua_rawlen(L, -1)
                                                           || !str_is_utf8(lua_tostring(L, -1), lua_rawlen(L, -1))))
        classdef_field_error(L, arg, "superclass", "non-empty string expected");
    lua_getfield(L, arg, "qualifiers");
    classdef_check_qualifiers(L, arg, -1, "qualifiers");
    if (lua_getfield(L, arg, "properties") == LUA_TNIL) n = 0;
    else if (!lua_istable(L, -1)) n = classdef_field_error(L, arg, "properties", "table expected");
    else n = (lua_Integer)lua_rawlen(L, -1);
    for (i = 1; i <= n; i++)
    {
        const char *field = lua_pushfstring(L, "properties[%d]", (int)i);
        int prop = lua_gettop(L) + 1;
        CIMTYPE type;
        BOOL named;
        VARIANT v;
        const char *why;

        if (lua_rawgeti(L, -2, i) != LUA_TTABLE) classdef_field_error(L, arg, field, "table expected");
        core_opt_check(L, prop, "define", "field", prop_fields);
        if (lua_getfield(L, prop, "name") != LUA_TSTRING || !lua_rawlen(L, -1)
            || !str_is_utf8(lua_tostring(L, -1), lua_rawlen(L, -1)))
            classdef_field_error(L, arg, lua_pushfstring(L, "%s.name", field), "non-empty string expected");
        if (lua_getfield(L, prop, "type") != LUA_TSTRING)
            classdef_field_error(L, arg, lua_pushfstring(L, "%s.type", field), "type name expected");
        if (!(type = classdef_type(lua_tostring(L, -1), &named)))
            classdef_field_error(L, arg, lua_pushfstring(L, "%s.type", field),
                                 lua_pushfstring(L, "unknown type '%s'", lua_tostring(L, -1)));
        if (lua_getfield(L, prop, "array") != LUA_TNIL && !lua_isboolean(L, -1))
            classdef_field_error(L, arg, lua_pushfstring(L, "%s.array", field), "boolean expected");
        if (lua_toboolean(L, -1)) type |= CIM_FLAG_ARRAY;
        if (lua_getfield(L, prop, "key") != LUA_TNIL && !lua_isboolean(L, -1))
            classdef_field_error(L, arg, lua_pushfstring(L, "%s.key", field), "boolean expected");
        lua_getfield(L, prop, "default");
        if ((why = variant_from_lua(L, -1, type, &v)))
            classdef_field_error(L, arg, lua_pushfstring(L, "%s.default", field), why);
        VariantClear(&v);
        field = lua_pushfstring(L, "%s.qualifiers", field);
        lua_getfield(L, prop, "qualifiers");
        classdef_check_qualifiers(L, arg, -1, field);
        lua_settop(L, prop - 2);
    }
}

/* What the definition holds, released by the caller whatever happens. */
struct classdef
{
    IWbemServices *svc;
    IWbemClassObject *cls;
    IWbemQualifierSet *quals;
    BSTR name;
    VARIANT v;
    HRESULT hr;
};

/* A BSTR of the string at IDX (checked valid UTF-8) into D->name. */
static BOOL classdef_name(struct classdef *d, lua_State *L, int idx)
{
    SysFreeString(d->name);
    d->name = NULL;
    d->hr = str_to_bstr(lua_tostring(L, idx), lua_rawlen(L, idx), &d->name);
    return SUCCEEDED(d->hr);
}

/* Puts the qualifiers of the table at IDX into D->quals;
 * FLAVOR: the MOF default, overridable and inherited by derived classes. */
static BOOL classdef_put_qualifiers(struct classdef *d, lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (SUCCEEDED(d->hr) && lua_next(L, idx))
    {
        variant_from_lua(L, -1, CIM_EMPTY, &d->v);     /* checked by classdef_check */
        if (classdef_name(d, L, -2))
            d->hr = IWbemQualifierSet_Put(d->quals, d->name, &d->v, WBEM_FLAVOR_FLAG_PROPAGATE_TO_DERIVED_CLASS);
        VariantClear(&d->v);
        lua_pop(L, 1);
    }
    return SUCCEEDED(d->hr);
}

/* A property's own qualifiers: key, CIMTYPE for a named class, then the table's. */
static BOOL classdef_property_qualifiers(struct classdef *d, lua_State *L, int prop)
{
    BOOL named;
    lua_getfield(L, prop, "type");
    classdef_type(lua_tostring(L, -1), &named);
    lua_getfield(L, prop, "key");
    lua_getfield(L, prop, "qualifiers");
    if (!named && !lua_toboolean(L, -2) && lua_isnil(L, -1))
    {
        lua_pop(L, 3);
        return TRUE;
    }
    lua_pop(L, 3);
    if (FAILED(d->hr = IWbemClassObject_GetPropertyQualifierSet(d->cls, d->name, &d->quals))) return FALSE;
    lua_getfield(L, prop, "key");
    if (lua_toboolean(L, -1) && !SysReAllocString(&d->name, L"key")) d->hr = E_OUTOFMEMORY;
    else if (lua_toboolean(L, -1))
    {
        V_VT(&d->v) = VT_BOOL;
        V_BOOL(&d->v) = VARIANT_TRUE;
        d->hr = IWbemQualifierSet_Put(d->quals, d->name, &d->v, WBEM_FLAVOR_FLAG_PROPAGATE_TO_DERIVED_CLASS);
        VariantInit(&d->v);
    }
    lua_getfield(L, prop, "type");
    classdef_type(lua_tostring(L, -1), &named);
    if (SUCCEEDED(d->hr) && named && !SysReAllocString(&d->name, L"CIMTYPE")) d->hr = E_OUTOFMEMORY;
    else if (SUCCEEDED(d->hr) && named)
    {
        V_VT(&d->v) = VT_BSTR;
        d->hr = str_to_bstr(lua_tostring(L, -1), lua_rawlen(L, -1), &V_BSTR(&d->v));
        if (SUCCEEDED(d->hr)) d->hr = IWbemQualifierSet_Put(d->quals, d->name, &d->v, 0);
        VariantClear(&d->v);
    }
    if (lua_getfield(L, prop, "qualifiers") == LUA_TTABLE && SUCCEEDED(d->hr)) classdef_put_qualifiers(d, L, -1);
    lua_pop(L, 3);
    IWbemQualifierSet_Release(d->quals);
    d->quals = NULL;
    return SUCCEEDED(d->hr);
}

/* Protected (a raise leaves D's resources to the caller): builds D->cls from the
 * description at 2. */
static int classdef_body(lua_State *L)
{
    struct classdef *d = lua_touserdata(L, 1);
    IWbemClassObject *super = NULL;
    lua_Integer i, n;

    /* The superclass, or an empty class (GetObject with no path). */
    if (lua_getfield(L, 2, "superclass") != LUA_TNIL && !classdef_name(d, L, -1)) return 0;
    d->hr = IWbemServices_GetObject(d->svc, d->name, 0, NULL, d->name ? &super : &d->cls, NULL);
    if (FAILED(d->hr)) return 0;
    if (super)
    {
        d->hr = IWbemClassObject_SpawnDerivedClass(super, 0, &d->cls);
        IWbemClassObject_Release(super);
        if (FAILED(d->hr)) return 0;
    }
    lua_getfield(L, 2, "name");
    V_VT(&d->v) = VT_BSTR;
    d->hr = str_to_bstr(lua_tostring(L, -1), lua_rawlen(L, -1), &V_BSTR(&d->v));
    if (SUCCEEDED(d->hr)) d->hr = IWbemClassObject_Put(d->cls, L"__CLASS", 0, &d->v, 0);
    VariantClear(&d->v);
    if (FAILED(d->hr)) return 0;

    /* Read even with no qualifiers to put: Wine's empty class (GetObject with no
     * path) has none, and crashes the process in its Get; it is never handed out. */
    if (FAILED(d->hr = IWbemClassObject_GetQualifierSet(d->cls, &d->quals))) return 0;
    if (lua_getfield(L, 2, "qualifiers") == LUA_TTABLE && !classdef_put_qualifiers(d, L, -1)) return 0;
    IWbemQualifierSet_Release(d->quals);
    d->quals = NULL;
    n = lua_getfield(L, 2, "properties") == LUA_TTABLE ? (lua_Integer)lua_rawlen(L, -1) : 0;
    for (i = 1; i <= n; i++)
    {
        int prop;
        BOOL named;
        CIMTYPE type;
        lua_rawgeti(L, -1, i);
        prop = lua_gettop(L);
        lua_getfield(L, prop, "type");
        type = classdef_type(lua_tostring(L, -1), &named);
        lua_getfield(L, prop, "array");
        if (lua_toboolean(L, -1)) type |= CIM_FLAG_ARRAY;
        lua_getfield(L, prop, "default");
        variant_from_lua(L, -1, type, &d->v);          /* checked by classdef_check */
        lua_getfield(L, prop, "name");
        if (classdef_name(d, L, -1)) d->hr = IWbemClassObject_Put(d->cls, d->name, 0, &d->v, type);
        VariantClear(&d->v);
        if (FAILED(d->hr) || !classdef_property_qualifiers(d, L, prop)) return 0;
        lua_settop(L, prop - 1);
    }
    return 0;
}

/*** Defines a class: a class object to write with `svc:put`.
 * The superclass (or, without one, an empty class from `GetObject` with no path) is
 * read from the namespace, a class is derived from it and named, and each property is
 * added with its CIM type, its default value (converted as `obj.Name = v` converts)
 * and its qualifiers (`key = true` puts the `key` qualifier; `ref:Class` and
 * `object:Class` put `CIMTYPE`). Nothing is written until `svc:put(cls)` (PutClass).
 * Methods are not defined here. A mistake in the description is an argument error
 * naming the field (`properties[2].type: unknown type 'uint65'`).
 * @function Services:define
 * @tparam table def `{ name = "Lw_Thing", superclass = "Lw_Base" or nil,
 *   qualifiers = { Description = "...", ... },
 *   properties = { { name = "Id", type = "uint64", key = true },
 *     { name = "Tags", type = "string", array = true, default = { "a" },
 *       qualifiers = { MaxLen = 16 } }, ... } }`; `type` is one of WMI's names
 *   (`sint8`..`uint64`, `real32`, `real64`, `boolean`, `string`, `datetime`,
 *   `char16`, `ref`, `ref:Class`, `object`, `object:Class`)
 * @tparam string def.name the class's name
 * @tparam[opt] string def.superclass the class it derives from (none: a new root class)
 * @tparam[opt] table def.qualifiers the class's qualifiers: name -> value
 * @tparam[opt] table def.properties the properties, in order: each `{ name, type, array, key, default, qualifiers }`
 * @treturn wmi.Object the class, not yet written
 * @return nil, message, hresult when WMI refuses (an unknown superclass...)
 * @usage local cls = assert(svc:define{ name = "Lw_Thing",
 *   properties = { { name = "Id", type = "uint64", key = true } } })
 * assert(svc:put(cls, { mode = "create" }))
 */
static int classdef_define(lua_State *L)
{
    struct classdef d;
    struct object *o;
    int status;

    memset(&d, 0, sizeof(d));
    services_check(L, 1);
    lua_settop(L, 2);
    classdef_check(L, 2);
    lua_settop(L, 2);
    o = object_new(L);
    /* Pinned from here: converting the description allocates. */
    d.svc = services_iface(services_check(L, 1));
    IWbemServices_AddRef(d.svc);
    VariantInit(&d.v);
    lua_pushcfunction(L, classdef_body);
    lua_pushlightuserdata(L, &d);
    lua_pushvalue(L, 2);
    status = lua_pcall(L, 2, 0, 0);
    if (d.quals) IWbemQualifierSet_Release(d.quals);
    VariantClear(&d.v);
    SysFreeString(d.name);
    IWbemServices_Release(d.svc);
    if (status != LUA_OK || FAILED(d.hr))
    {
        if (d.cls) IWbemClassObject_Release(d.cls);
        if (status != LUA_OK) return lua_error(L);
        return hresult_fail(L, d.hr);
    }
    lua_settop(L, 3);
    object_fill(o, d.cls);
    return 1;
}

void classdef_register(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "define", classdef_define },
        { NULL, NULL }
    };
    luaL_getmetatable(L, WMI_SERVICES);
    lua_getfield(L, -1, "__index");
    luaL_setfuncs(L, methods, 0);
    lua_pop(L, 2);
}

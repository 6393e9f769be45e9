/* wmi.Object: a class, an instance or a method's parameters (IWbemClassObject),
 * and wmi.List, the sequence of objects a query returns.
 *
 * Properties are read and written as fields (obj.Name, obj.Name = v) through
 * __index and __newindex; the object's own methods, all lower-case, are looked
 * up first, so obj:get() reaches a property that shares a method's spelling. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "luawmi.h"

#define OBJECT_LIST_SHOWN 20    /* objects a wmi.List's tostring names */
#define OBJECT_VALUES_SHOWN 4   /* values a path-less instance's tostring shows */
#define OBJECT_TEXT_SHOWN 40    /* bytes of a string value it shows */
#define OBJECT_NAMES "wmi.Names"
#define OBJECT_UNCONVERTIBLE "wmi.Unconvertible"

/* The userdata block itself: one pointer, NULL once closed. */
struct object
{
    IWbemClassObject *obj;
    BOOL params;                /* made by obj:inparams(): a method's in-parameters */
};

/* Pushes a new, closed wmi.Object: it exists before anything is acquired, so an
 * error while making it (out of memory) leaks nothing (liolib's newprefile). */
struct object *object_new(lua_State *L)
{
    struct object *o = lua_newuserdatauv(L, sizeof(*o), 0);
    o->obj = NULL;
    o->params = FALSE;
    luaL_setmetatable(L, WMI_OBJECT);
    return o;
}

/* Hands O the reference OBJ carries. */
void object_fill(struct object *o, IWbemClassObject *obj)
{
    o->obj = obj;
    InterlockedIncrement(&wmi_stats.objects);
}

void object_push(lua_State *L, IWbemClassObject *obj)
{
    struct object *o = object_new(L);
    IWbemClassObject_AddRef(obj);
    object_fill(o, obj);
}

IWbemClassObject *object_check(lua_State *L, int arg)
{
    struct object *o = luaL_checkudata(L, arg, WMI_OBJECT);
    if (!o->obj) core_closed_error(L, WMI_OBJECT);
    return o->obj;
}

IWbemClassObject *object_test(lua_State *L, int arg)
{
    struct object *o = luaL_testudata(L, arg, WMI_OBJECT);
    return o ? o->obj : NULL;
}

/* close, __close and __gc: the pointer is cleared first, so closing twice is harmless. */
static int object_close(lua_State *L)
{
    struct object *o = luaL_checkudata(L, 1, WMI_OBJECT);
    IWbemClassObject *obj = o->obj;

    o->obj = NULL;
    if (obj)
    {
        IWbemClassObject_Release(obj);
        InterlockedDecrement(&wmi_stats.objects);
    }
    return 0;
}

/* --- reading and writing properties ------------------------------------------- */

/* The BSTR of a property or method name. A name that holds a NUL or is not
 * UTF-8 names nothing WMI has. */
static HRESULT object_name(const char *name, size_t len, BSTR *out)
{
    HRESULT hr;
    *out = NULL;
    if (strlen(name) != len) return WBEM_E_NOT_FOUND;
    hr = str_to_bstr(name, len, out);
    return hr == E_INVALIDARG ? (HRESULT)WBEM_E_NOT_FOUND : hr;
}

static int object_push_protected(lua_State *L)
{
    variant_push(L, lua_touserdata(L, 1), (CIMTYPE)lua_tointeger(L, 2));
    return 1;
}

/* Pushes V, then clears it. variant_push raises on a VARIANT it cannot convert
 * (a type or an interface WMI should not send, a malformed array, or out of
 * memory): it runs protected so that V is cleared either way. A value it cannot
 * convert becomes the marker { unconvertible = true, vartype = V_VT, message = why }
 * (tostring: "<unconvertible VARIANT 0x7: ...>"), so that one odd property never
 * fails a whole object, query or fan-out; out of memory goes on as an error. */
static void object_push_value(lua_State *L, VARIANT *v, CIMTYPE type)
{
    VARTYPE vt = V_VT(v);
    int status;

    lua_pushcfunction(L, object_push_protected);
    lua_pushlightuserdata(L, v);
    lua_pushinteger(L, type);
    status = lua_pcall(L, 2, 1, 0);
    VariantClear(v);
    if (status == LUA_OK) return;
    if (status != LUA_ERRRUN || lua_type(L, -1) != LUA_TSTRING) lua_error(L);
    lua_createtable(L, 0, 3);
    lua_insert(L, -2);
    lua_setfield(L, -2, "message");
    lua_pushinteger(L, vt);
    lua_setfield(L, -2, "vartype");
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "unconvertible");
    luaL_setmetatable(L, OBJECT_UNCONVERTIBLE);
}

static int object_unconvertible_tostring(lua_State *L)
{
    char vt[16];
    lua_getfield(L, 1, "vartype");
    snprintf(vt, sizeof(vt), "%x", (unsigned)lua_tointeger(L, -1));
    lua_getfield(L, 1, "message");
    lua_pushfstring(L, "<unconvertible VARIANT 0x%s: %s>", vt, luaL_optstring(L, -1, "?"));
    return 1;
}

/* Pushes property NAME of OBJ; pushes nothing when it fails. */
static HRESULT object_get(lua_State *L, IWbemClassObject *obj, const char *name, size_t len)
{
    CIMTYPE type = CIM_EMPTY;
    WCHAR ascii[64];
    VARIANT v;
    BSTR wname = NULL;
    HRESULT hr;

    /* Get takes a plain string: a short ASCII name (the usual) needs no BSTR. */
    if (!str_to_wide_ascii(name, len, ascii, ARRAYSIZE(ascii)) && FAILED(hr = object_name(name, len, &wname)))
        return hr;
    VariantInit(&v);
    hr = IWbemClassObject_Get(obj, wname ? wname : ascii, 0, &v, &type, NULL);
    SysFreeString(wname);
    if (FAILED(hr)) return hr;
    object_push_value(L, &v, type);
    return S_OK;
}

/* Pushes the string system property NAME (__CLASS, __RELPATH...) and returns
 * TRUE, or pushes nothing and returns FALSE when it is NULL or missing. */
static BOOL object_push_system(lua_State *L, IWbemClassObject *obj, const WCHAR *name)
{
    VARIANT v;
    BOOL ok;

    VariantInit(&v);
    if (FAILED(IWbemClassObject_Get(obj, name, 0, &v, NULL, NULL))) return FALSE;
    if ((ok = V_VT(&v) == VT_BSTR && V_BSTR(&v))) str_push_wide(L, V_BSTR(&v), -1);
    VariantClear(&v);
    return ok;
}

static void object_push_class(lua_State *L, IWbemClassObject *obj)
{
    if (!object_push_system(L, obj, L"__CLASS")) lua_pushliteral(L, "an unknown class");
}

/* Raises "<where>no property 'NAME' in CLASS", or the HRESULT's message. */
static int object_error(lua_State *L, IWbemClassObject *obj, HRESULT hr, const char *name)
{
    /* The class first: OBJ is not used after an allocation. */
    if (hr == (HRESULT)WBEM_E_NOT_FOUND) object_push_class(L, obj);
    else hresult_push_message(L, hr);
    luaL_where(L, 1);
    if (hr == (HRESULT)WBEM_E_NOT_FOUND) lua_pushfstring(L, "no property '%s' in ", name);
    else lua_pushfstring(L, "property '%s': ", name);
    lua_rotate(L, -3, -1);      /* where, prefix, class or message */
    lua_concat(L, 3);
    return lua_error(L);
}

/* Put with WMI's carrier for the CIM type (uint32 and uint16 as VT_I4). Wine's
 * spawned instances and method parameters take only the VARTYPE matching the
 * CIM type exactly and answer WBEM_E_TYPE_MISMATCH: try that one once more. */
HRESULT object_put(IWbemClassObject *obj, const WCHAR *name, VARIANT *v, CIMTYPE type)
{
    HRESULT hr = IWbemClassObject_Put(obj, name, 0, v, 0);

    if (hr == (HRESULT)WBEM_E_TYPE_MISMATCH && V_VT(v) == VT_I4 && (type == CIM_UINT32 || type == CIM_UINT16))
    {
        VARIANT exact = *v; /* a plain integer: nothing to copy or free */
        if (type == CIM_UINT32) V_VT(&exact) = VT_UI4;
        else
        {
            V_VT(&exact) = VT_UI2;
            V_UI2(&exact) = (USHORT)V_I4(v);
        }
        hr = IWbemClassObject_Put(obj, name, 0, &exact, 0);
    }
    return hr;
}

/* __index: the methods table (upvalue 1) first, then a property. */
static int object_index(lua_State *L)
{
    struct object *o = luaL_checkudata(L, 1, WMI_OBJECT);
    const char *name;
    size_t len;
    HRESULT hr;

    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL || lua_type(L, 2) != LUA_TSTRING)
        return 1; /* a method, or nil for a key that cannot name a property */
    if (!o->obj) return core_closed_error(L, WMI_OBJECT);
    name = lua_tolstring(L, 2, &len);
    if (FAILED(hr = object_get(L, o->obj, name, len))) return object_error(L, o->obj, hr, name);
    return 1;
}

static BOOL object_is_parameters(IWbemClassObject *obj)
{
    VARIANT v;
    BOOL yes;
    VariantInit(&v);
    if (FAILED(IWbemClassObject_Get(obj, L"__CLASS", 0, &v, NULL, NULL))) return FALSE;
    yes = V_VT(&v) == VT_BSTR && V_BSTR(&v) && !lstrcmpiW(V_BSTR(&v), L"__PARAMETERS");
    VariantClear(&v);
    return yes;
}

/* __newindex: Put, converted by the property's CIM type. */
static int object_newindex(lua_State *L)
{
    IWbemClassObject *obj = object_check(L, 1);
    BOOL params = ((struct object *)lua_touserdata(L, 1))->params;
    size_t len;
    const char *name, *why;
    CIMTYPE type = CIM_EMPTY;
    BSTR wname;
    VARIANT v;
    HRESULT hr;

    /* Only a string names a property (a number would, converted, name none). */
    if (lua_type(L, 2) != LUA_TSTRING) return luaL_typeerror(L, 2, "string");
    name = lua_tolstring(L, 2, &len);
    if (SUCCEEDED(hr = object_name(name, len, &wname)))
        hr = IWbemClassObject_Get(obj, wname, 0, NULL, &type, NULL);
    if (FAILED(hr))
    {
        SysFreeString(wname);
        return object_error(L, obj, hr, name);
    }
    /* In-parameters (from obj:inparams(), or of class __PARAMETERS) take what a
     * method's do. */
    if ((why = variant_from_lua(L, 3, type, &v)) && type == CIM_SINT32 && (params || object_is_parameters(obj)))
        why = variant_from_lua(L, 3, type | VARIANT_PARAM, &v);
    if (why)
    {
        SysFreeString(wname);
        return luaL_error(L, "bad value for property '%s' (%s)", name, why);
    }
    /* Converting may allocate (a number made a string): read the object again. */
    if (!(obj = object_test(L, 1)))
    {
        VariantClear(&v);
        SysFreeString(wname);
        return core_closed_error(L, WMI_OBJECT);
    }
    hr = object_put(obj, wname, &v, type);
    VariantClear(&v);
    SysFreeString(wname);
    if (FAILED(hr)) return object_error(L, obj, hr, name);
    return 0;
}

/* obj:get(name) --> value | nil, message, hresult */
static int object_l_get(lua_State *L)
{
    size_t len;
    const char *name = luaL_checklstring(L, 2, &len);
    IWbemClassObject *obj = object_check(L, 1);
    HRESULT hr = object_get(L, obj, name, len);

    return FAILED(hr) ? hresult_fail(L, hr) : 1;
}

/* obj:cimtype(name) --> the property's CIM type ("uint64", "string[]", ...)
 * | nil, message, hresult: what a value alone does not say (a uint64 above
 * math.maxinteger arrives wrapped, as a negative integer). */
static int object_cimtype(lua_State *L)
{
    size_t len;
    const char *name = luaL_checklstring(L, 2, &len);
    IWbemClassObject *obj = object_check(L, 1);
    CIMTYPE type = CIM_EMPTY;
    BSTR w;
    HRESULT hr = str_to_bstr(name, len, &w);
    if (hr == E_OUTOFMEMORY) return luaL_error(L, "not enough memory");
    if (FAILED(hr)) return luaL_argerror(L, 2, "invalid UTF-8");
    hr = IWbemClassObject_Get(obj, w, 0, NULL, &type, NULL);
    SysFreeString(w);
    if (FAILED(hr)) return hresult_fail(L, hr);
    lua_pushstring(L, variant_cimtype_name(type));
    return 1;
}

/* --- names ---------------------------------------------------------------------- */

/* Pushes the names of OBJ's non-system properties, in WMI's order. */
static HRESULT object_push_names(lua_State *L, IWbemClassObject *obj)
{
    VARIANT names;
    HRESULT hr;

    VariantInit(&names);
    hr = IWbemClassObject_GetNames(obj, NULL, WBEM_FLAG_ALWAYS | WBEM_FLAG_NONSYSTEM_ONLY, NULL,
                                   &V_ARRAY(&names));
    if (FAILED(hr)) return hr;
    V_VT(&names) = VT_ARRAY | VT_BSTR;
    object_push_value(L, &names, CIM_STRING | CIM_FLAG_ARRAY);
    if (lua_isnil(L, -1)) /* no array at all: no properties */
    {
        lua_pop(L, 1);
        lua_newtable(L);
    }
    luaL_setmetatable(L, OBJECT_NAMES);
    return S_OK;
}

/* A list of names (properties(), methods()) prints as "{Caption, Handle}". */
static int object_names_tostring(lua_State *L)
{
    lua_Integer i, n = (lua_Integer)lua_rawlen(L, 1);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addchar(&b, '{');
    for (i = 1; i <= n; i++)
    {
        if (i > 1) luaL_addstring(&b, ", ");
        lua_rawgeti(L, 1, i);
        luaL_addvalue(&b);
    }
    luaL_addchar(&b, '}');
    luaL_pushresult(&b);
    return 1;
}

static int object_properties(lua_State *L)
{
    HRESULT hr = object_push_names(L, object_check(L, 1));
    return FAILED(hr) ? hresult_fail(L, hr) : 1;
}

/* Protected: the enumeration must end, and the name in hand be freed, whatever
 * raises (out of memory). */
struct object_methods
{
    IWbemClassObject *obj;
    BSTR name;
    HRESULT hr;
};

static int object_methods_body(lua_State *L)
{
    struct object_methods *m = lua_touserdata(L, 1);
    IWbemClassObject *in, *out;
    lua_Integer n = 0;

    lua_newtable(L);
    luaL_setmetatable(L, OBJECT_NAMES);
    for (;;)
    {
        /* Signatures are asked for although unused: Wine writes through these
         * pointers without checking them. */
        in = out = NULL;
        m->hr = IWbemClassObject_NextMethod(m->obj, 0, &m->name, &in, &out);
        if (in) IWbemClassObject_Release(in);
        if (out) IWbemClassObject_Release(out);
        if (m->hr != WBEM_S_NO_ERROR) break;
        str_push_wide(L, m->name, -1);
        SysFreeString(m->name);
        m->name = NULL;
        lua_rawseti(L, -2, ++n);
    }
    return 1;
}

static int object_methods(lua_State *L)
{
    struct object_methods m;
    int status;

    m.obj = object_check(L, 1);
    m.name = NULL;
    lua_pushcfunction(L, object_methods_body);
    lua_pushlightuserdata(L, &m);
    if (FAILED(m.hr = IWbemClassObject_BeginMethodEnumeration(m.obj, 0))) return hresult_fail(L, m.hr);
    IWbemClassObject_AddRef(m.obj);     /* pinned: the body allocates */
    status = lua_pcall(L, 1, 1, 0);
    IWbemClassObject_EndMethodEnumeration(m.obj);
    IWbemClassObject_Release(m.obj);
    SysFreeString(m.name);
    if (status != LUA_OK) return lua_error(L);
    return FAILED(m.hr) ? hresult_fail(L, m.hr) : 1;
}

/* --- identity ------------------------------------------------------------------- */

/* obj:path() --> __PATH, else __RELPATH, else nil (method parameters, embedded objects) */
static int object_path(lua_State *L)
{
    IWbemClassObject *obj = object_check(L, 1);
    if (!object_push_system(L, obj, L"__PATH") && !object_push_system(L, obj, L"__RELPATH"))
        lua_pushnil(L);
    return 1;
}

static int object_class(lua_State *L)
{
    if (!object_push_system(L, object_check(L, 1), L"__CLASS")) lua_pushnil(L);
    return 1;
}

static int object_text(lua_State *L)
{
    BSTR text = NULL;
    HRESULT hr = IWbemClassObject_GetObjectText(object_check(L, 1), 0, &text);

    if (FAILED(hr)) return hresult_fail(L, hr);
    str_push_wide(L, text, -1);
    SysFreeString(text);
    return 1;
}

static LONG object_genus(IWbemClassObject *obj)
{
    LONG genus = 0;
    VARIANT v;

    VariantInit(&v);
    if (SUCCEEDED(IWbemClassObject_Get(obj, L"__GENUS", 0, &v, NULL, NULL)) && V_VT(&v) == VT_I4)
        genus = V_I4(&v);
    VariantClear(&v);
    return genus;
}

/* Pushes a short representation of the value at IDX: strings quoted and cut. */
static void object_push_repr(lua_State *L, int idx)
{
    size_t len, cut;
    const char *text;
    switch (lua_type(L, idx))
    {
    case LUA_TSTRING:
        text = lua_tolstring(L, idx, &len);
        cut = len;
        if (len > OBJECT_TEXT_SHOWN)
            for (cut = OBJECT_TEXT_SHOWN; cut > 0 && (text[cut] & 0xC0) == 0x80; cut--);  /* whole characters */
        lua_pushliteral(L, "\"");
        lua_pushlstring(L, text, cut);
        lua_pushstring(L, cut < len ? "...\"" : "\"");
        lua_concat(L, 3);
        break;
    case LUA_TTABLE:
        lua_pushfstring(L, "{%I values}", (lua_Integer)lua_rawlen(L, idx));
        break;
    default:
        luaL_tolstring(L, idx, NULL);
    }
}

/* Pushes " {Name = "Spooler", State = "Running", ...}": what tells apart the
 * instances that have no path (a projected query's, method parameters). */
static void object_push_values(lua_State *L, IWbemClassObject *obj)
{
    lua_Integer i, n;
    int names, shown = 0;
    if (FAILED(object_push_names(L, obj)))
    {
        lua_pushliteral(L, " {}");
        return;
    }
    names = lua_gettop(L);
    n = (lua_Integer)lua_rawlen(L, names);
    lua_pushliteral(L, " {");
    for (i = 1; i <= n; i++)
    {
        const char *name;
        size_t len;
        lua_rawgeti(L, names, i);
        name = lua_tolstring(L, -1, &len);
        if (FAILED(object_get(L, obj, name, len)))
        {
            lua_pop(L, 1);
            continue;
        }
        if (lua_isnil(L, -1))
        {
            lua_pop(L, 2);
            continue;
        }
        if (shown++ == OBJECT_VALUES_SHOWN)
        {
            lua_pop(L, 2);
            lua_pushliteral(L, ", ...");
            lua_concat(L, 2);
            break;
        }
        object_push_repr(L, -1);        /* text, name, value, repr */
        lua_remove(L, -2);
        lua_pushliteral(L, " = ");
        lua_insert(L, -2);
        if (shown > 1) lua_pushliteral(L, ", ");
        else lua_pushliteral(L, "");
        lua_insert(L, -4);              /* text, sep, name, " = ", repr */
        lua_concat(L, 5);
    }
    lua_pushliteral(L, "}");
    lua_concat(L, 2);
    lua_remove(L, names);
}

static int object_push_values_protected(lua_State *L)
{
    object_push_values(L, lua_touserdata(L, 1));
    return 1;
}

/* "class Win32_Process", "Win32_Process.Handle=\"42\"", or, for an instance
 * without a path, its class and values: "Win32_Service {Name = \"Spooler\"}".
 * Never raises for a value it cannot convert: that instance shows " {...}". */
static int object_tostring(lua_State *L)
{
    struct object *o = luaL_checkudata(L, 1, WMI_OBJECT);
    IWbemClassObject *obj = o->obj;

    if (!obj)
    {
        lua_pushliteral(L, WMI_OBJECT " (closed)");
        return 1;
    }
    /* Its own reference: an allocation below may run a finalizer that closes O. */
    IWbemClassObject_AddRef(obj);
    if (object_genus(obj) == WBEM_GENUS_CLASS)
    {
        lua_pushliteral(L, "class ");
        object_push_class(L, obj);
        lua_concat(L, 2);
    }
    else if (!object_push_system(L, obj, L"__RELPATH"))
    {
        if (!object_push_system(L, obj, L"__CLASS")) lua_pushliteral(L, "instance of an unknown class");
        lua_pushcfunction(L, object_push_values_protected);
        lua_pushlightuserdata(L, obj);
        if (lua_pcall(L, 1, 1, 0) != LUA_OK)
        {
            lua_pop(L, 1);
            lua_pushliteral(L, " {...}");
        }
        lua_concat(L, 2);
    }
    IWbemClassObject_Release(obj);
    return 1;
}

/* --- new objects ---------------------------------------------------------------- */

static int object_spawn(lua_State *L)
{
    struct object *o = object_new(L);
    IWbemClassObject *obj = object_check(L, 1), *inst = NULL;
    HRESULT hr = IWbemClassObject_SpawnInstance(obj, 0, &inst);

    if (FAILED(hr)) return hresult_fail(L, hr);
    object_fill(o, inst);
    return 1;
}

static int object_clone(lua_State *L)
{
    struct object *o = object_new(L);
    IWbemClassObject *obj = object_check(L, 1), *copy = NULL;
    HRESULT hr = IWbemClassObject_Clone(obj, &copy);

    if (FAILED(hr)) return hresult_fail(L, hr);
    object_fill(o, copy);
    return 1;
}

/* obj:inparams(method) --> a new instance of METHOD's in-parameters, to fill and
 * pass to svc:exec. A method that takes no parameters has no such class: that
 * is nil, "method 'X' takes no parameters: WBEM_E_NOT_FOUND (...)", the same
 * HRESULT as an unknown method's since there is nothing to fill either way, and
 * a message that tells the two apart. */
static int object_inparams(lua_State *L)
{
    IWbemClassObject *obj, *sig = NULL, *inst = NULL;
    size_t len;
    const char *name = core_check_text(L, 2, &len);
    struct object *o = object_new(L);
    BSTR wname;
    HRESULT hr;

    obj = object_check(L, 1);

    if (SUCCEEDED(hr = object_name(name, len, &wname)))
        hr = IWbemClassObject_GetMethod(obj, wname, 0, &sig, NULL);
    SysFreeString(wname);
    if (SUCCEEDED(hr) && sig) hr = IWbemClassObject_SpawnInstance(sig, 0, &inst);
    if (sig) IWbemClassObject_Release(sig);
    if (FAILED(hr)) return hresult_fail(L, hr);
    if (!inst)
    {
        lua_pushfstring(L, "method '%s' takes no parameters", name);
        return hresult_fail_msg(L, WBEM_E_NOT_FOUND, lua_tostring(L, -1));
    }
    object_fill(o, inst);
    o->params = TRUE;
    return 1;
}

/* --- pairs ---------------------------------------------------------------------- */

/* The iterator: upvalue 1 holds the property names, snapshot when the loop
 * started, upvalue 2 the position. */
static int object_pairs_next(lua_State *L)
{
    IWbemClassObject *obj = object_check(L, 1);
    lua_Integer i = lua_tointeger(L, lua_upvalueindex(2)) + 1;
    const char *name;
    size_t len;
    HRESULT hr;

    if (lua_rawgeti(L, lua_upvalueindex(1), i) == LUA_TNIL) return 1;
    lua_pushinteger(L, i);
    lua_replace(L, lua_upvalueindex(2));
    name = lua_tolstring(L, -1, &len);
    if (FAILED(hr = object_get(L, obj, name, len))) return object_error(L, obj, hr, name);
    return 2;
}

static int object_pairs(lua_State *L)
{
    IWbemClassObject *obj = object_check(L, 1);
    HRESULT hr = object_push_names(L, obj);

    if (FAILED(hr))
    {
        hresult_push_message(L, hr);
        return lua_error(L);
    }
    lua_pushinteger(L, 0);
    lua_pushcclosure(L, object_pairs_next, 2);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

/* --- wmi.List ------------------------------------------------------------------- */

/* "3 objects:\n  Win32_Process.Handle=\"0\"\n  ..." naming at most OBJECT_LIST_SHOWN. */
static int object_list_tostring(lua_State *L)
{
    lua_Integer i, n;
    luaL_Buffer b;

    luaL_checktype(L, 1, LUA_TTABLE);
    n = (lua_Integer)lua_rawlen(L, 1);
    luaL_buffinit(L, &b);
    lua_pushfstring(L, "%I object%s%s", n, n == 1 ? "" : "s", n ? ":" : "");
    luaL_addvalue(&b);
    for (i = 1; i <= n && i <= OBJECT_LIST_SHOWN; i++)
    {
        luaL_addstring(&b, "\n  ");
        lua_rawgeti(L, 1, i);
        luaL_tolstring(L, -1, NULL);
        lua_remove(L, -2);
        luaL_addvalue(&b);
    }
    if (n > OBJECT_LIST_SHOWN) luaL_addstring(&b, "\n  ...");
    luaL_pushresult(&b);
    return 1;
}

void object_new_list(lua_State *L)
{
    lua_newtable(L);
    if (luaL_newmetatable(L, WMI_LIST))
    {
        lua_pushcfunction(L, object_list_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_setmetatable(L, -2);
}

void object_register(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "get", object_l_get },
        { "properties", object_properties },
        { "cimtype", object_cimtype },
        { "methods", object_methods },
        { "path", object_path },
        { "class", object_class },
        { "text", object_text },
        { "spawn", object_spawn },
        { "clone", object_clone },
        { "inparams", object_inparams },
        { "close", object_close },
        { "qualifiers", schema_qualifiers },
        { "schema", schema_schema },
        { "keys", schema_keys },
        { "method", schema_method },
        { NULL, NULL }
    };
    static const luaL_Reg meta[] = {
        { "__newindex", object_newindex },
        { "__pairs", object_pairs },
        { "__tostring", object_tostring },
        { "__gc", object_close },
        { "__close", object_close },
        { NULL, NULL }
    };

    luaL_newmetatable(L, OBJECT_NAMES);
    lua_pushcfunction(L, object_names_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
    schema_register(L);
    luaL_newmetatable(L, OBJECT_UNCONVERTIBLE);
    lua_pushcfunction(L, object_unconvertible_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
    core_new_class(L, WMI_OBJECT, methods, meta);
    /* Replace the plain methods table with a function that also reads properties. */
    lua_getfield(L, -1, "__index");
    lua_pushcclosure(L, object_index, 1);
    lua_setfield(L, -2, "__index");
}

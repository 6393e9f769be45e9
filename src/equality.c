/* a == b for wmi.Object: the same WMI object, as WMI itself would say.
 *
 * An object with a path (an instance or a class read from WMI) is the object its
 * __PATH names: two paths are compared whole (server, namespace, class, keys and
 * their values) and case-insensitively, as "WMI Object Path Requirements" says
 * WMI compares object paths ("String comparisons that deal with object paths are
 * always case-insensitive"); WMI writes a path's keys in one canonical form, so
 * two reads of one instance give the same text up to case. Objects without a
 * path (spawned instances, embedded objects, events, method parameters) are
 * compared by IWbemClassObject::CompareTo with WBEM_COMPARISON_INCLUDE_ALL:
 * equal only when WMI finds them identical in every property, qualifier and
 * origin, as .NET's ManagementBaseObject.Equals does. */
#include "luawmi.h"

/* OBJ's __PATH, or NULL when it has none (or it cannot be read). */
static BSTR equality_path(IWbemClassObject *obj)
{
    VARIANT v;

    VariantInit(&v);
    if (FAILED(IWbemClassObject_Get(obj, L"__PATH", 0, &v, NULL, NULL))) return NULL;
    if (V_VT(&v) == VT_BSTR && V_BSTR(&v) && *V_BSTR(&v)) return V_BSTR(&v);
    VariantClear(&v);
    return NULL;
}

/*** Whether two objects are the same WMI object: `a == b`.
 * Objects with a path are equal when their `__PATH`s are, compared case-insensitively
 * as WMI compares paths (the same process fetched by a query and by `svc:get` is
 * equal; a class never equals its instance). Objects without a path (spawned
 * instances, events, embedded objects) are equal when `IWbemClassObject::CompareTo`
 * with `WBEM_COMPARISON_INCLUDE_ALL` says they are the same; where it fails (Wine
 * implements no CompareTo) they are unequal. An object with a path never equals one
 * without. A closed object equals only itself; `==` never raises.
 * @function Object:__eq
 * @tparam Object a
 * @tparam Object b
 * @treturn boolean
 */
int equality_eq(lua_State *L)
{
    /* Nothing below allocates a Lua value: the pointers stay valid (THE RULE). */
    IWbemClassObject *a = object_test(L, 1), *b = object_test(L, 2);
    BSTR pa, pb;
    BOOL same;

    if (!a || !b)
        same = FALSE;       /* closed, or no wmi.Object: only itself, which Lua saw */
    else if (a == b)
        same = TRUE;
    else
    {
        pa = equality_path(a);
        pb = equality_path(b);
        if (pa || pb)
            same = pa && pb && CompareStringOrdinal(pa, -1, pb, -1, TRUE) == CSTR_EQUAL;
        else
            same = IWbemClassObject_CompareTo(a, WBEM_COMPARISON_INCLUDE_ALL, b) == WBEM_S_SAME;
        SysFreeString(pa);
        SysFreeString(pb);
    }
    lua_pushboolean(L, same);
    return 1;
}

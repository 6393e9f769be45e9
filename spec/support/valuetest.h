/* Force-included (gcc -include) before every source of the test-only DLL
 * build/test/valuetest.dll (spec/support/valuetest.mk), which compiles its own
 * copy of every src/ source. The copy runs in the same Lua state as the real wmi.core, so
 * its metatables need names of their own: under the real ones, the copy's
 * core_new_class (luaL_newmetatable on an existing name, then luaL_setfuncs)
 * would put its methods and __gc into wmi.core's metatables, and wmi.core's
 * objects would then be counted down in the copy's wmi_stats.
 * luawmi.h has an include guard, so these definitions are the ones every
 * source of the copy sees. */
#ifndef VALUETEST_H
#define VALUETEST_H

#include "luawmi.h"

#undef WMI_SERVICES
#undef WMI_OBJECT
#undef WMI_LIST
#undef WMI_APARTMENT
#undef WMI_STUB
#undef WMI_CALL
#define WMI_SERVICES  "valuetest.Services"
#define WMI_OBJECT    "valuetest.Object"
#define WMI_LIST      "valuetest.List"
#define WMI_APARTMENT "valuetest.Apartment"
#define WMI_STUB      "valuetest.Stub"
#define WMI_CALL      "valuetest.Call"

#endif

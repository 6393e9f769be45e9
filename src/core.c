#include "luawmi.h"

int luaopen_wmi_core(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        { "hresult", hresult_l_hresult },
        { NULL, NULL }
    };
    luaL_newlib(L, funcs);
    return 1;
}

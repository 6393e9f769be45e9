#ifndef LUAWMI_H
#define LUAWMI_H
#include <windows.h>
#include <wbemcli.h>
#include <lua.h>
#include <lauxlib.h>
#include "hresult.h"

__declspec(dllexport) int luaopen_wmi_core(lua_State *L);
#endif

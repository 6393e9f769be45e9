/*
 * HRESULT names and messages, and the module's failure convention:
 * operational failures return nil, "NAME (0x8004xxxx): message", hresult.
 */

#ifndef LUAWMI_HRESULT_H
#define LUAWMI_HRESULT_H

#include <windows.h>
#include <lua.h>

/* Symbolic name ("WBEM_E_INVALID_QUERY", "E_NOTIMPL", ...), or NULL if unknown. */
const char *hresult_name(HRESULT hr);

/* Pushes "NAME (0x80041017): message", or "HRESULT (0x...): message" if unknown. */
void hresult_push_message(lua_State *L, HRESULT hr);

/* Pushes nil, message, hr (unsigned 32-bit integer); returns 3. */
int hresult_fail(lua_State *L, HRESULT hr);

/* Same, with the message prefixed by "context: " when context is not NULL. */
int hresult_fail_msg(lua_State *L, HRESULT hr, const char *context);

/* wmi.hresult(hr) --> name (or "0x%08X" when unknown), message */
int hresult_l_hresult(lua_State *L);

#endif /* LUAWMI_HRESULT_H */

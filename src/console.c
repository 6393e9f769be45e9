/* wmi.core.console: the few Windows console calls wmiq needs and Lua lacks: a
 * line read without echo (a password), the console's width, and binary stdout
 * (CSV's CRLF and line breaks inside values must reach the file unchanged). */
#include "luawmi.h"
#include <fcntl.h>
#include <io.h>
#include <stdio.h>

#define CONSOLE_LINE 1024   /* characters of a secret line, the line end included */

/* console.read_secret() --> the line typed on the console, without echo (its line
 * end removed); nil when standard input is not a console (then read it as text). */
static int console_read_secret(lua_State *L)
{
    HANDLE in = GetStdHandle(STD_INPUT_HANDLE);
    WCHAR line[CONSOLE_LINE];
    char utf8[CONSOLE_LINE * 3];
    DWORD mode, got = 0;
    BOOL ok;
    int len;

    if (in == INVALID_HANDLE_VALUE || !GetConsoleMode(in, &mode))
    {
        lua_pushnil(L);
        return 1;
    }
    SetConsoleMode(in, (mode | ENABLE_LINE_INPUT | ENABLE_PROCESSED_INPUT) & ~ENABLE_ECHO_INPUT);
    ok = ReadConsoleW(in, line, CONSOLE_LINE - 1, &got, NULL);
    /* A longer line is cut: its rest must not become the next input read. */
    if (ok && got && line[got - 1] != L'\n')
    {
        WCHAR rest[64];
        DWORD more = 0;
        while (ReadConsoleW(in, rest, ARRAYSIZE(rest), &more, NULL) && more && rest[more - 1] != L'\n');
        SecureZeroMemory(rest, sizeof(rest));
    }
    SetConsoleMode(in, mode);
    if (!ok) got = 0;
    while (got && (line[got - 1] == L'\n' || line[got - 1] == L'\r')) got--;
    len = got ? WideCharToMultiByte(CP_UTF8, 0, line, (int)got, utf8, sizeof(utf8), NULL, NULL) : 0;
    lua_pushlstring(L, utf8, len > 0 ? (size_t)len : 0);
    /* The secret is in Lua now; no other copy stays behind. */
    SecureZeroMemory(line, sizeof(line));
    SecureZeroMemory(utf8, sizeof(utf8));
    return 1;
}

/* console.width() --> columns of the console window standard output writes to,
 * or nil when it is not a console (a pipe or a file). */
static int console_width(lua_State *L)
{
    CONSOLE_SCREEN_BUFFER_INFO info;
    if (!GetConsoleScreenBufferInfo(GetStdHandle(STD_OUTPUT_HANDLE), &info))
    {
        lua_pushnil(L);
        return 1;
    }
    lua_pushinteger(L, info.srWindow.Right - info.srWindow.Left + 1);
    return 1;
}

/* console.binary(file) --> true: no CRLF translation on that Lua file from now on. */
static int console_binary(lua_State *L)
{
    luaL_Stream *stream = luaL_checkudata(L, 1, LUA_FILEHANDLE);
    luaL_argcheck(L, stream->closef != NULL, 1, "attempt to use a closed file");
    fflush(stream->f);
    lua_pushboolean(L, _setmode(_fileno(stream->f), _O_BINARY) != -1);
    return 1;
}

void console_push(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        { "read_secret", console_read_secret },
        { "width", console_width },
        { "binary", console_binary },
        { NULL, NULL }
    };
    luaL_newlib(L, funcs);
}

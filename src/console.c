/* wmi.core.console: the few Windows calls wmiq needs and Lua lacks: a line read
 * from the console with or without echo (a password, a confirmation), a
 * credential from Windows Credential Manager, the console's width, binary stdout
 * (CSV's CRLF and line breaks inside values must reach the file unchanged), and
 * Unicode both ways: the command line as UTF-16, text to a console as UTF-16. */
#include "luawmi.h"
#include <wincred.h>
#include <fcntl.h>
#include <io.h>
#include <shellapi.h>
#include <stdio.h>

#define CONSOLE_LINE 1024   /* characters of a secret line, the line end included */

/* The line typed on the console (its line end removed), echoed or not; nil when
 * standard input is not a console (then read it as text). */
static int console_read(lua_State *L, BOOL echo)
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
    SetConsoleMode(in, (mode | ENABLE_LINE_INPUT | ENABLE_PROCESSED_INPUT | (echo ? ENABLE_ECHO_INPUT : 0))
                       & ~(echo ? 0 : ENABLE_ECHO_INPUT));
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

/* console.interactive() --> whether standard input is a console (one can be asked) */
static int console_interactive(lua_State *L)
{
    DWORD mode;
    lua_pushboolean(L, GetConsoleMode(GetStdHandle(STD_INPUT_HANDLE), &mode));
    return 1;
}

/* console.read_secret() --> a line typed without echo (a password), or nil */
static int console_read_secret(lua_State *L)
{
    return console_read(L, FALSE);
}

/* console.read_line() --> a line typed with echo (an answer), or nil */
static int console_read_line(lua_State *L)
{
    return console_read(L, TRUE);
}

struct console_secret { const char *user, *password; int user_len, password_len; };

static int console_push_secret(lua_State *L)
{
    const struct console_secret *c = lua_touserdata(L, 1);
    lua_pushlstring(L, c->user, c->user_len);
    lua_pushlstring(L, c->password, c->password_len);
    return 2;
}

/* console.credential(name) --> user, password | nil, message, hresult: the generic
 * credential NAME of Windows Credential Manager (CredReadW; `cmdkey /generic:NAME
 * /user:U /pass` stores one). Its blob is the password in UTF-16, as cmdkey and
 * CredWriteW callers store it. The C copies are zeroed, even when pushing them
 * raises (out of memory); the Lua string cannot be. */
static int console_credential(lua_State *L)
{
    size_t len;
    const char *name = luaL_checklstring(L, 1, &len);
    WCHAR wname[CRED_MAX_GENERIC_TARGET_NAME_LENGTH + 1];
    char user[CRED_MAX_USERNAME_LENGTH * 3 + 1], *secret = NULL;
    struct console_secret c = { user, "", 0, 0 };
    CREDENTIALW *cred = NULL;
    int n, status = LUA_OK;
    HRESULT hr = S_OK;

    luaL_argcheck(L, len > 0 && len <= CRED_MAX_GENERIC_TARGET_NAME_LENGTH, 1, "credential name empty or too long");
    n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, name, (int)len, wname, CRED_MAX_GENERIC_TARGET_NAME_LENGTH);
    luaL_argcheck(L, n > 0, 1, "invalid UTF-8");
    wname[n] = 0;
    if (!CredReadW(wname, CRED_TYPE_GENERIC, 0, &cred)) return hresult_fail(L, HRESULT_FROM_WIN32(GetLastError()));
    if (cred->CredentialBlobSize % sizeof(WCHAR)) hr = HRESULT_FROM_WIN32(ERROR_INVALID_DATA);
    else if (cred->CredentialBlobSize)
    {
        const WCHAR *blob = (const WCHAR *)cred->CredentialBlob;
        int wlen = (int)(cred->CredentialBlobSize / sizeof(WCHAR));
        c.password_len = WideCharToMultiByte(CP_UTF8, 0, blob, wlen, NULL, 0, NULL, NULL);
        if (!(secret = malloc(c.password_len ? c.password_len : 1))) hr = E_OUTOFMEMORY;
        else WideCharToMultiByte(CP_UTF8, 0, blob, wlen, secret, c.password_len, NULL, NULL);
        c.password = secret;
    }
    if (SUCCEEDED(hr))
    {
        n = cred->UserName ? WideCharToMultiByte(CP_UTF8, 0, cred->UserName, -1, user, sizeof(user), NULL, NULL) : 0;
        c.user_len = n > 0 ? n - 1 : 0;
        lua_pushcfunction(L, console_push_secret);
        lua_pushlightuserdata(L, &c);
        status = lua_pcall(L, 1, 2, 0);
    }
    if (secret) SecureZeroMemory(secret, c.password_len);
    free(secret);
    SecureZeroMemory(cred->CredentialBlob, cred->CredentialBlobSize);
    CredFree(cred);
    if (status != LUA_OK) return lua_error(L);
    return SUCCEEDED(hr) ? 2 : hresult_fail(L, hr);
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

/* Pushes the table of console_args: the lightuserdata at 1 (argv), the
 * integers at 2 and 3 (argc, n). Raises only on memory. */
static int console_push_args(lua_State *L)
{
    WCHAR **argv = lua_touserdata(L, 1);
    int argc = (int)lua_tointeger(L, 2), n = (int)lua_tointeger(L, 3), i;
    lua_createtable(L, n, 0);
    for (i = 0; i < n; i++)
    {
        str_push_wide(L, argv[argc - n + i], -1);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* console.args(n) --> the last N arguments of the process' command line, in UTF-8
 * (a table), or nil when it has fewer. lua.exe's arg comes through the ANSI code
 * page: any character outside it arrives as '?' or as bytes that are no UTF-8. */
static int console_args(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    int argc, status;
    WCHAR **argv = CommandLineToArgvW(GetCommandLineW(), &argc);
    if (!argv || n < 0 || n > argc)
    {
        LocalFree(argv);
        lua_pushnil(L);
        return 1;
    }
    lua_pushcfunction(L, console_push_args);
    lua_pushlightuserdata(L, argv);
    lua_pushinteger(L, argc);
    lua_pushinteger(L, n);
    status = lua_pcall(L, 3, 1, 0);
    LocalFree(argv);
    if (status != LUA_OK) return lua_error(L);
    return 1;
}

/* The console handle of "stdout" or "stderr", or NULL when that is no console. */
static HANDLE console_handle(lua_State *L, int arg)
{
    static const char *const names[] = { "stdout", "stderr", NULL };
    HANDLE h = GetStdHandle(luaL_checkoption(L, arg, NULL, names) ? STD_ERROR_HANDLE : STD_OUTPUT_HANDLE);
    DWORD mode;
    return h != INVALID_HANDLE_VALUE && GetConsoleMode(h, &mode) ? h : NULL;
}

/* console.is_console(which) --> whether "stdout" or "stderr" is a console. */
static int console_is_console(lua_State *L)
{
    lua_pushboolean(L, console_handle(L, 1) != NULL);
    return 1;
}

/* console.write(which, text) --> true: TEXT (UTF-8) written to that console as
 * UTF-16, whatever its code page; false when it is no console. */
static int console_write(lua_State *L)
{
    HANDLE h = console_handle(L, 1);
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    WCHAR *w;
    int n;
    if (!h)
    {
        lua_pushboolean(L, 0);
        return 1;
    }
    n = len ? MultiByteToWideChar(CP_UTF8, 0, s, (int)len, NULL, 0) : 0;
    if (!(w = malloc((n + 1) * sizeof(WCHAR)))) return luaL_error(L, "not enough memory");
    MultiByteToWideChar(CP_UTF8, 0, s, (int)len, w, n);
    for (int done = 0; done < n;)
    {
        DWORD wrote = 0;
        if (!WriteConsoleW(h, w + done, (DWORD)(n - done), &wrote, NULL) || !wrote) break;
        done += (int)wrote;
    }
    free(w);
    lua_pushboolean(L, 1);
    return 1;
}

/* console.exit(code): ends the process at once with CODE, C's streams flushed: no
 * DLL is told and no exit handler runs. An ordinary exit kills the other threads
 * first (the thread pool's, an in-process provider's) wherever they are, and then
 * needs locks one of them may have held: under Wine such an exit never ends. */
static int console_exit(lua_State *L)
{
    UINT code = (UINT)luaL_checkinteger(L, 1);
    fflush(NULL);
    TerminateProcess(GetCurrentProcess(), code);
    return luaL_error(L, "cannot end the process (error %d)", (int)GetLastError());
}

void console_push(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        { "read_secret", console_read_secret },
        { "read_line", console_read_line },
        { "interactive", console_interactive },
        { "credential", console_credential },
        { "width", console_width },
        { "binary", console_binary },
        { "args", console_args },
        { "is_console", console_is_console },
        { "write", console_write },
        { "exit", console_exit },
        { NULL, NULL }
    };
    luaL_newlib(L, funcs);
}

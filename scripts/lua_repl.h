/* Included into the Windows Lua's lua.c (scripts/setup.sh) for scripts/lua and its
 * REPL (scripts/lua -i).
 *
 * lua_readline: in a terminal, Wine's console hands Ctrl+D and Ctrl+Z over as
 * characters of the line, where a Linux terminal and Windows' console end the
 * input: a line that starts with Ctrl+Z (Windows' rule) or is Ctrl+D alone ends it
 * here too, as end of file.
 *
 * luaL_traceback: an error raised in a luawmi handler (Ctrl+C's "interrupted!"
 * too) leaves the dispatching call with the handler's traceback, which holds the
 * whole stack; lua.c's message handler would add the same stack a second time. */
#include <stdio.h>
#include <string.h>

static int luawmi_readline(char *line, int size, const char *prompt)
{
    fputs(prompt, stdout);
    fflush(stdout);
    if (!fgets(line, size, stdin)) return 0;
    if (line[0] == '\x1a') return 0;
    return !(line[0] == '\x04' && !line[1 + strspn(line + 1, "\r\n")]);
}

#define lua_initreadline(L) ((void)L)
#define lua_readline(L, b, p) ((void)L, luawmi_readline(b, LUA_MAXINPUT, p))
#define lua_saveline(L, line) { (void)L; (void)line; }
#define lua_freeline(L, b) { (void)L; (void)b; }

#define luaL_traceback(L, L1, msg, level) \
    ((msg) && strstr((msg), "\nstack traceback:\n") ? (void)lua_pushstring(L, msg) \
                                                     : (luaL_traceback)(L, L1, msg, level))

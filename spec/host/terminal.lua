-- A real terminal for host specs: tmux runs a command in a pseudo-terminal, specs
-- type into it (send-keys) and read the screen (capture-pane) as a user would.
local terminal = {}
terminal.__index = terminal

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end
terminal.quote = shell_quote

local function run(cmd)
  local f = assert(io.popen(cmd .. " 2>&1"))
  local out = f:read("a")
  local ok, _, code = f:close()
  return out, ok, code
end

-- Starts COMMAND (a shell command line) in a new terminal of WIDTH x HEIGHT on a
-- private tmux server.
function terminal.open(command, width, height)
  local self = setmetatable({ socket = ("luawmi-spec-%d-%d"):format(os.time(), math.random(1e6)) }, terminal)
  local out, ok = run(("tmux -L %s new-session -d -x %d -y %d %s"):format(self.socket, width or 200,
    height or 50, shell_quote(command .. "; sleep 600")))
  assert(ok, "tmux could not start: " .. out)
  return self
end

function terminal:tmux(args)
  return run(("tmux -L %s %s"):format(self.socket, args))
end

-- The screen's text (with the scrollback), trailing blank lines dropped.
function terminal:screen()
  return (self:tmux("capture-pane -p -J -S -1000 -t 0"):gsub("%s+$", ""))
end

function terminal:type(text)
  self:tmux("send-keys -t 0 -l " .. shell_quote(text))
  self:tmux("send-keys -t 0 Enter")
end

-- Waits until the screen matches PATTERN (a Lua pattern, or a plain string with
-- PLAIN; or a function of the screen returning a true value) and returns what
-- matched; raises with the screen after SECONDS.
function terminal:wait_for(pattern, plain, seconds)
  local deadline = os.time() + (seconds or 60)
  repeat
    local screen = self:screen()
    local found
    if type(pattern) == "function" then found = pattern(screen)
    else found = screen:find(pattern, 1, plain) and screen end
    if found then return found end
    os.execute("sleep 0.2")
  until os.time() > deadline
  error(("the terminal never showed %s; it shows:\n%s"):format(tostring(pattern), self:screen()), 2)
end

function terminal:close()
  self:tmux("kill-server")
end

return terminal

-- A checkout of its own for host specs that start and stop wineservers: symlinks
-- to the scripts, the code and what build/ holds, but a Wine prefix of its own
-- (fresh: its first run makes it, about 5 s), so the shared prefix's wineserver,
-- which scripts/check keeps for the other host specs, is never touched.
local q = dofile("spec/host/terminal.lua").quote

local checkout = {}
checkout.__index = checkout

function checkout.new()
  local top = os.tmpname()
  os.remove(top)
  assert(os.execute(("mkdir -p %s/build && for d in scripts bin lua build/lua build/rocks build/test;"
    .. " do ln -s %s/$d %s/$d; done"):format(q(top), q(os.getenv("PWD")), q(top))))
  return setmetatable({ top = top, prefix = top .. "/build/prefix" }, checkout)
end

-- Writes TEXT to the file NAME in the checkout.
function checkout:write(name, text)
  local f = assert(io.open(self.top .. "/" .. name, "w"))
  f:write(text)
  f:close()
end

-- Process ids and command lines of the prefix's programs matching WHAT.
function checkout:programs(what)
  local p = assert(io.popen(("for p in $(pgrep -f %s); do tr '\\0' '\\n' 2>/dev/null </proc/$p/environ"
    .. " | grep -qx %s && echo $p $(tr '\\0' ' ' 2>/dev/null </proc/$p/cmdline); done")
    :format(q(what), q("WINEPREFIX=" .. self.prefix))))
  local out = p:read("a")
  p:close()
  return out
end

-- Stops what of the prefix still runs and removes the checkout.
function checkout:remove()
  os.execute(("WINEPREFIX=%s wineserver -k >/dev/null 2>&1; rm -rf %s"):format(q(self.prefix), q(self.top)))
end

return checkout

-- scripts/doc-extract.lua OUT FILE...: gathers the doc comments of the Lua files
-- (`--- ...` blocks) and the C files (`/*** ... */` blocks) into one Lua file of
-- module wmi for LDoc (make doc). LDoc reads C files only when each declares a
-- module first, and stops at any file that does not; gathered here, a doc comment
-- in a new file needs nothing but the project's convention (`@function name`,
-- `@function Type:method`; in Lua the name may come from the `function` line below
-- the comment). Methods and fields are grouped under their type's `@type` section.
local out_name = assert(arg[1], "usage: doc-extract.lua OUT FILE...")

local header                -- the `@module` block
local module_items = {}     -- blocks of module functions and fields
local types, type_order = {}, {}   -- name -> { doc = block or nil, items = { block... } }

local function type_of(name)
  local t = types[name]
  if not t then
    t = { items = {} }
    types[name] = t
    type_order[#type_order + 1] = name
  end
  return t
end

local function warn(file, line, msg)
  io.stderr:write(("%s:%d: %s\n"):format(file, line, msg))
end

-- The name a Lua definition line gives: "wmi.f" / "M.f" -> "f", "Type.m" / "Type:m" -> "Type:m",
-- "table.f" (an exported table's function, e.g. datetime.parse) -> "table.f".
local function name_from_code(code)
  local owner, name = code:match("^%s*function%s+([%w_]+)[.:]([%w_]+)%s*%(")
  if not owner then owner, name = code:match("^%s*([%w_]+)%.([%w_]+)%s*=%s*function") end
  if not owner then return nil end
  if owner:find("^%u") then return owner .. ":" .. name end
  if owner ~= "wmi" and owner ~= "M" then return owner .. "." .. name end
  return name
end

-- Files each block: LINES (comment text without its markers), the code line after it.
local function add(file, line, lines, code)
  local text = table.concat(lines, "\n")
  if text:find("@module") then
    header = text
    return
  end
  local tname = text:match("@type%s+([%w_]+)")
  if tname then
    type_of(tname).doc = text
    return
  end
  local fname = text:match("@function%s+([%w_.:]+)")
  local field = text:match("@field%s+([%w_.]+)")
  if fname then
    -- `wmi.f` is the module's `f`; `Type.m` a method, as `Type:m`.
    local plain = fname:gsub("^wmi%.", ""):gsub("^(%u[%w_]*)%.([%w_]+)$", "%1:%2")
    text = text:gsub("@function%s+[%w_.:]+", "@function " .. plain:gsub("%%", "%%%%"), 1)
    fname = plain
  end
  if not fname and not field then
    fname = code and name_from_code(code)
    if not fname then
      warn(file, line, "doc comment names nothing (no @function, @field, @type or function line): skipped")
      return
    end
    text = text .. "\n@function " .. fname
  end
  local owner = (fname or field):match("^([%w_]+)[.:]")
  if owner then
    -- In its type's section, LDoc names a field Type.name from `@field name`.
    if field then text = text:gsub("@field%s+[%w_]+%.", "@field ", 1) end
    local items = type_of(owner).items
    items[#items + 1] = text
  else
    module_items[#module_items + 1] = text
  end
end

local function read_lua(file)
  local lines = {}
  for l in io.lines(file) do lines[#lines + 1] = l end
  local i = 1
  while i <= #lines do
    local l = lines[i]
    if l:find("^%s*%-%-%-%s") or l:find("^%s*%-%-%-$") then
      local block, start = { (l:gsub("^%s*%-%-%-%s?", "")) }, i
      i = i + 1
      while i <= #lines and lines[i]:find("^%s*%-%-") and not lines[i]:find("^%s*%-%-%-") do
        block[#block + 1] = (lines[i]:gsub("^%s*%-%-%s?", ""))
        i = i + 1
      end
      add(file, start, block, lines[i])
    else
      i = i + 1
    end
  end
end

local function read_c(file)
  local f = assert(io.open(file))
  local src = f:read("a")
  f:close()
  local pos = 1
  while true do
    local s, e = src:find("/%*%*%*[^*/]", pos)
    if not s then break end
    local close = assert(src:find("*/", e, true), file .. ": unterminated doc comment")
    local body = src:sub(s + 4, close - 1)
    local block = {}
    for l in (body .. "\n"):gmatch("(.-)\n") do
      block[#block + 1] = (l:gsub("^%s*%*%s?", ""):gsub("%s+$", ""))
    end
    while block[#block] == "" do block[#block] = nil end
    local _, line = src:sub(1, s):gsub("\n", "")
    add(file, line + 1, block, nil)
    pos = close + 2
  end
end

for i = 2, #arg do
  if arg[i]:find("%.lua$") then read_lua(arg[i]) else read_c(arg[i]) end
end

local function comment(text)
  return "--- " .. text:gsub("\n", "\n-- ") .. "\n\n"
end

local out = {}
out[#out + 1] = comment(header or "The luawmi module.\n@module wmi")
for _, text in ipairs(module_items) do out[#out + 1] = comment(text) end
table.sort(type_order)
for _, name in ipairs(type_order) do
  local t = types[name]
  out[#out + 1] = comment(t.doc or (name .. " objects.\n@type " .. name))
  for _, text in ipairs(t.items) do out[#out + 1] = comment(text) end
end
local f = assert(io.open(out_name, "w"))
f:write(table.concat(out))
f:close()

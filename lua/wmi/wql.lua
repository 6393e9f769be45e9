-- WQL built from Lua tables: wmi.wql(tbl), wmi.quote(value), wmi.NULL, and the
-- Services' association methods. Every query entry point of the C core (query,
-- each, stream, query_async, subscribe; wmi.fanout) takes the table too: the core
-- calls wql.build, registered with it below, where it reads the query argument.
--
-- Values are quoted as Windows' WQL reads them ("WHERE Clause (WMI)"): a string
-- in double quotes, with backslash and double quote escaped by a backslash.
-- Identifiers (classes, properties, qualifiers, roles) are checked, never quoted:
-- a value can only ever be a constant, a name only a name.
local core = require "wmi.core"

local concat, sort = table.concat, table.sort
local mtype = math.type

local wql = {}

--- The WQL NULL, for a query table's values.
-- `where = { Description = wmi.NULL }` is `Description IS NULL`;
-- `{ "Description", "<>", wmi.NULL }` is `Description IS NOT NULL`.
-- @field NULL
local NULL = setmetatable({}, { __name = "wmi.NULL", __tostring = function() return "wmi.NULL" end })
wql.NULL = NULL

-- A misuse found while building: caught by build, which returns nil, message.
local Misuse = {}
local function misuse(fmt, ...)
  error(setmetatable({ message = fmt:format(...) }, Misuse), 0)
end

local function describe(v)
  if v == NULL then return "wmi.NULL" end
  return type(v) == "string" and ("%q"):format(v) or tostring(v)
end

-- A class, property, qualifier or role name: WMI's names are letters, digits and
-- underscores, not starting with a digit. DOTTED allows Prop.Embedded.Prop.
local function identifier(v, field, dotted)
  if type(v) ~= "string" then misuse("%s: name expected, got %s", field, type(v)) end
  local ok = true
  for part in (v .. "."):gmatch("(.-)%.") do
    ok = ok and part:find("^[%a_][%w_]*$") ~= nil
  end
  if not ok or v == "" or (not dotted and v:find(".", 1, true)) then
    misuse("%s: %s is not a WMI name", field, describe(v))
  end
  return v
end

-- The WQL constant for V, or nil and why not.
local function constant(v)
  local t = type(v)
  if t == "string" then
    if not utf8.len(v) then return nil, "string is not valid UTF-8" end
    if v:find("\0", 1, true) then return nil, "string contains a NUL" end
    return '"' .. v:gsub('[\\"]', "\\%0") .. '"'
  elseif mtype(v) == "integer" then
    return ("%d"):format(v)
  elseif mtype(v) == "float" then
    if v ~= v or v == math.huge or v == -math.huge then return nil, "number is not finite" end
    local s
    for digits = 15, 17 do       -- the shortest text that reads back as V
      s = ("%." .. digits .. "g"):format(v)
      if tonumber(s) == v then break end
    end
    if not s:find("[.e]") then s = s .. ".0" end
    return s
  elseif t == "boolean" then
    return v and "TRUE" or "FALSE"
  elseif v == NULL then
    return "NULL"
  end
  return nil, ("%s cannot be a WQL value"):format(t)
end

local function value(v, field)
  local s, why = constant(v)
  if not s then misuse("%s: %s", field, why) end
  return s
end

local OPERATORS = { ["="] = "=", ["<>"] = "<>", ["!="] = "<>", ["<"] = "<", [">"] = ">", ["<="] = "<=",
                    [">="] = ">=", LIKE = "LIKE", ISA = "ISA", IS = "IS", ["IS NOT"] = "IS NOT" }

-- One condition: PROP OP VALUE; NULL only with =, <>, IS, IS NOT.
local function condition(prefix, prop, op, v, field)
  local name = prefix .. identifier(prop, field .. " (property)", true)
  local o = type(op) == "string" and OPERATORS[op:upper()]
  if not o then misuse("%s: unknown operator %s", field, describe(op)) end
  if v == NULL then
    if o == "=" or o == "IS" then return name .. " IS NULL" end
    if o == "<>" or o == "IS NOT" then return name .. " IS NOT NULL" end
    misuse("%s: %s cannot compare with wmi.NULL", field, o)
  end
  if o == "IS" or o == "IS NOT" then misuse("%s: %s takes wmi.NULL only", field, o) end
  if o == "LIKE" and type(v) ~= "string" then misuse("%s: LIKE takes a string pattern", field) end
  if o == "ISA" then v = identifier(v, field .. " (class)") end
  return ("%s %s %s"):format(name, o, value(v, field))
end

-- The conditions of a where table, ANDed: its sequence of { prop, op, value } in
-- order, then its prop = value entries sorted by name (a stable text).
local function conditions(where, prefix, out)
  if where == nil then return out end
  if type(where) ~= "table" then misuse("where: table expected, got %s", type(where)) end
  local n = #where
  for i = 1, n do
    local c = where[i]
    local field = ("where[%d]"):format(i)
    if type(c) ~= "table" then misuse("%s: { property, operator, value } expected", field) end
    out[#out + 1] = condition(prefix, c[1], c[2], c[3], field)
  end
  local names = {}
  for k in next, where do
    if mtype(k) ~= "integer" or k < 1 or k > n then
      if type(k) ~= "string" then misuse("where: key %s is not a property name", describe(k)) end
      names[#names + 1] = k
    end
  end
  sort(names)
  for _, k in ipairs(names) do out[#out + 1] = condition(prefix, k, "=", where[k], "where." .. k) end
  return out
end

local function check_keys(t, known, what)
  for k in next, t do
    if not known[k] then misuse("unknown field %s in a %s query", describe(k), what) end
  end
end

local SELECT_FIELDS = { from = true, properties = true, where = true }
local EVENT_FIELDS = { event = true, within = true, isa = true, where = true, properties = true }
local ASSOCIATORS = { associators_of = true, assoc_class = true, result_class = true, role = true,
                      result_role = true, required_qualifier = true, required_assoc_qualifier = true,
                      classes_only = true }
local REFERENCES = { references_of = true, result_class = true, role = true, required_qualifier = true,
                     classes_only = true }
-- WQL's keywords of ASSOCIATORS OF / REFERENCES OF, in the order we write them.
local ASSOC_KEYWORDS = {
  { "assoc_class", "AssocClass" }, { "result_class", "ResultClass" }, { "role", "Role" },
  { "result_role", "ResultRole" }, { "required_qualifier", "RequiredQualifier" },
  { "required_assoc_qualifier", "RequiredAssocQualifier" },
}

local function property_list(props)
  if props == nil then return "*" end
  if type(props) ~= "table" or #props == 0 then misuse("properties: non-empty sequence of names expected") end
  local names = {}
  for i, p in ipairs(props) do names[i] = identifier(p, ("properties[%d]"):format(i)) end
  return concat(names, ", ")
end

local function with_where(text, conds)
  if #conds == 0 then return text end
  return text .. " WHERE " .. concat(conds, " AND ")
end

-- The relative path of an object (its __RELPATH) or a path string, for {path}.
local function object_path(target, field)
  local path = target
  if type(target) == "userdata" then
    local ok, p = pcall(function() return target:get("__RELPATH") end)
    if not ok or type(p) ~= "string" then misuse("%s: the object has no path", field) end
    path = p
  elseif type(target) ~= "string" then
    misuse("%s: wmi.Object or object path expected, got %s", field, type(target))
  end
  -- Nothing in WQL escapes a '}' inside {path}: it would end the path.
  if path == "" or path:find("}", 1, true) or path:find("\0", 1, true) or not utf8.len(path) then
    misuse("%s: %s is no object path WQL can carry", field, describe(path))
  end
  return "{" .. path .. "}"
end

local function association(t, kind)
  local of = kind == "ASSOCIATORS" and "associators_of" or "references_of"
  check_keys(t, kind == "ASSOCIATORS" and ASSOCIATORS or REFERENCES, kind:lower())
  local parts = { kind .. " OF " .. object_path(t[of], of) }
  local words = {}
  for _, kw in ipairs(ASSOC_KEYWORDS) do
    local v = t[kw[1]]
    if v ~= nil then words[#words + 1] = kw[2] .. " = " .. identifier(v, kw[1]) end
  end
  if t.classes_only ~= nil and type(t.classes_only) ~= "boolean" then
    misuse("classes_only: boolean expected, got %s", type(t.classes_only))
  end
  if t.classes_only then words[#words + 1] = "ClassDefsOnly" end
  if #words > 0 then parts[2] = "WHERE " .. concat(words, " ") end
  return concat(parts, " ")
end

local function event_query(t)
  check_keys(t, EVENT_FIELDS, "event")
  local text = ("SELECT %s FROM %s"):format(property_list(t.properties), identifier(t.event, "event"))
  local within = t.within
  if within ~= nil then
    if type(within) ~= "number" or within <= 0 or within ~= within or within == math.huge then
      misuse("within: positive number of seconds expected, got %s", describe(within))
    end
    text = text .. " WITHIN " .. value(within, "within")
  end
  local conds = {}
  if t.isa ~= nil then conds[1] = "TargetInstance ISA " .. value(identifier(t.isa, "isa"), "isa") end
  -- An intrinsic event (isa given) filters its TargetInstance; another its own properties.
  return with_where(text, conditions(t.where, t.isa ~= nil and "TargetInstance." or "", conds))
end

local function text_of(t)
  if type(t) ~= "table" then misuse("query table expected, got %s", type(t)) end
  if t.associators_of ~= nil then return association(t, "ASSOCIATORS") end
  if t.references_of ~= nil then return association(t, "REFERENCES") end
  if t.event ~= nil then return event_query(t) end
  if t.from == nil then misuse("a query table needs from, event, associators_of or references_of") end
  check_keys(t, SELECT_FIELDS, "select")
  local text = ("SELECT %s FROM %s"):format(property_list(t.properties), identifier(t.from, "from"))
  return with_where(text, conditions(t.where, "", {}))
end

-- TBL's WQL text, or nil and what is wrong with it (the C core's entry point).
function wql.build(tbl)
  local ok, text = pcall(text_of, tbl)
  if ok then return text end
  if getmetatable(text) == Misuse then return nil, text.message end
  error(text, 0)
end

--- The WQL text of a query table.
-- A select: `{ from = "Win32_Process", properties = { "Name" }, where = { Name = "lua.exe" } }`;
-- an event: `{ event = "__InstanceCreationEvent", within = 1, isa = "Win32_Process", where = {...} }`
-- (with `isa`, `where` filters `TargetInstance`); associations:
-- `{ associators_of = obj_or_path, assoc_class, result_class, role, result_role,
-- required_qualifier, required_assoc_qualifier, classes_only }`,
-- `{ references_of = obj_or_path, result_class, role, required_qualifier, classes_only }`.
-- `where` entries AND together: `Name = value` entries, and `{ "Name", op, value }`
-- with op one of `=`, `<>`, `<`, `>`, `<=`, `>=`, `LIKE`, `ISA`, `IS`, `IS NOT`.
-- @tparam table tbl the query
-- @tparam[opt] string tbl.from a select's class
-- @tparam[opt] {string,...} tbl.properties the properties selected (default `*`)
-- @tparam[opt] table tbl.where the conditions, ANDed
-- @tparam[opt] string tbl.event an event query's event class
-- @tparam[opt] number tbl.within seconds between polls (`WITHIN`)
-- @tparam[opt] string tbl.isa the class of `TargetInstance` (`ISA`)
-- @treturn string WQL text
-- @function wql
function wql.wql(tbl)
  local text, why = wql.build(tbl)
  if not text then error(("bad argument #1 to 'wql' (%s)"):format(why), 2) end
  return text
end

--- A Lua value as a WQL constant.
-- Strings in double quotes with `\` and `"` escaped; integers, floats, booleans
-- (`TRUE`/`FALSE`) and `wmi.NULL` (`NULL`).
-- @param value string, number, boolean or wmi.NULL
-- @treturn string the constant
-- @function quote
function wql.quote(value_)
  local s, why = constant(value_)
  if not s then error(("bad argument #1 to 'quote' (%s)"):format(why), 2) end
  return s
end

-- Services methods. A wmi.Object holds only its IWbemClassObject, not the
-- connection it came from, so the association methods live on the Services and
-- take the object (or its path).
local Services = core.methods.Services

-- The text of an association query of TARGET (argument 1 of FUNC) with FILTERS (2).
local function association_query(kind, target, filters, func)
  if type(target) ~= "string" and type(target) ~= "userdata" then
    error(("bad argument #1 to '%s' (wmi.Object or object path expected, got %s)"):format(func, type(target)), 3)
  end
  if filters ~= nil and type(filters) ~= "table" then
    error(("bad argument #2 to '%s' (table expected, got %s)"):format(func, type(filters)), 3)
  end
  local t = {}
  for k, v in next, filters or {} do t[k] = v end
  if t[kind] ~= nil then
    error(("bad argument #2 to '%s' (%s is the first argument)"):format(func, kind), 3)
  end
  t[kind] = target
  local text, why = wql.build(t)
  if not text then
    local prefix = kind .. ": "          -- the target's fault, or a filter's
    local own = why:sub(1, #prefix) == prefix
    error(("bad argument #%d to '%s' (%s)"):format(own and 1 or 2, func, own and why:sub(#prefix + 1) or why), 3)
  end
  return text
end

-- Runs METHOD of SVC; an argument error is renamed for FUNC, whose arguments
-- start one later (the query takes the place of the target and its filters).
local function delegate(func, method, svc, ...)
  local r = table.pack(pcall(method, svc, ...))
  if not r[1] then
    local err = r[2]
    if type(err) == "string" then
      local what, msg = err:match("^bad (argument #%d+) to '[^']*' (%(.*%))$")
      if not what then what, msg = err:match("^bad (option '[^']*') to '[^']*' (%(.*%))$") end
      if what then err = ("bad %s to '%s' %s"):format(what, func, msg) end
    end
    error(err, 0)
  end
  return table.unpack(r, 2, r.n)
end

--- The objects associated with an object: ASSOCIATORS OF its path.
-- @tparam wmi.Object|string target an object with a path, or an object path
-- @tparam[opt] table filters assoc_class, result_class, role, result_role,
-- required_qualifier, required_assoc_qualifier (names), classes_only (boolean)
-- @tparam[opt] table opts as svc:query's
-- @treturn wmi.List as svc:query
function Services.associators(svc, target, filters, opts)
  return delegate("associators", Services.query, svc,
    association_query("associators_of", target, filters, "associators"), opts)
end

--- The association instances that refer to an object: REFERENCES OF its path.
-- @tparam wmi.Object|string target an object with a path, or an object path
-- @tparam[opt] table filters result_class, role, required_qualifier (names), classes_only (boolean)
-- @tparam[opt] table opts as svc:query's
-- @treturn wmi.List as svc:query
function Services.references(svc, target, filters, opts)
  return delegate("references", Services.query, svc,
    association_query("references_of", target, filters, "references"), opts)
end

--- svc:associators as an asynchronous call (ExecQueryAsync), as svc:query_async.
-- @tparam wmi.Object|string target
-- @tparam table|nil filters as svc:associators
-- @param sink a stub or a table of handlers
-- @tparam[opt] table opts as svc:query_async's
-- @treturn wmi.Call
function Services.associators_async(svc, target, filters, sink, opts)
  return delegate("associators_async", Services.query_async, svc,
    association_query("associators_of", target, filters, "associators_async"), sink, opts)
end

--- svc:references as an asynchronous call (ExecQueryAsync), as svc:query_async.
-- @tparam wmi.Object|string target
-- @tparam table|nil filters as svc:references
-- @param sink a stub or a table of handlers
-- @tparam[opt] table opts as svc:query_async's
-- @treturn wmi.Call
function Services.references_async(svc, target, filters, sink, opts)
  return delegate("references_async", Services.query_async, svc,
    association_query("references_of", target, filters, "references_async"), sink, opts)
end

core.wql_builder(wql.build)

return wql

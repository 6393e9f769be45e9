-- WMIC's aliases and grammar for wmiq: `wmiq ALIAS [where "COND"] VERB ...`.
-- parse turns the words after the options into what cli.main runs.
local wmic = {}

-- WMIC's alias table (wmic /?: the common ones): class, and the properties of
-- `list brief`.
wmic.aliases = {
  baseboard = { "Win32_BaseBoard", "Manufacturer,Model,Name,SerialNumber,SKU,Product" },
  bios = { "Win32_BIOS", "Manufacturer,Name,SerialNumber,SMBIOSBIOSVersion,Version" },
  computersystem = { "Win32_ComputerSystem", "Domain,Manufacturer,Model,Name,PrimaryOwnerName,TotalPhysicalMemory" },
  cpu = { "Win32_Processor", "Caption,DeviceID,Manufacturer,MaxClockSpeed,Name,SocketDesignation" },
  desktopmonitor = { "Win32_DesktopMonitor", "DeviceID,DisplayType,MonitorManufacturer,Name,ScreenHeight,ScreenWidth" },
  diskdrive = { "Win32_DiskDrive", "Caption,DeviceID,Model,Partitions,Size" },
  environment = { "Win32_Environment", "Name,UserName,VariableValue" },
  group = { "Win32_Group", "Caption,Domain,Name,SID" },
  logicaldisk = { "Win32_LogicalDisk", "DeviceID,DriveType,FreeSpace,ProviderName,Size,VolumeName" },
  memorychip = { "Win32_PhysicalMemory", "BankLabel,Capacity,DeviceLocator,PartNumber,SerialNumber,Tag" },
  netuse = { "Win32_NetworkConnection", "ConnectionState,LocalName,Name,Persistent,RemoteName,RemotePath,Status" },
  nic = { "Win32_NetworkAdapter", "AdapterType,DeviceID,MACAddress,Name,NetworkAddresses,ServiceName,Speed" },
  nicconfig = { "Win32_NetworkAdapterConfiguration",
                "DefaultIPGateway,Description,DHCPEnabled,DNSDomain,Index,IPAddress,ServiceName" },
  os = { "Win32_OperatingSystem", "BuildNumber,Organization,RegisteredUser,SerialNumber,SystemDirectory,Version" },
  partition = { "Win32_DiskPartition", "BlockSize,BootPartition,DeviceID,DiskIndex,Index,Name,Size,Type" },
  printer = { "Win32_Printer", "Location,Name,PrinterState,PrinterStatus,ShareName,SystemName" },
  process = { "Win32_Process", "HandleCount,Name,Priority,ProcessId,ThreadCount,WorkingSetSize" },
  product = { "Win32_Product", "Caption,IdentifyingNumber,Name,Vendor,Version" },
  qfe = { "Win32_QuickFixEngineering", "Caption,Description,HotFixID,InstalledBy,InstalledOn" },
  service = { "Win32_Service", "ExitCode,Name,ProcessId,StartMode,State,Status" },
  share = { "Win32_Share", "Description,Name,Path" },
  sounddev = { "Win32_SoundDevice", "Manufacturer,Name,Status" },
  startup = { "Win32_StartupCommand", "Caption,Command,User" },
  sysdriver = { "Win32_SystemDriver", "Name,PathName,ServiceType,StartMode,State,Status" },
  timezone = { "Win32_TimeZone", "Bias,Caption,StandardName" },
  useraccount = { "Win32_UserAccount", "AccountType,Caption,Domain,FullName,Name,SID" },
  volume = { "Win32_Volume", "Capacity,DriveLetter,FileSystem,FreeSpace,Label" },
}

-- `wmiq --help aliases`.
function wmic.help()
  local names = {}
  for name in pairs(wmic.aliases) do names[#names + 1] = name end
  table.sort(names)
  local lines = { [[
WMIC's aliases: wmiq ALIAS [where "COND"] VERB, or wmiq path CLASS [where "COND"] VERB
  ALIAS                 (none)            the whole table, every property
  ALIAS get P1,P2,...   those properties (WMIC's get; names as in WQL)
  ALIAS list brief      the properties below; list full (or list): every property, list format
  ALIAS where "COND" call METHOD [NAME=VALUE ...]
                        the method on every instance COND selects (a static method,
                        such as process call create, once on the class)
  ALIAS where "COND" set NAME=VALUE ...   changes those properties of every match (put)
  ALIAS create NAME=VALUE ...             a new instance (put)
  ALIAS where "COND" delete               deletes every match: asks at a terminal,
                        needs --yes without one
  COND is a WQL condition (name='notepad.exe'); without where, every instance.

Alias            Class                               list brief]] }
  for _, name in ipairs(names) do
    local a = wmic.aliases[name]
    lines[#lines + 1] = ("%-16s %-35s %s"):format(name, a[1], a[2])
  end
  return table.concat(lines, "\n") .. "\n"
end

local VERBS = { get = true, list = true, call = true, set = true, create = true, delete = true }

-- NAME=VALUE words into { name = value } (true/false: booleans) and the words.
local function assignments(words, first, usage)
  local params, arguments, names = {}, {}, {}
  for j = first, #words do
    local k, v = words[j]:match("^([%w_]+)=(.*)$")
    if not k then usage("bad parameter '%s' (NAME=VALUE expected)", words[j]) end
    arguments[#arguments + 1] = words[j]
    if v == "true" then v = true elseif v == "false" then v = false end
    params[k] = v
    names[#names + 1] = k
  end
  return params, arguments, names
end

-- Whether WORDS (after the options) start with an alias or `path CLASS`.
function wmic.applies(words)
  local w = words[1] and words[1]:lower()
  return w ~= nil and (wmic.aliases[w] ~= nil or (w == "path" and words[2] ~= nil))
end

-- Fills O from WORDS: o.command ("query", "wmic-call", "set", "create", "delete"),
-- o.class, o.where, o.wql, o.method, o.params, o.arguments, o.list_format,
-- o.columns (list brief: the properties shown, where the class has them).
function wmic.parse(o, words, usage)
  local i, alias = 2, wmic.aliases[words[1]:lower()]
  if alias then
    o.class = alias[1]
  else
    o.class, i = words[2], 3
    if not o.class:find("^[%a_][%w_]*$") then usage("'path' needs a class name, got '%s'", o.class) end
  end
  if words[i] and words[i]:lower() == "where" then
    o.where = words[i + 1]
    if not o.where then usage("'where' needs a condition (where \"name='notepad.exe'\")") end
    i = i + 2
  end
  local verb = words[i] and words[i]:lower() or "get"
  if not VERBS[verb] then usage("unknown verb '%s' (get, list, call, set, create or delete expected)", words[i]) end
  local select_list = "*"
  if verb == "get" then
    local names = table.concat(words, ",", i + 1)
    if names ~= "" then
      local list = {}
      for name in names:gmatch("[^,%s]+") do
        if not name:find("^[%a_][%w_]*$") then usage("bad property name '%s' after 'get'", name) end
        list[#list + 1] = name
      end
      select_list = table.concat(list, ", ")
    end
  elseif verb == "list" then
    local kind = (words[i + 1] or "full"):lower()
    if kind == "brief" and alias then
      -- Every property, shown are the brief ones the class has (Wine's lack some).
      o.columns = {}
      for name in alias[2]:gmatch("[^,]+") do o.columns[#o.columns + 1] = name end
    elseif kind ~= "brief" and kind ~= "full" then
      usage("unknown list format '%s' (brief or full expected)", words[i + 1])
    else
      o.list_format = true
    end
    if words[i + 2] then usage("'list' takes one format, got '%s' too", words[i + 2]) end
  elseif verb == "call" then
    o.method = words[i + 1]
    if not o.method then usage("'call' needs a METHOD") end
    o.params, o.arguments = assignments(words, i + 2, usage)
  elseif verb == "set" or verb == "create" then
    o.params, o.arguments, o.names = assignments(words, i + 1, usage)
    if #o.arguments == 0 then usage("'%s' needs NAME=VALUE", verb) end
    if verb == "create" and o.where then usage("'create' takes no where") end
  elseif words[i + 1] then
    usage("'delete' takes nothing after it, got '%s'", words[i + 1])
  end
  o.command = (verb == "get" or verb == "list") and "query" or verb == "call" and "wmic-call" or verb
  o.wql = ("SELECT %s FROM %s%s"):format(select_list, o.class, o.where and " WHERE " .. o.where or "")
end

-- FNV-1a, 32 bits, of S's bytes.
local function fnv1a(s)
  local h = 0x811c9dc5
  for k = 1, #s do h = ((h ~ s:byte(k)) * 0x01000193) & 0xffffffff end
  return h
end
wmic.fnv1a = fnv1a

-- The hosts of shard I (0 <= I < N): those whose lower-cased name hashes
-- (FNV-1a, 32 bits) to I modulo N. Every collector computes the same split.
function wmic.shard(hosts, i, n)
  local mine = {}
  for _, h in ipairs(hosts) do
    if fnv1a(h:lower()) % n == i then mine[#mine + 1] = h end
  end
  return mine
end

-- "6 = The service has not been started" from METHOD's ValueMap/Values (a
-- method qualifier, or the ReturnValue parameter's), or nil.
function wmic.meaning(method, value)
  local sources = { method.qualifiers or {} }
  for _, p in ipairs(method.outparams or {}) do
    if p.name == "ReturnValue" then sources[#sources + 1] = p.qualifiers or {} end
  end
  for _, q in ipairs(sources) do
    local values, map = q.Values, q.ValueMap
    if type(values) == "table" then
      if type(map) == "table" then
        for k, v in ipairs(map) do
          if tostring(v) == tostring(value) and values[k] then return values[k] end
        end
      elseif math.type(value) == "integer" and values[value + 1] then
        return values[value + 1]
      end
    end
  end
  return nil
end

return wmic

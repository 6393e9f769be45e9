-- lua5.4 scripts/release-rockspec.lua VERSION < luawmi-scm-1.rockspec > rockspec/luawmi-VERSION-1.rockspec
-- (make rockspec): the versioned rockspec is the scm one with VERSION and the
-- release archive as its source, so the two never differ in what they build.
local version = assert(arg[1], "usage: release-rockspec.lua VERSION")
local spec = io.read("a")
local count
spec, count = spec:gsub('\nversion = "scm%-1"\n', ('\nversion = "%s-1"\n'):format(version), 1)
assert(count == 1, "no version = \"scm-1\" line")
spec, count = spec:gsub("\nsource = %b{}\n", ([[

source = {
  -- The archive `make dist` builds from the committed tree (git archive), relative
  -- to the checkout: `make pack` packs it into the source rock. A published release
  -- names the archive's address here instead (README, "Releasing").
  url = "file://build/dist/luawmi-%s.tar.gz",
  dir = "luawmi-%s",
}
]]):format(version, version), 1)
assert(count == 1, "no source table")
io.write(spec)

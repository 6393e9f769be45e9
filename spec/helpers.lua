-- Shared by every spec file (loaded by busted before the specs, see .busted).
local helpers = {}

package.loaded["spec.helpers"] = helpers
return helpers

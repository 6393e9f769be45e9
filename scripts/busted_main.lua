-- Runs busted inside the Windows Lua (named so that it does not shadow the busted module).
require "busted.runner" { standalone = false }

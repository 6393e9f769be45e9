-- busted output: the plain terminal report, closed by one line that any CI reads:
-- "N passed, N failed" (", N skipped" when some are pending).
return function(options)
  local busted = require "busted"
  local handler = require "busted.outputHandlers.plainTerminal"(options)
  busted.subscribe({ "suite", "end" }, function()
    local line = ("%d passed, %d failed"):format(handler.successesCount,
      handler.failuresCount + handler.errorsCount)
    if handler.pendingsCount > 0 then
      line = line .. (", %d skipped"):format(handler.pendingsCount)
    end
    io.write(line, "\n")
    io.flush()
    return nil, true
  end)
  return handler
end

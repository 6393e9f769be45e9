local wmi = require "wmi"

describe("the module", function()
  it("loads the C core under Wine", function()
    assert.equal("function", type(wmi.hresult))
    assert.same({ "WBEM_E_INVALID_QUERY", "Invalid query" }, { wmi.hresult(0x80041017) })
  end)
end)

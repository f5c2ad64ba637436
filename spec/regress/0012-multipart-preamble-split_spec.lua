-- Issue 12, found by fuzz/http_multipart.c: a preamble holding the
-- boundary string not at a line start ("x--B") made the opening
-- delimiter search read more of the body before looking again, so the
-- whole body in one piece was refused (400, "no opening boundary") while
-- the same body in pieces parsed; and a delimiter that a read completed
-- at the start of the buffer counted as one at the start of the body.
local form = require "lasync.http.form"

local function chunks(body, size)
  local pos = 1
  return function()
    if pos > #body then return nil end
    local piece = body:sub(pos, pos + (size or #body) - 1)
    pos = pos + (size or #body)
    return piece
  end
end

describe("lasync.http.form.parse multipart preamble", function()
  it("finds the opening delimiter after a false one, in any split",
    function()
      local B = "----lasyncFuzzBoundary"
      local body = "=--" .. B .. "\r\nnot a part\r\n--" .. B .. "\r\n" ..
          'Content-Disposition: form-data; name="a"\r\n\r\n1\r\n--' .. B ..
          "--\r\n"
      for _, size in ipairs { #body, 1, 2, 3, 5, 64 } do
        local f, err = form.parse("multipart/form-data; boundary=" .. B,
          chunks(body, size))
        assert.is_not_nil(f, "split " .. size .. ": " .. tostring(err))
        assert.are.equal("1", f.a)
      end
    end)

  it("needs a CRLF before the opening delimiter, in any split", function()
    -- boundary "-": "x---" + "-\r\n" completes a delimiter "---" after
    -- "x-", not at a line start; so the part is preamble and the first
    -- delimiter is the closing "-----" (an empty form)
    local body = "x----\r\n" ..
        'Content-Disposition: form-data; name="a"\r\n\r\n1\r\n-----\r\n'
    for _, size in ipairs { #body, 1, 2, 3, 4, 5 } do
      local f, err = form.parse("multipart/form-data; boundary=-",
        chunks(body, size))
      assert.is_not_nil(f, "split " .. size .. ": " .. tostring(err))
      assert.are.equal(0, f:len(), "split " .. size)
    end
  end)
end)

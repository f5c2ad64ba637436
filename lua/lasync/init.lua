-- lasync: asyncio-style tasks for Lua 5.4.
-- Re-exports the C core (lasync.core) and adds what reads better in Lua.
local core = require "lasync.core"

local M = {}
for k, v in pairs(core) do M[k] = v end

return M

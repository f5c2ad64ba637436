-- lasync.tasks(): what the live tasks are doing, for the REPL and for
-- debugging a program that seems stuck.
local core = require "lasync.core"
local check = require "lasync.check"

local M = {}

-- lasync's own Lua files: a task waiting inside them is shown at the line
-- of the caller, where the user awaited.
local function is_internal(source)
  return source:find("lasync/[%w_]+%.lua$") ~= nil
end

-- "file:line" of the innermost user code on a task's stack.
local function where(co)
  for level = 0, 200 do
    local info = debug.getinfo(co, level, "Sl")
    if not info then break end
    if info.currentline > 0 and not is_internal(info.source) then
      return ("%s:%d"):format(info.short_src, info.currentline)
    end
  end
  return "?"
end

local TaskList = {}
TaskList.__index = TaskList
TaskList.__name = "lasync.TaskList"

function TaskList:__tostring()
  local width = 4
  for _, t in ipairs(self) do width = math.max(width, #t.name) end
  local out = { ("%-" .. width .. "s  %-7s  %s"):format("name", "state",
                                                        "at") }
  for _, t in ipairs(self) do
    out[#out + 1] = ("%-" .. width .. "s  %-7s  %s"):format(t.name, t.state,
                                                            t.where)
  end
  return table.concat(out, "\n")
end

check.guard(TaskList)

--- lasync.tasks() -> a list of {task=, name=, state=, where=} for every
-- pending task of the running loop, in creation order; state is "running"
-- (the caller) or "waiting", where the file and line it is at. The list
-- prints as a table.
function M.tasks()
  if not pcall(core.get_running_loop) then
    error("lasync.tasks: no running event loop: run this code with " ..
          "lasync.run or the lasync command", 2)
  end
  local current = core.current_task()
  local list = {}
  for i, task in ipairs(core.all_tasks()) do
    local co = task:get_coro()
    list[i] = {
      task = task,
      name = task:get_name(),
      state = task == current and "running" or "waiting",
      where = co and where(co) or "?",
    }
  end
  return setmetatable(list, TaskList)
end

return M

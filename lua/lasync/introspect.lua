-- lasync.tasks(): what the live tasks are doing, for the REPL and for
-- debugging a program that seems stuck.
local core = require "lasync.core"
local check = require "lasync.check"

local M = {}

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
  core._check_loop("tasks")
  local current = core.current_task()
  local list = {}
  for i, task in ipairs(core.all_tasks()) do
    list[i] = {
      task = task,
      name = task:get_name(),
      state = task == current and "running" or "waiting",
      where = task:where() or "?", -- as the reports say (task.c)
    }
  end
  return setmetatable(list, TaskList)
end

return M

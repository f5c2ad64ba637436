-- examples/readme.lua: run with `lasync examples/readme.lua`. The top level
-- is the main task, so it may await.
local function fetch(name, delay)
  lasync.sleep(delay)                      -- suspends this task only
  if name == "bad" then error("bad item") end
  return name:upper()
end
local t0 = lasync.get_running_loop():time()
local a = lasync.spawn(fetch, "a", 0.2)    -- tasks start on the next loop turn
local b = lasync.spawn(fetch, "b", 0.1)
print(a:await(), b:await())                -- A  B, after 0.2 s, not 0.3 s
local r = lasync.gather({ function() return fetch("c", 0.01) end,
  function() return fetch("bad", 0.01) end }, { return_exceptions = true })
print(r[1], r[2])                          -- C  readme.lua:5: bad item
local ok, err = pcall(lasync.wait_for, function() return fetch("x", 5) end, 0.1)
print(ok, lasync.is_timeout(err))          -- false  true
lasync.task_group(function(tg)             -- waits for every child
  tg:spawn(fetch, "d", 0.05)
  tg:spawn(fetch, "e", 0.05)
end)
print(("done in %.1f s"):format(lasync.get_running_loop():time() - t0))

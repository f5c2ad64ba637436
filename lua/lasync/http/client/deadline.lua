-- lasync.http.client.deadline: the total timeout of a session's requests
-- without a timer per request. Each session has one table of the
-- requests in flight that have a deadline and one loop timer, armed at
-- the earliest deadline it knows; when it fires it cancels the tasks of
-- the requests past their deadline that wait in the client at that
-- moment (a request past its deadline outside the client raises at its
-- next wait), and arms itself for the next deadline. Timeouts of one
-- wait (sock_read, connect...) use lasync.timeout_at.
local lasync = require "lasync"
local errors = require "lasync.http.client.errors"

local pcall, error, pairs = pcall, error, pairs
local is_cancelled, is_timeout, is_error = lasync.is_cancelled,
  lasync.is_timeout, lasync.is_error
local get_running_loop, current_task = lasync.get_running_loop,
  lasync.current_task

local M = {}

--- deadline.new() -> the state of one session
function M.new()
  return { set = {}, handle = nil, at = nil }
end

local sweep

local function arm(D, when)
  if D.handle then
    if D.at <= when then return end
    D.handle:cancel()
  end
  D.at = when
  D.handle = get_running_loop():call_at(when, sweep, D)
end

function sweep(D)
  D.handle, D.at = nil, nil
  local now = get_running_loop():time()
  local min
  for st in pairs(D.set) do
    if st._when <= now then
      D.set[st] = nil
      st._expired = true
      if st._waiting then
        st._cancelled = true
        st._task:cancel()
      end
    elseif not min or st._when < min then
      min = st._when
    end
  end
  if min then arm(D, min) end
end

--- deadline.untrack(st): the request ended (its body read or dropped)
function M.untrack(st)
  local D = st._D
  if D then D.set[st] = nil end
end

--- deadline.close(D): the session closes: no more timer
function M.close(D)
  if D.handle then D.handle:cancel() end
  D.handle, D.at, D.set = nil, nil, {}
end

local function total_error(st)
  return errors.timeout("total", st.url, st._tmo.total)
end

-- Runs fn(...) under one wait's own timeout `which` and the total one.
local function timed_one(st, which, secs, fn, ...)
  local when, name = st._when, "total"
  local w = get_running_loop():time() + secs
  if not when or w < when then when, name = w, which end
  local ok, a = pcall(lasync.timeout_at, when, fn, ...)
  if ok then return a end
  if is_timeout(a) and not is_error(a, errors.ClientTimeoutError) then
    error(errors.timeout(name, st.url, name == "total" and st._tmo.total
      or secs), 0)
  end
  error(a, 0)
end

--- deadline.timed(st, which, fn, ...) -> fn's first result: fn waits
-- for the request st (fields _tmo, the timeouts; _when, the total
-- deadline or nil; _D, the session's state); a timeout raises
-- ClientTimeoutError naming the one that expired
function M.timed(st, which, fn, ...)
  local secs = which and st._tmo[which]
  if secs then return timed_one(st, which, secs, fn, ...) end
  local when = st._when
  if not when then return fn(...) end
  if st._expired or get_running_loop():time() >= when then
    M.untrack(st)
    error(total_error(st), 0)
  end
  local D = st._D
  if not D.set[st] then
    D.set[st] = true
    arm(D, when)
  end
  st._task = current_task()
  st._waiting = true
  local ok, a = pcall(fn, ...)
  st._waiting = false
  if st._cancelled then -- our cancel: it is the timeout
    st._cancelled = false
    st._task:uncancel()
    if not ok and is_cancelled(a) then error(total_error(st), 0) end
  end
  if ok then return a end
  error(a, 0)
end

return M

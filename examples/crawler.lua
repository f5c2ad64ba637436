-- crawler.lua: a crawler's fan-out with asyncio.Queue, task_done and join.
--
-- Ports the asyncio crawler pattern: worker tasks loop on q:get(), fetch
-- the page, q:put() every link not seen yet, and call q:task_done() for
-- the page, also when it was not found. q:join() returns once every URL
-- ever put has been processed: the whole link graph is crawled, though
-- nobody knew its size in advance; the idle workers are then cancelled.
-- The "web" is a Lua table, and fetching a page is a sleep.
-- Run: build/lasync examples/crawler.lua
-- Expected output (about 0.2 s; 0.4 s with one worker):
--   crawled 9 URLs with 3 workers in 0.2 s
--     200: / /about /blog /blog/1 /blog/2 /shop /shop/cart /team
--     404: /shop/old
--   links followed: 15; workers cancelled after join: 3

local web = { -- url -> { seconds to fetch, links... }; /shop/old is missing
  ["/"] = { 0.05, "/about", "/blog", "/shop" }, ["/team"] = { 0.02 },
  ["/about"] = { 0.03, "/", "/team" },
  ["/blog"] = { 0.07, "/blog/1", "/blog/2", "/about" },
  ["/blog/1"] = { 0.04, "/blog/2", "/" },
  ["/blog/2"] = { 0.05, "/blog/1", "/shop/cart" },
  ["/shop"] = { 0.06, "/shop/cart", "/shop/old" },
  ["/shop/cart"] = { 0.03, "/shop" },
}

local function fetch(url) -- -> the page's links, or nil if there is none
  lasync.sleep(web[url] and web[url][1] or 0.01)
  return web[url] and { table.unpack(web[url], 2) }
end

local loop, q = lasync.get_running_loop(), lasync.Queue()
local start = loop:time()
local seen, ok_urls, failed, links_followed = {}, {}, {}, 0

local function visit(url) -- queue a URL the first time it is seen
  if not seen[url] then seen[url] = true; q:put(url) end
end

local function worker()
  while true do -- until cancelled
    local url = q:get()
    local links = fetch(url)
    if links then
      ok_urls[#ok_urls + 1] = url
      links_followed = links_followed + #links
      for _, link in ipairs(links) do visit(link) end
    else
      failed[#failed + 1] = url
    end
    q:task_done() -- done with url, found or not
  end
end

visit("/")
local workers = {}
for i = 1, 3 do workers[i] = lasync.spawn({ name = "worker-" .. i }, worker) end
q:join() -- every URL ever put has been processed
for _, w in ipairs(workers) do w:cancel() end
local cancelled = 0
for _, err in ipairs(lasync.gather(workers, { return_exceptions = true })) do
  if lasync.is_cancelled(err) then cancelled = cancelled + 1 end
end
table.sort(ok_urls)
print(("crawled %d URLs with %d workers in %.1f s"):format(
  #ok_urls + #failed, #workers, loop:time() - start))
print("  200: " .. table.concat(ok_urls, " "))
print("  404: " .. table.concat(failed, " "))
print(("links followed: %d; workers cancelled after join: %d")
  :format(links_followed, cancelled))

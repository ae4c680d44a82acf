-- wrk script: cycles through 240 different year/month pages, more than the server's response
-- memo holds (64), so every request is computed afresh: the uncached cost of a list page.
local n = 0
request = function()
  n = n + 1
  local year = 2006 + (n % 20)
  local month = 1 + (math.floor(n / 20) % 12)
  return wrk.format("GET", "/api/media?year=" .. year .. "&month=" .. month .. "&limit=100")
end

-- wrk script for the soak: requests the paths listed in $PATHS_FILE in turn (a different start per
-- thread) and counts answers by status class; done() prints "soak-status 2xx 3xx 4xx 5xx".
local paths = {}
for line in io.lines(os.getenv("PATHS_FILE")) do
  paths[#paths + 1] = line
end
local threads = {}
local counter = 0

setup = function(thread)
  counter = counter + 1
  thread:set("start", counter * 97)
  threads[#threads + 1] = thread
end

init = function()
  n = start or 0
  c2, c3, c4, c5 = 0, 0, 0, 0
end

request = function()
  n = n % #paths + 1
  return wrk.format("GET", paths[n])
end

response = function(status)
  if status >= 500 then
    c5 = c5 + 1
  elseif status >= 400 then
    c4 = c4 + 1
    codes4 = (codes4 or "") .. (c4 <= 3 and (status .. " ") or "")
  elseif status >= 300 then
    c3 = c3 + 1
  else
    c2 = c2 + 1
  end
end

done = function()
  local t2, t3, t4, t5 = 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    t2 = t2 + thread:get("c2")
    t3 = t3 + thread:get("c3")
    t4 = t4 + thread:get("c4")
    t5 = t5 + thread:get("c5")
  end
  io.write(string.format("soak-status %d %d %d %d\n", t2, t3, t4, t5))
  for _, thread in ipairs(threads) do
    local codes = thread:get("codes4")
    if codes then io.write("soak-4xx-sample " .. codes .. "\n") end
  end
end

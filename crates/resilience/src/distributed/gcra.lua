-- GCRA for one key, atomically: read the TAT, decide, write the new TAT with an expiry.
-- Time is the server's (TIME), so the clients' clocks never matter. All times are in
-- microseconds of server time: exact in Lua's doubles (2^53 us is 285 years).
--
-- KEYS[1]  the key's theoretical arrival time (TAT)
-- ARGV[1]  emission interval T
-- ARGV[2]  tolerance tau = (burst - 1) * T
-- ARGV[3]  cost n, cells taken at once (1 ..= burst)
-- ARGV[4]  longest wait the caller accepts (0 in reject mode)
--
-- Returns {1, wait}: admitted, to go after `wait` (0: now); the TAT moved by n * T.
--         {0, retry}: refused; the n cells conform in `retry` at the earliest.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local max_wait = tonumber(ARGV[4])

-- A missing key (expired, or never written) is a full burst: a TAT not after now.
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then
  tat = now
end

local wait = tat + (cost - 1) * interval - tolerance - now
if wait > max_wait then
  return {0, wait}
end
if wait < 0 then
  wait = 0
end

-- Once the TAT is in the past the key decides exactly as a missing one: expire it then.
-- Redis turns number arguments into text with all 17 digits (not Lua's 14), so both
-- integers go as they are, exactly.
local new_tat = tat + cost * interval
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000))
return {1, wait}

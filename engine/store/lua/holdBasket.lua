-- holdBasket: a whole hold in one script on a standalone server: idempotency check, every line
-- or none, and the reservation header, atomically and in one round trip.
--
-- KEYS[1] reservation header hash  KEYS[2] due sorted set of the header's shard
-- KEYS[3..] 3 per SKU group g: positions, lines, expiries (see applyEvents.lua)
-- ARGV[1] reservationId  ARGV[2] channel  ARGV[3] lines (JSON)  ARGV[4] nowMs  ARGV[5] expiresAtMs
-- ARGV[6] retentionMs (how long a rejected hold is remembered, so retries get the same answer)
-- ARGV[7] number of SKU groups n  ARGV[8..7+n] their SKUs (to describe shortfalls)
-- ARGV[8+n..] 7 per line as in holdLines.lua
-- Returns {"exists"} (read the header back), {"held"}, or {"rejected", group, location,
-- requested, available, ...}.

--!include position.lua
--!include expire.lua
--!include hold.lua

local header, resId, nowMs = KEYS[1], ARGV[1], tonumber(ARGV[4])
if redis.call('EXISTS', header) == 1 then return { 'exists' } end
local groups = tonumber(ARGV[7])
local shortfalls = holdLinesFrom(3, 8 + groups, resId, nowMs, tonumber(ARGV[5]))
if #shortfalls == 0 then
  redis.call('HSET', header, 'state', 'held', 'channel', ARGV[2], 'lines', ARGV[3], 'created', ARGV[4], 'exp', ARGV[5])
  redis.call('ZADD', KEYS[2], ARGV[5], resId)
  return { 'held' }
end
local described = {}
for i = 1, #shortfalls, 4 do
  described[#described + 1] = { sku = ARGV[8 + shortfalls[i]], location = shortfalls[i + 1], requested = shortfalls[i + 2], available = shortfalls[i + 3] }
end
redis.call('HSET', header, 'state', 'rejected', 'channel', ARGV[2], 'lines', ARGV[3], 'created', ARGV[4], 'exp', ARGV[5], 'short', cjson.encode(described))
redis.call('PEXPIRE', header, tonumber(ARGV[6]))
local out = { 'rejected' }
for _, v in ipairs(shortfalls) do out[#out + 1] = v end
return out

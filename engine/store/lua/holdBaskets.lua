-- holdBaskets: a batch of independent holds on a standalone server (group commit: the concurrent
-- holds of one event-loop turn share one round trip). Each reservation is atomic on its own:
-- idempotency check, every line or none, and its header. Reservations run in order, so a later
-- one sees what an earlier one took.
--
-- ARGV[1] R (reservations)  ARGV[2] retentionMs (how long a rejected hold is remembered, so
-- that retries get the same answer)
-- then per reservation r: id, channel, lines (JSON), nowMs, expiresAtMs, G (SKU groups),
--   L (lines), G SKUs (to describe shortfalls), then one per line as in holdLines.lua
-- KEYS per reservation r, in the same order: header hash, due sorted set of its shard, then
--   3 per SKU group: positions, lines, expiries (see applyEvents.lua)
-- Returns a flat array per reservation: verdict (1 held, 2 rejected, 3 exists: read it back),
-- S (shortfall count), then 4 per shortfall: group, location, requested, available.

--!include position.lua
--!include expire.lua
--!include hold.lua

local retentionMs = tonumber(ARGV[2])
local out = {}
local k, a = 1, 3
for _ = 1, tonumber(ARGV[1]) do
  local id, channel, lines, nowMs, expiresAtMs = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local groups, lineCount = tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6])
  local skuBase, lineBase = a + 7, a + 7 + groups
  local header, due = KEYS[k], KEYS[k + 1]
  if redis.call('EXISTS', header) == 1 then
    out[#out + 1] = 3
    out[#out + 1] = 0
  else
    local shortfalls = holdLinesFrom(k + 2, groups, lineBase, lineCount, id, tonumber(nowMs), tonumber(expiresAtMs), false)
    if #shortfalls == 0 then
      redis.call('HSET', header, 'state', 'held', 'channel', channel, 'lines', lines, 'created', nowMs, 'exp', expiresAtMs)
      redis.call('ZADD', due, expiresAtMs, id)
      out[#out + 1] = 1
      out[#out + 1] = 0
    else
      local described = {}
      for i = 1, #shortfalls, 4 do
        described[#described + 1] = { sku = ARGV[skuBase + shortfalls[i]], location = shortfalls[i + 1], requested = shortfalls[i + 2], available = shortfalls[i + 3] }
      end
      redis.call('HSET', header, 'state', 'rejected', 'channel', channel, 'lines', lines, 'created', nowMs, 'exp', expiresAtMs, 'short', cjson.encode(described))
      redis.call('PEXPIRE', header, retentionMs)
      out[#out + 1] = 2
      out[#out + 1] = #shortfalls / 4
      for _, v in ipairs(shortfalls) do out[#out + 1] = v end
    end
  end
  k = k + 2 + 3 * groups
  a = lineBase + lineCount
end
return out

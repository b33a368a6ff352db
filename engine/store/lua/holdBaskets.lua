-- holdBaskets: a batch of independent holds on a standalone server (group commit: the concurrent
-- holds of one event-loop turn share one round trip). Each reservation is atomic on its own:
-- idempotency check, every line or none, and its header. Reservations run in order, so a later
-- one sees what an earlier one took.
--
-- KEYS: none. This script runs on a standalone server only (a basket's SKUs sit in many hash
-- slots), so it builds its keys itself from the key prefix (includes/keys.lua, the layout of
-- engine/store/keys.ts): declaring five keys per hold cost more to build, send and receive than
-- the hold's own work.
-- ARGV[1] key prefix  ARGV[2] retentionMs (how long a rejected hold is remembered, so that
-- retries get the same answer)
-- ARGV[3] every hold of the batch, in order, as "\n"-terminated lines: first
--   "id|channel|nowMs|expiresAtMs|shard|L|linesJson" (shard: the reservation's shard, keys.ts;
--   L lines; linesJson: the lines as the header stores them), then its L lines packed as in
--   hold.lua, with the SKU itself as the group name:
--   "sku|location|qty|sellable|bufferUnits|bufferPercent|minThreshold|capUnits"
-- Ids, SKUs, locations and channels never contain '|' or a newline (validate.ts), and JSON text
-- has no raw newline.
-- Returns a flat array per reservation: verdict (1 held, 2 rejected, 3 exists: read it back),
-- S (shortfall count), then 4 per shortfall: sku, location, requested, available.

--!include keys.lua
--!include position.lua
--!include expire.lua
--!include hold.lua

local prefix, retentionMs = ARGV[1], tonumber(ARGV[2])
local keysOf = skuKeyNames(prefix)

local text = {}
for line in string.gmatch(ARGV[3], '([^\n]*)\n') do text[#text + 1] = line end

local out = {}
local t = 1
while t <= #text do
  local id, channel, nowMs, expiresAtMs, shard, lineCount, lines = string.match(text[t], '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$')
  lineCount = tonumber(lineCount)
  local lineSpecs = {}
  for i = 1, lineCount do lineSpecs[i] = text[t + i] end
  t = t + 1 + lineCount
  local header, due = reservationKeyNames(prefix, shard, id)
  if redis.call('EXISTS', header) == 1 then
    out[#out + 1] = 3
    out[#out + 1] = 0
  else
    local shortfalls = holdLinesFrom(keysOf, lineSpecs, id, tonumber(nowMs), tonumber(expiresAtMs), false)
    if #shortfalls == 0 then
      redis.call('HSET', header, 'state', 'held', 'channel', channel, 'lines', lines, 'created', nowMs, 'exp', expiresAtMs)
      redis.call('ZADD', due, expiresAtMs, id)
      out[#out + 1] = 1
      out[#out + 1] = 0
    else
      local described = {}
      for i = 1, #shortfalls, 4 do
        described[#described + 1] = { sku = shortfalls[i], location = shortfalls[i + 1], requested = shortfalls[i + 2], available = shortfalls[i + 3] }
      end
      redis.call('HSET', header, 'state', 'rejected', 'channel', channel, 'lines', lines, 'created', nowMs, 'exp', expiresAtMs, 'short', cjson.encode(described))
      redis.call('PEXPIRE', header, retentionMs)
      out[#out + 1] = 2
      out[#out + 1] = #shortfalls / 4
      for _, v in ipairs(shortfalls) do out[#out + 1] = v end
    end
  end
end
return out

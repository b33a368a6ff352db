-- applyEvents: applies a batch of stock events to one or more SKUs (one SKU per call in a Redis
-- Cluster, many per call on a standalone server).
--
-- KEYS, 4 per SKU group g (g = 0..n-1):
--   KEYS[4g+1] positions hash   KEYS[4g+2] adjustments hash
--   KEYS[4g+3] lines hash       KEYS[4g+4] expiries sorted set
-- ARGV[1] nowMs (for releasing expired holds first)
-- ARGV[2..] 6 per event: group index (0-based), location, type ("s" snapshot | "d" delta),
--   eventId, qty, asOf, then the snapshot tie (32-bit hash of eventId) -> 7 per event.
-- Returns a flat array, 3 per event: outcome (1 applied, 2 duplicate, 3 stale), onHand, reserved.

--!include position.lua
--!include expire.lua

local nowMs = tonumber(ARGV[1])
local groups = #KEYS / 4
for g = 0, groups - 1 do
  -- Most SKUs have no hold at all: one EXISTS is cheaper than a range query on every group.
  if redis.call('EXISTS', KEYS[4 * g + 4]) == 1 then
    expireDueLines(KEYS[4 * g + 1], KEYS[4 * g + 3], KEYS[4 * g + 4], nowMs)
  end
end

local out = {}
local i = 2
while i <= #ARGV do
  local g = tonumber(ARGV[i])
  local loc, kind, eventId = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local qty, asOf, tie = tonumber(ARGV[i + 4]), tonumber(ARGV[i + 5]), tonumber(ARGV[i + 6])
  local posKey, adjKey = KEYS[4 * g + 1], KEYS[4 * g + 2]
  local p = readPosition(posKey, loc)
  local outcome
  if kind == 's' then
    outcome = applySnapshot(adjKey, loc, p, qty, asOf, tie)
  else
    outcome = applyAdjustment(adjKey, loc, p, eventId, qty, asOf)
  end
  if outcome == 1 then writePosition(posKey, loc, p) end
  out[#out + 1] = outcome
  out[#out + 1] = p.snap + p.adj
  out[#out + 1] = p.res
  i = i + 7
end
return out

-- applyEvents: applies a batch of stock events to one or more SKUs (one SKU per call in a Redis
-- Cluster, many per call on a standalone server).
--
-- KEYS, 3 per SKU group g (g = 0..G-1):
--   KEYS[3g+1] positions hash   KEYS[3g+2] reservation lines hash   KEYS[3g+3] expiries sorted set
-- then one per event e (e = 1..E), in event order: KEYS[3G+e] the adjustments hash of the event's
--   position (eventId -> "asOf:qty"; the same key repeats for events on the same position)
-- ARGV[1] G  ARGV[2] nowMs (for releasing expired holds first)
-- ARGV[3..] 1 per event, packed "group|type|qty|asOf|tie|location|eventId" (one argument, not
--   seven: the packing and parsing of arguments was a third of the cost): group index (0-based),
--   type ("s" snapshot | "d" delta), qty, asOf, snapshot tie (32-bit hash of eventId, 0 for
--   deltas), location, eventId (last: it may contain any character but a newline)
-- Returns a flat array, 3 per event: outcome (1 applied, 2 duplicate, 3 stale), onHand, reserved.

--!include position.lua
--!include expire.lua

local groups, nowMs = tonumber(ARGV[1]), tonumber(ARGV[2])
for g = 0, groups - 1 do
  -- Most SKUs have no hold at all: one EXISTS is cheaper than a range query on every group.
  if redis.call('EXISTS', KEYS[3 * g + 3]) == 1 then
    expireDueLines(KEYS[3 * g + 1], KEYS[3 * g + 2], KEYS[3 * g + 3], nowMs)
  end
end

local out = {}
for i = 3, #ARGV do
  local g, kind, qty, asOf, tie, loc, eventId = string.match(ARGV[i], '^(%d+)|(%a)|(-?%d+)|(-?%d+)|(-?%d+)|([^|]+)|(.+)$')
  local posKey, adjKey = KEYS[3 * tonumber(g) + 1], KEYS[3 * groups + i - 2]
  local p = readPosition(posKey, loc)
  local outcome
  if kind == 's' then
    outcome = applySnapshot(adjKey, p, tonumber(qty), tonumber(asOf), tonumber(tie))
  else
    outcome = applyAdjustment(adjKey, p, eventId, tonumber(qty), tonumber(asOf))
  end
  if outcome == 1 then writePosition(posKey, loc, p) end
  out[#out + 1] = outcome
  out[#out + 1] = p.snap + p.adj
  out[#out + 1] = p.res
end
return out

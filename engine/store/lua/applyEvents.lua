-- applyEvents: applies a batch of stock events to one or more SKUs (one SKU per call in a Redis
-- Cluster, many per call on a standalone server).
--
-- KEYS, 2 per SKU group g (g = 0..G-1):
--   KEYS[2g+1] positions hash   KEYS[2g+2] open reservation lines, a sorted set (expire.lua)
-- then one per event e (e = 1..E), in event order: KEYS[2G+e] the adjustments hash of the event's
--   position (eventId -> "asOf:qty"; the same key repeats for events on the same position)
-- ARGV[1] G  ARGV[2] nowMs (for releasing expired holds first)
-- ARGV[3] every event of the batch, in order, one "\n"-terminated line each:
--   "group|type|qty|asOf|tie|location|eventId": group index (0-based), type ("s" snapshot |
--   "d" delta), qty, asOf, snapshot tie (32-bit hash of eventId, 0 for deltas), location, eventId
--   (last: it may contain any character but a newline). One argument for the whole batch: an
--   argument per event cost more to send, receive and parse than the events' own work.
-- Returns a flat array, 3 per event: outcome (1 applied, 2 duplicate, 3 stale), onHand, reserved.

--!include position.lua
--!include expire.lua

local groups, nowMs = tonumber(ARGV[1]), tonumber(ARGV[2])
-- A SKU's expired holds are released before the first of its events that touches a position
-- where a hold may be due (position.lua: `due`). Most positions have none, and this spares them a
-- lookup of the expiries key.
local nextDue = {}

local out, e = {}, 0
for g, kind, qty, asOf, tie, loc, eventId in string.gmatch(ARGV[3], '(%d+)|(%a)|(-?%d+)|(-?%d+)|(-?%d+)|([^|\n]+)|([^\n]+)\n') do
  e = e + 1
  local base = 2 * tonumber(g)
  local posKey, adjKey = KEYS[base + 1], KEYS[2 * groups + e]
  local p = readPositionReleasing(base, posKey, KEYS[base + 2], loc, nowMs, nextDue)
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
if e ~= #KEYS - 2 * groups then error('applyEvents: ' .. e .. ' events parsed for ' .. (#KEYS - 2 * groups) .. ' adjustment keys') end
return out

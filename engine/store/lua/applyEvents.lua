-- applyEvents: applies a batch of stock events to one or more SKUs (one SKU per call in a Redis
-- Cluster, many per call on a standalone server).
--
-- KEYS: in a Redis Cluster, the positions key of the call's one SKU (it routes the call to its
-- slot); none on a standalone server. The script builds every key from the prefix and the event's
-- SKU (includes/keys.lua, the layout of engine/store/keys.ts): a SKU's keys all carry its hash tag {sku}, so in a
-- Cluster they sit in the declared key's slot. Declaring two keys per SKU and one per event cost
-- more to build, send and receive than the events' own work.
-- ARGV[1] key prefix  ARGV[2] nowMs (for releasing expired holds first)  ARGV[3] E (event count)
-- ARGV[4] every event of the batch, in order, one "\n"-terminated line each:
--   "sku|type|qty|asOf|tie|location|eventId": type ("s" snapshot | "d" delta), qty, asOf, snapshot
--   tie (31-bit hash of eventId, 0 for deltas), eventId last (it may contain any character but a
--   newline; SKUs and locations never contain '|', validate.ts). One argument for the whole
--   batch: an argument per event cost more to send, receive and parse than the events' own work.
-- Keys used per SKU: positions hash, open reservation lines (expire.lua), and per position its
--   adjustments hash (position.lua).
-- Returns a flat array, 4 per event: outcome (1 applied, 2 duplicate, 3 stale), onHand, reserved,
-- the position's version (position.lua).

--!include keys.lua
--!include position.lua
--!include expire.lua

local prefix, nowMs = ARGV[1], tonumber(ARGV[2])
-- A SKU's expired holds are released before the first of its events that touches a position
-- where a hold may be due (position.lua: `due`). Most positions have none, and this spares them a
-- lookup of the lines key.
local nextDue = {}
local skuKeys = skuKeyNames(prefix)

local out, e = {}, 0
for sku, kind, qty, asOf, tie, loc, eventId in string.gmatch(ARGV[4], '([^|\n]+)|(%a)|(-?%d+)|(-?%d+)|(-?%d+)|([^|\n]+)|([^\n]+)\n') do
  e = e + 1
  local keys = skuKeys(sku)
  local posKey, adjKey = keys[1], keys[3] .. loc
  local p = readPositionReleasing(sku, posKey, keys[2], loc, nowMs, nextDue)
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
  out[#out + 1] = p.ver
end
if e ~= tonumber(ARGV[3]) then error('applyEvents: ' .. e .. ' events parsed of ' .. ARGV[3] .. ' sent') end
return out

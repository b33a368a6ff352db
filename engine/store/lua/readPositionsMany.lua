-- readPositionsMany: every position of several SKUs in one call (standalone Redis only: the SKUs'
-- keys sit in different hash slots), each SKU's expired holds released first. A basket's
-- availability reads all its SKUs in one round trip.
--
-- KEYS[3i-2] positions hash  KEYS[3i-1] lines hash  KEYS[3i] expiries sorted set, for SKU i
-- ARGV[1] nowMs
-- Returns a flat array: for each SKU in order, n (its position count) then n triples
-- location, onHand, reserved.

--!include position.lua
--!include expire.lua

local nowMs = tonumber(ARGV[1])
local out = {}
for k = 1, #KEYS, 3 do
  expireDueLines(KEYS[k], KEYS[k + 1], KEYS[k + 2], nowMs)
  local all = redis.call('HGETALL', KEYS[k])
  out[#out + 1] = #all / 2
  for i = 1, #all, 2 do
    if #all[i + 1] ~= 32 then positionFormatError(KEYS[k], all[i]) end
    local version, snap, adj, res = struct.unpack(POSITION_HEAD, all[i + 1])
    if version ~= POSITION_VERSION then positionFormatError(KEYS[k], all[i]) end
    out[#out + 1] = all[i]
    out[#out + 1] = snap + adj
    out[#out + 1] = res
  end
end
return out

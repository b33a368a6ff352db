-- readPositions: every position of one SKU, after releasing its expired holds.
--
-- KEYS[1] positions hash  KEYS[2] lines hash  KEYS[3] expiries sorted set
-- ARGV[1] nowMs
-- Returns a flat array, 3 per location: location, onHand, reserved.

--!include position.lua
--!include expire.lua

expireDueLines(KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[1]))
local out = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  -- The packed value starts snap, adj, res (writePosition); read those from the HGETALL reply
  -- rather than HGET every field again.
  if #all[i + 1] ~= 32 then positionFormatError(KEYS[1], all[i]) end
  local version, snap, adj, res = struct.unpack(POSITION_HEAD, all[i + 1])
  if version ~= POSITION_VERSION then positionFormatError(KEYS[1], all[i]) end
  out[#out + 1] = all[i]
  out[#out + 1] = snap + adj
  out[#out + 1] = res
end
return out

-- readPositionsMany: every position of several SKUs in one call (standalone Redis only: the SKUs'
-- keys sit in different hash slots), each SKU's expired holds released first. A basket's
-- availability reads all its SKUs in one round trip.
--
-- KEYS[2i-1] positions hash  KEYS[2i] open reservation lines (expire.lua), for SKU i
-- ARGV[1] nowMs
-- Returns one string per SKU, in order: its positions packed (expire.lua: readAllPacked).

--!include position.lua
--!include expire.lua

local nowMs = tonumber(ARGV[1])
local out = {}
for k = 1, #KEYS, 2 do
  out[#out + 1] = readAllPacked(KEYS[k], KEYS[k + 1], nowMs)
end
return out

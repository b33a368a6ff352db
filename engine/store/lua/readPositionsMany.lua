-- readPositionsMany: every position of several SKUs in one call (standalone Redis only: the SKUs'
-- keys sit in different hash slots), each SKU's expired holds released first. A basket's
-- availability reads all its SKUs in one round trip.
--
-- No KEYS: the script builds each SKU's key names from the prefix (includes/keys.lua), as
-- applyEvents does; declaring two keys per SKU cost the client more to send than the read itself.
-- ARGV[1] key prefix  ARGV[2] nowMs  ARGV[3] the SKUs, each followed by "\n"
-- Returns one string per SKU, in order: its read view, a token then its positions packed (expire.lua:
-- readAllPacked).

--!include keys.lua
--!include position.lua
--!include expire.lua

local nowMs = tonumber(ARGV[2])
local skuKeys = skuKeyNames(ARGV[1])
local out = {}
for sku in string.gmatch(ARGV[3], '([^\n]+)\n') do
  local keys = skuKeys(sku)
  out[#out + 1] = readAllPacked(keys[1], keys[2], nowMs)
end
return out

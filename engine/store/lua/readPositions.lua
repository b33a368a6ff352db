-- readPositions: every position of one SKU, after releasing its expired holds (expire.lua).
--
-- KEYS[1] positions hash  KEYS[2] open reservation lines (expire.lua)
-- ARGV[1] nowMs
-- Returns a flat array, 3 per location: location, onHand, reserved.

--!include position.lua
--!include expire.lua

local out = {}
readAllReleasing(KEYS[1], KEYS[2], tonumber(ARGV[1]), out)
return out

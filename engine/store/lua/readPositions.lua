-- readPositions: every position of one SKU, after releasing its expired holds (expire.lua).
--
-- KEYS[1] positions hash  KEYS[2] open reservation lines (expire.lua)
-- ARGV[1] nowMs
-- Returns the SKU's read view: a token, then its positions packed as one string (expire.lua: readAllPacked).

--!include position.lua
--!include expire.lua

return readAllPacked(KEYS[1], KEYS[2], tonumber(ARGV[1]))

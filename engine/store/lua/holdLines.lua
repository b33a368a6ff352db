-- holdLines: holds reservation lines on one or more SKUs, all of them or none (used per SKU in a
-- Redis Cluster, where the header lives in another slot).
--
-- KEYS, 2 per SKU group g: positions, lines (see applyEvents.lua)
-- ARGV[1] reservationId  ARGV[2] nowMs  ARGV[3] expiresAtMs
-- ARGV[4..] one per line, packed as in hold.lua:
--   "group|location|qty|sellable|bufferUnits|bufferPercent|minThreshold|capUnits" (group: the
--   SKU group's index, 0-based)
-- Returns {1} when every line is held (lines already held by this reservation count as held:
-- retries take nothing twice), or {0, group, location, requested, available, ...} for the lines
-- that do not fit; then nothing changed.

--!include position.lua
--!include expire.lua
--!include hold.lua

local function keysOf(group)
  local k = 2 * tonumber(group)
  return { KEYS[k + 1], KEYS[k + 2] }
end
local lineSpecs = {}
for i = 4, #ARGV do lineSpecs[#lineSpecs + 1] = ARGV[i] end
local shortfalls = holdLinesFrom(keysOf, lineSpecs, ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), true)
if #shortfalls == 0 then return { 1 } end
local out = { 0 }
for _, v in ipairs(shortfalls) do out[#out + 1] = v end
return out

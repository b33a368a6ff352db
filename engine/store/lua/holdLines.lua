-- holdLines: holds reservation lines on one or more SKUs, all of them or none.
--
-- KEYS, 4 per SKU group g: positions, adjustments, lines, expiries (see applyEvents.lua)
-- ARGV[1] reservationId  ARGV[2] nowMs  ARGV[3] expiresAtMs
-- ARGV[4..] 7 per line: group index, location, qty, sellable (1|0), bufferUnits, bufferPercent, minThreshold
-- Returns {1} when every line is held (lines already held by this reservation count as held:
-- retries take nothing twice), or {0, location, requested, available, ...} for the lines that do
-- not fit; then nothing changed.

--!include position.lua
--!include expire.lua

local resId, nowMs, expiresAtMs = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
for g = 0, #KEYS / 4 - 1 do
  expireDueLines(KEYS[4 * g + 1], KEYS[4 * g + 3], KEYS[4 * g + 4], nowMs)
end

local plan, shortfalls = {}, {}
for i = 4, #ARGV, 7 do
  local g, loc, qty = tonumber(ARGV[i]), ARGV[i + 1], tonumber(ARGV[i + 2])
  local posKey, linesKey = KEYS[4 * g + 1], KEYS[4 * g + 3]
  local field = resId .. '|' .. loc
  if redis.call('HEXISTS', linesKey, field) == 0 then
    local p = readPosition(posKey, loc)
    local atp = atpOf(p, tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4]), tonumber(ARGV[i + 5]), tonumber(ARGV[i + 6]))
    if qty > atp then
      shortfalls[#shortfalls + 1] = g
      shortfalls[#shortfalls + 1] = loc
      shortfalls[#shortfalls + 1] = qty
      shortfalls[#shortfalls + 1] = atp
    else
      plan[#plan + 1] = { g, loc, qty, field }
    end
  end
end
if #shortfalls > 0 then
  local out = { 0 }
  for _, v in ipairs(shortfalls) do out[#out + 1] = v end
  return out
end
for _, line in ipairs(plan) do
  local g, loc, qty, field = line[1], line[2], line[3], line[4]
  local posKey = KEYS[4 * g + 1]
  local p = readPosition(posKey, loc)
  p.res = p.res + qty
  writePosition(posKey, loc, p)
  redis.call('HSET', KEYS[4 * g + 3], field, qty .. '|h|' .. expiresAtMs)
  redis.call('ZADD', KEYS[4 * g + 4], expiresAtMs, field)
end
return { 1 }

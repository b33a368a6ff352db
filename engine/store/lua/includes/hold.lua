-- Holds lines on one or more SKU groups, all or none. Shared by holdLines (Cluster, per SKU) and
-- holdBaskets (standalone, whole baskets with their headers).
--
-- KEYS from keyBase: `groups` SKU groups, 3 keys each (positions, lines, expiries).
-- ARGV from argBase: `lineCount` lines, 8 each: group index, location, qty, sellable (1|0),
-- bufferUnits, bufferPercent, minThreshold, capUnits (-1: none).
-- checkExisting: count lines already held by this reservation as held (retries take nothing
-- twice); holdBaskets skips it because a missing header proves no line of that id exists.
-- Returns a flat list of shortfalls, 4 per line that does not fit (group, location, requested,
-- available); empty when every line was held. Nothing changes when the list is not empty.

local function holdLinesFrom(keyBase, groups, argBase, lineCount, resId, nowMs, expiresAtMs, checkExisting)
  for g = 0, groups - 1 do
    local k = keyBase + 3 * g
    expireDueLines(KEYS[k], KEYS[k + 1], KEYS[k + 2], nowMs)
  end
  local plan, shortfalls = {}, {}
  for i = argBase, argBase + 8 * (lineCount - 1), 8 do
    local g, loc, qty = tonumber(ARGV[i]), ARGV[i + 1], tonumber(ARGV[i + 2])
    local posKey, linesKey = KEYS[keyBase + 3 * g], KEYS[keyBase + 3 * g + 1]
    local field = resId .. '|' .. loc
    if not checkExisting or redis.call('HEXISTS', linesKey, field) == 0 then
      local p = readPosition(posKey, loc)
      local atp = atpOf(p, tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4]), tonumber(ARGV[i + 5]), tonumber(ARGV[i + 6]), tonumber(ARGV[i + 7]))
      if qty > atp then
        shortfalls[#shortfalls + 1] = g
        shortfalls[#shortfalls + 1] = loc
        shortfalls[#shortfalls + 1] = qty
        shortfalls[#shortfalls + 1] = atp
      else
        plan[#plan + 1] = { g, loc, qty, field, p }
      end
    end
  end
  if #shortfalls > 0 then return shortfalls end
  for _, line in ipairs(plan) do
    -- Lines were merged per (sku, location) by the caller, so each position appears once here.
    local g, loc, qty, field, p = line[1], line[2], line[3], line[4], line[5]
    p.res = p.res + qty
    writePosition(KEYS[keyBase + 3 * g], loc, p)
    redis.call('HSET', KEYS[keyBase + 3 * g + 1], field, qty .. '|h|' .. expiresAtMs)
    redis.call('ZADD', KEYS[keyBase + 3 * g + 2], expiresAtMs, field)
  end
  return shortfalls
end

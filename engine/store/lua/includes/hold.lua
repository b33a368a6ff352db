-- Holds lines on one or more SKU groups, all or none. Shared by holdLines (Cluster, per SKU) and
-- holdBaskets (standalone, whole baskets with their headers).
--
-- KEYS from keyBase: `groups` SKU groups, 3 keys each (positions, lines, expiries).
-- ARGV from argBase: `lineCount` lines, one argument each, packed
-- "group|location|qty|sellable|bufferUnits|bufferPercent|minThreshold|capUnits" (group index,
-- sellable 1|0, capUnits -1: none; one argument rather than eight: fewer to send and to parse).
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
  for i = argBase, argBase + lineCount - 1 do
    local gs, loc, qs, sellable, bufUnits, bufPct, threshold, cap = string.match(ARGV[i], '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
    local g, qty = tonumber(gs), tonumber(qs)
    local posKey, linesKey = KEYS[keyBase + 3 * g], KEYS[keyBase + 3 * g + 1]
    local field = resId .. '|' .. loc
    if not checkExisting or redis.call('HEXISTS', linesKey, field) == 0 then
      local p = readPosition(posKey, loc)
      local atp = atpOf(p, tonumber(sellable), tonumber(bufUnits), tonumber(bufPct), tonumber(threshold), tonumber(cap))
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

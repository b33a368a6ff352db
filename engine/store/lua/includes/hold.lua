-- Holds lines on one or more SKU groups, all or none. Shared by holdLines (Cluster, per SKU) and
-- holdBasket (standalone, the whole basket with its header in one script).
--
-- keyBase: index in KEYS of the first group's positions key; groups follow, 4 keys each.
-- ARGV from argBase: 7 per line: group index, location, qty, sellable (1|0), bufferUnits,
-- bufferPercent, minThreshold. Lines already held by this reservation count as held (retries).
-- Returns a flat list of shortfalls, 4 per line that does not fit (group, location, requested,
-- available); empty when every line was held. Nothing changes when the list is not empty.

local function holdLinesFrom(keyBase, argBase, resId, nowMs, expiresAtMs)
  for k = keyBase, #KEYS, 4 do
    expireDueLines(KEYS[k], KEYS[k + 2], KEYS[k + 3], nowMs)
  end
  local plan, shortfalls = {}, {}
  for i = argBase, #ARGV, 7 do
    local g, loc, qty = tonumber(ARGV[i]), ARGV[i + 1], tonumber(ARGV[i + 2])
    local posKey, linesKey = KEYS[keyBase + 4 * g], KEYS[keyBase + 4 * g + 2]
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
  if #shortfalls > 0 then return shortfalls end
  for _, line in ipairs(plan) do
    local g, loc, qty, field = line[1], line[2], line[3], line[4]
    local posKey = KEYS[keyBase + 4 * g]
    local p = readPosition(posKey, loc)
    p.res = p.res + qty
    writePosition(posKey, loc, p)
    redis.call('HSET', KEYS[keyBase + 4 * g + 2], field, qty .. '|h|' .. expiresAtMs)
    redis.call('ZADD', KEYS[keyBase + 4 * g + 3], expiresAtMs, field)
  end
  return shortfalls
end

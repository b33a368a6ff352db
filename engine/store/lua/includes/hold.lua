-- Holds lines on one or more SKU groups, all or none. Shared by holdLines (Cluster, per SKU) and
-- holdBaskets (standalone, whole baskets with their headers).
--
-- lineSpecs: one string per line, packed
--   "group|location|qty|sellable|bufferUnits|bufferPercent|minThreshold|capUnits" (group: a name
--   for the line's SKU, sellable 1|0, capUnits -1: none; one string rather than eight: fewer to
--   send and to parse).
-- keysOf(group): the SKU's keys, positions then lines (see applyEvents.lua); more may follow.
-- checkExisting: count lines already held by this reservation as held (retries take nothing
-- twice); holdBaskets skips it because a missing header proves no line of that id exists.
-- Returns a flat list of shortfalls, 4 per line that does not fit (group name, location,
-- requested, available); empty when every line was held. Nothing changes when the list is not empty.

local function holdLinesFrom(keysOf, lineSpecs, resId, nowMs, expiresAtMs, checkExisting)
  local plan, shortfalls, nextDue = {}, {}, {}
  for _, spec in ipairs(lineSpecs) do
    local gs, loc, qs, sellable, bufUnits, bufPct, threshold, cap = string.match(spec, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
    local qty = tonumber(qs)
    local keys = keysOf(gs)
    local member = lineMember(resId, loc, qs)
    if not checkExisting or not redis.call('ZSCORE', keys[2], member) then
      local p = readPositionReleasing(gs, keys[1], keys[2], loc, nowMs, nextDue)
      local atp = atpOf(p, tonumber(sellable), tonumber(bufUnits), tonumber(bufPct), tonumber(threshold), tonumber(cap))
      if qty > atp then
        shortfalls[#shortfalls + 1] = gs
        shortfalls[#shortfalls + 1] = loc
        shortfalls[#shortfalls + 1] = qty
        shortfalls[#shortfalls + 1] = atp
      else
        plan[#plan + 1] = { keys, loc, qty, member, p }
      end
    end
  end
  if #shortfalls > 0 then return shortfalls end
  for _, line in ipairs(plan) do
    -- Lines were merged per (sku, location) by the caller, so each position appears once here.
    local keys, loc, qty, member, p = line[1], line[2], line[3], line[4], line[5]
    p.res = p.res + qty
    if p.due == 0 or expiresAtMs < p.due then p.due = expiresAtMs end
    writePosition(keys[1], loc, p)
    redis.call('ZADD', keys[2], expiresAtMs, member)
  end
  return shortfalls
end

-- A SKU's open reservation lines are one sorted set (keys.ts: lines): member
-- "<reservationId>|<location>|<qty>", score the line's expiry in ms while it is held, -1 once it is
-- confirmed (no expiry). One structure answers both "is this line open" (ZSCORE) and "which held
-- lines are due" (ZRANGEBYSCORE 0 now), so a hold writes one key for its line, not two.
--
-- Every script that touches a position whose `due` has come (position.lua) releases the SKU's due
-- lines first, and transitions always do, so a hold that expired while no process was running is
-- released by the next reader or writer.

local LINE_CONFIRMED = -1

local function lineMember(resId, loc, qty)
  return resId .. '|' .. loc .. '|' .. qty
end

-- Releases the due lines; returns the SKU's next due time after that (the earliest expiry left,
-- 0 when none): a valid `due` for any of its positions. Positions it releases get it.
local function expireDueLines(posKey, linesKey, nowMs)
  local due = redis.call('ZRANGEBYSCORE', linesKey, 0, nowMs)
  local locations, released = {}, {}
  for _, member in ipairs(due) do
    local loc, qty = string.match(member, '^[^|]*|([^|]*)|(%d+)$')
    if not released[loc] then
      locations[#locations + 1] = loc
      released[loc] = 0
    end
    released[loc] = released[loc] + tonumber(qty)
  end
  if #due > 0 then redis.call('ZREMRANGEBYSCORE', linesKey, 0, nowMs) end
  local first = redis.call('ZRANGEBYSCORE', linesKey, 0, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  local nextDue = first[2] and tonumber(first[2]) or 0
  for _, loc in ipairs(locations) do
    local p = readPosition(posKey, loc)
    p.res = p.res - released[loc]
    p.due = nextDue
    writePosition(posKey, loc, p)
  end
  return nextDue
end

-- Reads a position for a script that may change it, releasing the SKU's due lines first when one
-- may be due there. nextDue caches, per SKU group, the next due time once released in this call
-- (callers make one table per nowMs). A position whose `due` has come but held nothing due gets
-- the next due time in memory: written back when the caller writes the position.
local function readPositionReleasing(group, posKey, linesKey, loc, nowMs, nextDue)
  local p = readPosition(posKey, loc)
  if not mayBeDue(p.due, nowMs) then return p end
  if nextDue[group] == nil then
    nextDue[group] = expireDueLines(posKey, linesKey, nowMs)
    p = readPosition(posKey, loc)
  end
  if mayBeDue(p.due, nowMs) then p.due = nextDue[group] end
  return p
end

-- Every position of a SKU as one string, after releasing the SKU's due lines when one is due: its
-- positions string as stored (position.lua; '' when it has none). The client decodes it
-- (scripts.ts: visitPackedPositions) and checks the format bytes. Readers use this script only for
-- SKUs where a position's `due` has come; the others they GET directly.
-- One ZRANGEBYSCORE tells whether a held line is due: positions whose `due` has come but hold
-- nothing due are left as they are (the next write sets their `due`, position.lua).
local function readAllPacked(posKey, linesKey, nowMs)
  if #redis.call('ZRANGEBYSCORE', linesKey, 0, nowMs, 'LIMIT', 0, 1) > 0 then expireDueLines(posKey, linesKey, nowMs) end
  return readSkuPositions(posKey) or ''
end

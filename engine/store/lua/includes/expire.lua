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

-- Appends every position of a SKU to out as (location, onHand, reserved) triples, after releasing
-- its due lines when one may be due; positions whose `due` had come are rewritten with the next
-- one, so that the following reads skip the lookup. Returns the number of positions.
local function readAllReleasing(posKey, linesKey, nowMs, out)
  local all = redis.call('HGETALL', posKey)
  local start = #out
  for i = 1, #all, 2 do
    local v = all[i + 1]
    if #v ~= POSITION_SIZE then positionFormatError(posKey, all[i]) end
    local version, snap, adj, res, due = struct.unpack(POSITION_HEAD, v)
    if version ~= POSITION_VERSION then positionFormatError(posKey, all[i]) end
    if mayBeDue(due, nowMs) then
      -- Rare: release, then start again from the released state.
      for j = #out, start + 1, -1 do out[j] = nil end
      local nextDue = expireDueLines(posKey, linesKey, nowMs)
      all = redis.call('HGETALL', posKey)
      for j = 1, #all, 2 do
        local p = decodePosition(posKey, all[j], all[j + 1])
        if mayBeDue(p.due, nowMs) then
          p.due = nextDue
          writePosition(posKey, all[j], p)
        end
        out[#out + 1] = all[j]
        out[#out + 1] = p.snap + p.adj
        out[#out + 1] = p.res
      end
      return #all / 2
    end
    out[#out + 1] = all[i]
    out[#out + 1] = snap + adj
    out[#out + 1] = res
  end
  return #all / 2
end

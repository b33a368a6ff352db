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

-- Every position of a SKU as one string, after releasing the SKU's due lines when one is due:
-- its positions hash's fields and values joined with '|' ("loc|<38 bytes>|loc|<38 bytes>...";
-- locations never contain '|', and a value is always POSITION_SIZE bytes, so the client reads
-- each value by length whatever bytes it holds). The client decodes the values
-- (packed-positions.ts: visitPackedPositions) and checks their format byte. Unpacking them here cost ~1 us per
-- position and three reply items each: 530 us of Redis time for a 12-line basket over 42
-- locations, and 430 us of client time parsing 1,512 reply items.
-- One ZRANGEBYSCORE tells whether a held line is due: positions whose `due` has come but hold
-- nothing due are left as they are (the next write sets their `due`, position.lua).
-- The string is also kept as the SKU's read view (position.lua: viewKeysOf) for VIEW_TTL_MS,
-- after a token of VIEW_TOKEN_SIZE bytes that no other making of a view shares (the server's
-- clock in microseconds and a random number), and the token alone as its stamp. A reader that
-- decoded the view asks only for the stamp until a write deletes both; one that has not takes the
-- view through this script, which hands back the view it finds while its stamp is there.
local VIEW_TTL_MS = 60000
local VIEW_TOKEN_SIZE = 20

local function newViewToken()
  local time = redis.call('TIME')
  return string.format('%010d%06d%04d', tonumber(time[1]), tonumber(time[2]), math.random(0, 9999))
end

-- Returns the SKU's view: its token then its positions packed ('' when it has none, and no view is kept).
local function readAllPacked(posKey, linesKey, nowMs)
  if #redis.call('ZRANGEBYSCORE', linesKey, 0, nowMs, 'LIMIT', 0, 1) > 0 then expireDueLines(posKey, linesKey, nowMs) end
  local viewKey, stampKey = viewKeysOf(posKey)
  local stamp = redis.call('GET', stampKey)
  if stamp then
    local view = redis.call('GET', viewKey)
    if view and string.sub(view, 1, VIEW_TOKEN_SIZE) == stamp then return view end
  end
  local packed = table.concat(redis.call('HGETALL', posKey), '|')
  if packed == '' then return '' end
  local token = newViewToken()
  local view = token .. packed
  redis.call('SET', viewKey, view, 'PX', VIEW_TTL_MS)
  redis.call('SET', stampKey, token, 'PX', VIEW_TTL_MS)
  -- A write later in this call deletes them again.
  viewsDropped[posKey] = nil
  return view
end

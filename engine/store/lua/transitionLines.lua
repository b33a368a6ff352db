-- transitionLines: confirms, fulfils or releases a reservation's lines on one or more SKUs.
--
-- KEYS, 3 per SKU group g: positions, lines, expiries (see applyEvents.lua); then one per line,
--   in line order: the adjustments hash of the line's position (used by fulfil)
-- ARGV[1] reservationId  ARGV[2] op ("confirm" | "fulfil" | "release")  ARGV[3] nowMs  ARGV[4] G
-- ARGV[5..] 2 per line: group index, location
-- confirm: held line -> confirmed (no expiry). fulfil: reserved and onHand drop by the line's qty,
-- onHand as an adjustment at nowMs with eventId "fulfil:<reservationId>:<location>". release:
-- reserved drops by qty. A line already gone (released, expired, fulfilled) is skipped, so a retry
-- changes nothing.
-- Returns {count of lines transitioned, count of lines missing}.

--!include position.lua
--!include expire.lua

local resId, op, nowMs, groups = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
for g = 0, groups - 1 do
  expireDueLines(KEYS[3 * g + 1], KEYS[3 * g + 2], KEYS[3 * g + 3], nowMs)
end

local done, missing, n = 0, 0, 0
for i = 5, #ARGV, 2 do
  n = n + 1
  local g, loc = tonumber(ARGV[i]), ARGV[i + 1]
  local posKey, linesKey, expKey, adjKey = KEYS[3 * g + 1], KEYS[3 * g + 2], KEYS[3 * g + 3], KEYS[3 * groups + n]
  local field = resId .. '|' .. loc
  local v = redis.call('HGET', linesKey, field)
  if not v then
    missing = missing + 1
  else
    local qty, state = string.match(v, '^(%d+)|(%a)|')
    qty = tonumber(qty)
    if op == 'confirm' then
      if state == 'h' then
        redis.call('HSET', linesKey, field, qty .. '|c|0')
        redis.call('ZREM', expKey, field)
      end
    else
      local p = readPosition(posKey, loc)
      p.res = p.res - qty
      if op == 'fulfil' then
        applyAdjustment(adjKey, p, 'fulfil:' .. resId .. ':' .. loc, -qty, nowMs)
      end
      writePosition(posKey, loc, p)
      redis.call('HDEL', linesKey, field)
      redis.call('ZREM', expKey, field)
    end
    done = done + 1
  end
end
return { done, missing }

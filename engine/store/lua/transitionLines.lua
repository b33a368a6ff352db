-- transitionLines: confirms, fulfils or releases a reservation's lines on one or more SKUs.
--
-- KEYS, 2 per SKU group g: positions, lines (see applyEvents.lua); then one per line, in line
--   order: the adjustments hash of the line's position (used by fulfil)
-- ARGV[1] reservationId  ARGV[2] op ("confirm" | "fulfil" | "release")  ARGV[3] nowMs  ARGV[4] G
-- ARGV[5..] 3 per line: group index, location, qty (the line as the reservation header holds it:
--   with the reservation id, it names the line's member in the lines set, expire.lua)
-- confirm: held line -> confirmed (no expiry). fulfil: reserved and onHand drop by the line's qty,
-- onHand as an adjustment at nowMs with eventId "fulfil:<reservationId>:<location>". release:
-- reserved drops by qty. A line already gone (released, expired, fulfilled) is skipped, so a retry
-- changes nothing.
-- Returns {count of lines transitioned, count of lines missing}.

--!include position.lua
--!include expire.lua

local resId, op, nowMs, groups = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
for g = 0, groups - 1 do
  expireDueLines(KEYS[2 * g + 1], KEYS[2 * g + 2], nowMs)
end

local done, missing, n = 0, 0, 0
for i = 5, #ARGV, 3 do
  n = n + 1
  local g, loc, qty = tonumber(ARGV[i]), ARGV[i + 1], tonumber(ARGV[i + 2])
  local posKey, linesKey, adjKey = KEYS[2 * g + 1], KEYS[2 * g + 2], KEYS[2 * groups + n]
  local member = lineMember(resId, loc, ARGV[i + 2])
  local score = redis.call('ZSCORE', linesKey, member)
  if not score then
    missing = missing + 1
  else
    if op == 'confirm' then
      if tonumber(score) ~= LINE_CONFIRMED then redis.call('ZADD', linesKey, LINE_CONFIRMED, member) end
    else
      local p = readPosition(posKey, loc)
      p.res = p.res - qty
      if op == 'fulfil' then
        applyAdjustment(adjKey, p, 'fulfil:' .. resId .. ':' .. loc, -qty, nowMs)
      end
      writePosition(posKey, loc, p)
      redis.call('ZREM', linesKey, member)
    end
    done = done + 1
  end
end
return { done, missing }

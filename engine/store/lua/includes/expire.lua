-- Releases a SKU's held lines whose expiry is due. Every script that touches a SKU runs this first,
-- so a hold that expired while no process was running is released by the next reader or writer.
-- Line fields are "<reservationId>|<location>", values "qty|state|expiresAtMs" (state h or c).

local function expireDueLines(posKey, linesKey, expKey, nowMs)
  local due = redis.call('ZRANGEBYSCORE', expKey, '-inf', nowMs)
  for _, member in ipairs(due) do
    local v = redis.call('HGET', linesKey, member)
    if v then
      local qty, state = string.match(v, '^(%d+)|(%a)|')
      if state == 'h' then
        local loc = string.match(member, '|([^|]*)$')
        local p = readPosition(posKey, loc)
        p.res = p.res - tonumber(qty)
        writePosition(posKey, loc, p)
        redis.call('HDEL', linesKey, member)
      end
    end
    redis.call('ZREM', expKey, member)
  end
  return #due
end

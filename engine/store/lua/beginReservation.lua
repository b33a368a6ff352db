-- beginReservation: creates a reservation header in state "pending", or tells the caller what
-- already exists under that id (idempotency).
--
-- KEYS[1] reservation header hash  KEYS[2] due sorted set (held reservations by expiry)
-- ARGV[1] reservationId  ARGV[2] channel  ARGV[3] lines (JSON)  ARGV[4] nowMs  ARGV[5] expiresAtMs
-- ARGV[6] leaseMs (how long a pending hold belongs to its caller before a retry may take it over)
-- Returns {"new"} | {"continue"} (a pending hold whose caller died: finish it) | {"busy"} (pending,
-- still leased) | {"exists"} (any other state: read it back).

local header = KEYS[1]
local nowMs = tonumber(ARGV[4])
local state = redis.call('HGET', header, 'state')
if not state then
  redis.call('HSET', header, 'state', 'pending', 'channel', ARGV[2], 'lines', ARGV[3], 'created', ARGV[4],
    'exp', ARGV[5], 'lease', nowMs + tonumber(ARGV[6]))
  -- In the due set from the start: if the caller dies mid-basket, the sweeper still finds it.
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
  return { 'new' }
end
if state == 'pending' then
  if tonumber(redis.call('HGET', header, 'lease')) < nowMs then
    redis.call('HSET', header, 'lease', nowMs + tonumber(ARGV[6]))
    return { 'continue' }
  end
  return { 'busy' }
end
return { 'exists' }

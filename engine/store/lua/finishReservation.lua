-- finishReservation: sets a reservation's final (or held) state after its lines were handled.
--
-- KEYS[1] reservation header hash  KEYS[2] due sorted set
-- ARGV[1] reservationId  ARGV[2] state ("held" | "rejected" | "confirmed" | "fulfilled" | "released")
-- ARGV[3] shortfalls (JSON, for "rejected", else "")  ARGV[4] expired ("1" when the hold timed out)
-- ARGV[5] retentionMs: how long a finished reservation is kept so retries get their first outcome
-- Returns 1.

local header, id, state = KEYS[1], ARGV[1], ARGV[2]
redis.call('HSET', header, 'state', state)
redis.call('HDEL', header, 'lease')
if ARGV[3] ~= '' then redis.call('HSET', header, 'short', ARGV[3]) end
if ARGV[4] == '1' then redis.call('HSET', header, 'expired', '1') end
if state == 'held' then
  return 1
end
redis.call('ZREM', KEYS[2], id)
if state == 'confirmed' then
  redis.call('HSET', header, 'exp', '0')
  redis.call('PERSIST', header)
else
  redis.call('PEXPIRE', header, tonumber(ARGV[5]))
end
return 1

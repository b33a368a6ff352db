-- beginTransition: checks that a reservation may go through op and marks it in progress, so that a
-- caller that dies mid-way can be replaced by a retry of the same op.
--
-- KEYS[1] reservation header hash
-- ARGV[1] op ("confirm" | "fulfil" | "release" | "expire")  ARGV[2] nowMs  ARGV[3] leaseMs
-- Returns {"go"} (lines may be transitioned) | {"done"} (already in the target state: nothing to
-- do) | {"unknown"} | {"busy", state} | {"invalid", state}.

local header, op, nowMs = KEYS[1], ARGV[1], tonumber(ARGV[2])
local state = redis.call('HGET', header, 'state')
if not state then return { 'unknown' } end
local exp = tonumber(redis.call('HGET', header, 'exp'))
local target = ({ confirm = 'confirmed', fulfil = 'fulfilled', release = 'released', expire = 'released' })[op]
local progress = ({ confirm = 'confirming', fulfil = 'fulfilling', release = 'releasing', expire = 'releasing' })[op]

if state == progress then
  if tonumber(redis.call('HGET', header, 'lease')) < nowMs then
    redis.call('HSET', header, 'lease', nowMs + tonumber(ARGV[3]))
    return { 'go' }
  end
  return { 'busy', state }
end
if state == 'pending' or state == 'confirming' or state == 'fulfilling' or state == 'releasing' then
  return { 'busy', state }
end
-- A held reservation past its expiry is released, whatever the sweeper has or has not done yet.
local expired = state == 'held' and exp > 0 and exp <= nowMs
if state == target and not (op == 'expire') then return { 'done' } end
if op == 'expire' then
  if not expired then return { 'done' } end
elseif expired then
  if op == 'release' then
    -- Releasing an expired hold is what the expiry does: let it run, and report it released.
  else
    return { 'invalid', 'expired' }
  end
elseif state == 'rejected' or state == 'released' or state == 'fulfilled' then
  return { 'invalid', state }
elseif op == 'confirm' and state ~= 'held' then
  return { 'invalid', state }
end
redis.call('HSET', header, 'state', progress, 'lease', nowMs + tonumber(ARGV[3]))
if expired then redis.call('HSET', header, 'expired', '1') end
return { 'go' }

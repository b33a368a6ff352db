-- Position codec and event rules, shared by every script that reads or writes positions.
--
-- A position is one field of the SKU's positions hash (field = location id), packed as
--   "snapQty:adjSum:reserved:snapAsOf:snapTie"
-- onHand = snapQty + adjSum. snapAsOf/snapTie order snapshots: a snapshot replaces the current one
-- when (asOf, tie) is greater; tie is a 32-bit hash of the eventId computed by the caller (-1 for
-- "no snapshot yet" and for a base folded from adjustments at the bound).
-- The adjustments hash holds, per location, a msgpack list of {eventId, asOf, qty} applied after
-- the snapshot, sorted by asOf; it is what makes deltas idempotent.

local ADJUSTMENTS_MAX = 64

local function readPosition(posKey, loc)
  local v = redis.call('HGET', posKey, loc)
  if not v then return { snap = 0, adj = 0, res = 0, asOf = -1, tie = -1, exists = false } end
  local a, b, c, d, e = string.match(v, '^(-?%d+):(-?%d+):(-?%d+):(-?%d+):(-?%d+)$')
  return { snap = tonumber(a), adj = tonumber(b), res = tonumber(c), asOf = tonumber(d), tie = tonumber(e), exists = true }
end

local function writePosition(posKey, loc, p)
  if p.res < 0 then error('INVARIANT reserved < 0 at ' .. posKey .. ' ' .. loc) end
  redis.call('HSET', posKey, loc, string.format('%d:%d:%d:%d:%d', p.snap, p.adj, p.res, p.asOf, p.tie))
  return true
end

local function readAdjustments(adjKey, loc)
  local v = redis.call('HGET', adjKey, loc)
  if not v then return {} end
  return cmsgpack.unpack(v)
end

local function writeAdjustments(adjKey, loc, list)
  if #list == 0 then redis.call('HDEL', adjKey, loc) else redis.call('HSET', adjKey, loc, cmsgpack.pack(list)) end
end

-- Returns 1 applied, 2 duplicate, 3 stale; updates p in place (caller writes it).
local function applySnapshot(adjKey, loc, p, qty, asOf, tie)
  if asOf < p.asOf or (asOf == p.asOf and tie < p.tie) then return 3 end
  if asOf == p.asOf and tie == p.tie then return 2 end
  local kept, sum = {}, 0
  for _, a in ipairs(readAdjustments(adjKey, loc)) do
    if a[2] > asOf then kept[#kept + 1] = a; sum = sum + a[3] end
  end
  writeAdjustments(adjKey, loc, kept)
  p.snap, p.adj, p.asOf, p.tie = qty, sum, asOf, tie
  return 1
end

-- An adjustment (delta, or a fulfilled sale) at source time asOf.
local function applyAdjustment(adjKey, loc, p, eventId, qty, asOf)
  if asOf <= p.asOf then return 3 end
  local list = readAdjustments(adjKey, loc)
  for _, a in ipairs(list) do
    if a[1] == eventId then return 2 end
  end
  -- Keep the list sorted by (asOf, eventId): insertion point from the end (arrivals are mostly in order).
  local i = #list
  while i > 0 and (list[i][2] > asOf or (list[i][2] == asOf and list[i][1] > eventId)) do i = i - 1 end
  table.insert(list, i + 1, { eventId, asOf, qty })
  p.adj = p.adj + qty
  -- At the bound, fold the oldest adjustments into the base, as if a snapshot had been taken at
  -- their time. Residual risk, documented: a delta older than the folded one arriving later is
  -- then treated as included (stale).
  while #list > ADJUSTMENTS_MAX do
    local oldest = table.remove(list, 1)
    p.snap, p.adj, p.asOf, p.tie = p.snap + oldest[3], p.adj - oldest[3], oldest[2], -1
  end
  writeAdjustments(adjKey, loc, list)
  return 1
end

-- ATP of one position under a line rule: 0 if not sellable, else max(0, onHand - reserved - buffer),
-- shown as 0 below the threshold. Buffer = units + ceil(percent * max(onHand, 0) / 100).
local function atpOf(p, sellable, bufUnits, bufPct, threshold)
  if sellable ~= 1 then return 0 end
  local onHand = p.snap + p.adj
  local positive = onHand
  if positive < 0 then positive = 0 end
  local buffer = bufUnits + math.ceil(bufPct * positive / 100)
  local atp = onHand - p.res - buffer
  if atp < 0 then atp = 0 end
  if atp < threshold then return 0 end
  return atp
end

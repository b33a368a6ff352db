-- Position codec and event rules, shared by every script that reads or writes positions.
--
-- A position is one field of the SKU's positions hash (field = location id), its value packed
-- with Redis's struct library as a format byte (POSITION_VERSION) then eight little-endian
-- integers (38 bytes): snapQty (6 bytes) adjSum (5) reserved (6) due (4, unsigned, in seconds)
-- snapAsOf (6) snapTie (4) adjCount (1, unsigned) version (5). The format byte lets a value
-- written by another layout (the text layout of earlier versions starts with a digit, the 32-byte
-- layout without `due` has format byte 1, the 38-byte one without `version` format byte 2) fail
-- with a clear error instead of being misread.
-- version counts the position's writes (writePosition adds one): it rises with every change of
-- onHand or reserved, so readers of the change feed, which two kinds of producers write (the
-- engine for stock, gateways for reservations), can tell the newest state of a position. 5 bytes:
-- 5.5e11 writes, 170 years at 100 a second. Its room came from fields that did not need theirs,
-- so that a position stays 38 bytes: 40 or 43 moved a SKU's hash (50 positions) into the
-- allocator's next size class, +10 bytes a position (`npm run bench -- store`, 1 M positions:
-- 53.2 -> 63.4). `due` is kept in whole seconds, rounded down (still a lower bound: at worst a
-- script looks the expiries up once more in the second before a hold lapses); adjSum sums at most
-- 2 * ADJUSTMENTS_MAX + 1 adjustments of at most 1e9 each (validate.ts), far inside 5 bytes;
-- snapTie is 31 bits (engine/core/snapshot-order.ts) and -1; adjCount is at most 129.
-- Binary rather than text: struct.unpack is one C call where matching "a:b:c:d:e:f" and six
-- tonumber calls cost more than the HGET itself, and 38 bytes is smaller than the text.
-- due is 0 when no held line sits at the position, else a time in ms no later than the expiry of
-- any line held there (a lower bound: confirming or releasing a line does not raise it). A script
-- that writes looks the SKU's expiries up only when a position it touches has 0 < due <= now: most
-- positions have no hold due, and the lookup cost more than the rest of a hold. Reads, which touch
-- every position of a SKU, ask the expiries once instead (expire.lua: readAllPacked), and the
-- client decodes the values (engine/store/scripts.ts mirrors this layout).
-- Ranges: quantities are at most 1e9 per event (engine/core/validate.ts), far inside 6 bytes
-- (+-1.4e14) even summed; asOf in ms fits 6 bytes until the year 6429, due in seconds 4 unsigned
-- bytes until 2106; tie is a 31-bit hash or -1.
-- onHand = snapQty + adjSum. snapAsOf/snapTie order snapshots: a snapshot replaces the current one
-- when (asOf, tie) is greater; tie is a 31-bit hash of the eventId computed by the caller (-1 for
-- "no snapshot yet" and for a base folded from adjustments at the bound).
-- The position's adjustments key (a hash eventId -> asOf and qty packed as two little-endian
-- 6-byte integers, ADJUSTMENT_FORMAT; absent when empty) holds every adjustment applied after the
-- snapshot: HSETNX on it is what makes deltas idempotent. Binary for the same reason as positions:
-- a fold reads 129 of them, and matching "asOf:qty" text made the fold twice as dear (250 against
-- 130 us per fold measured in Redis).
-- adjCount lets a snapshot skip the adjustments key when there is none.

local POSITION_VERSION = 3
local POSITION_FORMAT = '<Bi6i5i6I4i6i4Bi5'
local POSITION_SIZE = 38
-- adjSum's room (5 bytes, signed).
local ADJ_SUM_LIMIT = 549755813888

local function positionFormatError(posKey, loc)
  error('position ' .. posKey .. ' ' .. loc .. ' was not written by this version of Instock (format byte is not ' .. POSITION_VERSION .. '): reload its stock into an empty Redis')
end

local ADJUSTMENTS_MAX = 64
local ADJUSTMENT_FORMAT = '<i6i6'
local ADJUSTMENT_SIZE = 12

-- asOf and qty of an adjustment value.
local function decodeAdjustment(adjKey, eventId, v)
  if #v ~= ADJUSTMENT_SIZE then
    error('adjustment ' .. adjKey .. ' ' .. eventId .. ' was not written by this version of Instock: reload its stock into an empty Redis')
  end
  return struct.unpack(ADJUSTMENT_FORMAT, v)
end

-- The position packed in v (a value of the positions hash; nil: an empty position).
local function decodePosition(posKey, loc, v)
  if not v then return { snap = 0, adj = 0, res = 0, due = 0, asOf = -1, tie = -1, cnt = 0, ver = 0 } end
  if #v ~= POSITION_SIZE then positionFormatError(posKey, loc) end
  local format, a, b, c, d, e, f, g, h = struct.unpack(POSITION_FORMAT, v)
  if format ~= POSITION_VERSION then positionFormatError(posKey, loc) end
  return { snap = a, adj = b, res = c, due = d * 1000, asOf = e, tie = f, cnt = g, ver = h }
end

local function readPosition(posKey, loc)
  return decodePosition(posKey, loc, redis.call('HGET', posKey, loc))
end

-- A SKU's read view (keys.ts: view) is its positions as readers take them (expire.lua:
-- readAllPacked), after a token that names this making of it; its stamp (keys.ts: viewStamp) is
-- the token alone. A reader that kept the positions it decoded under a token asks for the stamp
-- only (MGET, scripts.ts) and reuses them while the stamp is the same. Both live only while no
-- position of the SKU has been written since they were made: writePosition deletes them in the
-- same script as the write, so a reader never takes a stamp or a view older than the positions.
-- posKey is "<prefix>:p:{<sku>}", the view "<prefix>:v:{<sku>}" and the stamp "<prefix>:vs:{<sku>}"
-- (same hash tag, same slot).
local function viewKeysOf(posKey)
  local brace = string.find(posKey, '{', 1, true)
  local head, tail = string.sub(posKey, 1, brace - 3), string.sub(posKey, brace - 1)
  return head .. 'v' .. tail, head .. 'vs' .. tail
end

-- Views deleted in this call (a script runs as one function, so the table lives for one call):
-- a SKU's many writes delete its view once.
local viewsDropped = {}

local function writePosition(posKey, loc, p)
  if p.res < 0 then error('INVARIANT reserved < 0 at ' .. posKey .. ' ' .. loc) end
  if p.adj >= ADJ_SUM_LIMIT or p.adj < -ADJ_SUM_LIMIT then error('INVARIANT adjSum out of its 5 bytes at ' .. posKey .. ' ' .. loc) end
  -- Nothing reserved: no line is held here, so no expiry can be due.
  if p.res == 0 then p.due = 0 end
  p.ver = p.ver + 1
  redis.call('HSET', posKey, loc, struct.pack(POSITION_FORMAT, POSITION_VERSION, p.snap, p.adj, p.res, math.floor(p.due / 1000), p.asOf, p.tie, p.cnt, p.ver))
  if not viewsDropped[posKey] then
    local viewKey, stampKey = viewKeysOf(posKey)
    redis.call('DEL', viewKey, stampKey)
    viewsDropped[posKey] = true
  end
end

-- Whether a held line at the position may be due at nowMs (see `due` above).
local function mayBeDue(due, nowMs)
  return due > 0 and due <= nowMs
end

-- Every adjustment of the position as {eventId, asOf, qty}, sorted by (asOf, eventId).
local function readAdjustments(adjKey)
  local all = redis.call('HGETALL', adjKey)
  local list = {}
  for i = 1, #all, 2 do
    local a, q = decodeAdjustment(adjKey, all[i], all[i + 1])
    list[#list + 1] = { all[i], a, q }
  end
  table.sort(list, function(x, y) return x[2] < y[2] or (x[2] == y[2] and x[1] < y[1]) end)
  return list
end

-- Returns 1 applied, 2 duplicate, 3 stale; updates p in place (caller writes it).
local function applySnapshot(adjKey, p, qty, asOf, tie)
  if asOf < p.asOf or (asOf == p.asOf and tie < p.tie) then return 3 end
  if asOf == p.asOf and tie == p.tie then return 2 end
  local sum, cnt = 0, 0
  if p.cnt > 0 then
    -- Sum and count what is newer than the snapshot (no order needed); drop the rest, the whole
    -- key at once when nothing is newer (the common case: a snapshot counts every earlier delta).
    local all = redis.call('HGETALL', adjKey)
    local drop = {}
    for i = 1, #all, 2 do
      local a, q = decodeAdjustment(adjKey, all[i], all[i + 1])
      if a > asOf then sum = sum + q; cnt = cnt + 1 else drop[#drop + 1] = all[i] end
    end
    if cnt == 0 then redis.call('DEL', adjKey) elseif #drop > 0 then redis.call('HDEL', adjKey, unpack(drop)) end
  end
  p.snap, p.adj, p.asOf, p.tie, p.cnt = qty, sum, asOf, tie, cnt
  return 1
end

-- An adjustment (delta, or a fulfilled sale) at source time asOf.
local function applyAdjustment(adjKey, p, eventId, qty, asOf)
  if asOf <= p.asOf then return 3 end
  if redis.call('HSETNX', adjKey, eventId, struct.pack(ADJUSTMENT_FORMAT, asOf, qty)) == 0 then return 2 end
  p.adj, p.cnt = p.adj + qty, p.cnt + 1
  -- Past twice the bound, fold the oldest down to the bound into the base, as if a snapshot had
  -- been taken at their time (amortised: one fold per ADJUSTMENTS_MAX deltas). Residual risk,
  -- documented: a delta older than the folded ones arriving later is then treated as included.
  if p.cnt > 2 * ADJUSTMENTS_MAX then
    local list = readAdjustments(adjKey)
    local drop = {}
    for i = 1, #list - ADJUSTMENTS_MAX do
      local a = list[i]
      p.snap, p.adj, p.asOf, p.tie = p.snap + a[3], p.adj - a[3], a[2], -1
      drop[#drop + 1] = a[1]
    end
    redis.call('HDEL', adjKey, unpack(drop))
    p.cnt = #list - #drop
  end
  return 1
end

-- ATP of one position under a line rule (engine/core/atp.ts is the specification): 0 if not
-- sellable, else max(0, onHand - reserved - buffer), shown as 0 below the threshold, then at most
-- the cap (-1: none). Buffer = units + ceil(percent * max(onHand, 0) / 100), the percent taken in
-- basis points so that the product is an exact integer and the rounding matches the core's.
local function atpOf(p, sellable, bufUnits, bufPct, threshold, cap)
  if sellable ~= 1 then return 0 end
  local onHand = p.snap + p.adj
  local positive = onHand
  if positive < 0 then positive = 0 end
  local basisPoints = math.floor(bufPct * 100 + 0.5)
  local buffer = bufUnits + math.ceil(basisPoints * positive / 10000)
  local atp = onHand - p.res - buffer
  if atp < 0 then atp = 0 end
  if atp < threshold then return 0 end
  if cap >= 0 and atp > cap then return cap end
  return atp
end

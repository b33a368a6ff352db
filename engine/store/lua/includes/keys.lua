-- Key names built inside a script, for the standalone-path scripts that take a key prefix instead
-- of declared KEYS (applyEvents, holdBaskets, readPositionsMany). The same layout as
-- engine/store/keys.ts: a change there is a change here.

-- Returns skuKeys(sku) -> { positions, lines, adjustments prefix (append the location) }, each
-- SKU's names built once per script call.
local function skuKeyNames(prefix)
  local cache = {}
  return function(sku)
    local keys = cache[sku]
    if not keys then
      keys = { prefix .. ':p:{' .. sku .. '}', prefix .. ':o:{' .. sku .. '}', prefix .. ':a:{' .. sku .. '}:' }
      cache[sku] = keys
    end
    return keys
  end
end

-- The header and the due set of reservation id in its shard (keys.ts: shardOf, computed by the caller).
local function reservationKeyNames(prefix, shard, id)
  local tag = '{rs' .. shard .. '}'
  return prefix .. ':r:' .. tag .. ':' .. id, prefix .. ':due:' .. tag
end

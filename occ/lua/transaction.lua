--[[ transaction.lua — one money movement by an administrator: top-up, payment, adjustment or refund.

KEYS    [1] account hash   [2] the account's idempotency hash   [3] the shard's event stream
ARGV    [1] idempotency key   [2] type (topup | payment | adjustment | refund)   [3] balance change, signed micro-units
        [4] ledger code   [5] description   [6] time, Unix ms   [7] transaction id   [8] digest of the request
Returns {"ok", transaction id, balance} | {"dup", transaction id, balance} | {"conflict"} | {"missing"} | {"limit"}
Invariants
  - one idempotency key changes the balance at most once; a repeat with the same request answers "dup" with the
    first outcome, a repeat with a different request (other digest) answers "conflict" and changes nothing.
  - the balance change and its event on the shard's stream are written together.
  - amounts and the balance stay within ±(2^53 - 1), where doubles are exact ("limit" otherwise, nothing written);
    written with %.0f.
]]

local stored = redis.call('HGET', KEYS[2], ARGV[1])
if stored then
  local id, balance, digest = string.match(stored, '^([^|]*)|([^|]*)|(.*)$')
  if digest ~= ARGV[8] then return {'conflict'} end
  return {'dup', id, balance}
end
local a = redis.call('HMGET', KEYS[1], 'balance', 'currency')
if not a[1] then return {'missing'} end
local after = tonumber(a[1]) + tonumber(ARGV[3])
if math.abs(after) > 9007199254740991 then return {'limit'} end -- beyond 2^53 - 1 doubles are no longer exact
local balance = string.format('%.0f', after)
redis.call('HSET', KEYS[1], 'balance', balance)
redis.call('XADD', KEYS[3], '*', 'type', ARGV[2], 'id', ARGV[7], 'account', string.match(KEYS[1], ':acct:(.*)$'),
  'amount', ARGV[3], 'balance', balance, 'currency', a[2], 'ledger', ARGV[4], 'description', ARGV[5],
  'idempotency_key', ARGV[1], 'time_ms', ARGV[6])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[7] .. '|' .. balance .. '|' .. ARGV[8])
return {'ok', ARGV[7], balance}

--[[ transaction.lua — one money movement by an administrator: top-up, payment, adjustment or refund.

KEYS    [1] account hash   [2] the account's idempotency hash   [3] the shard's event stream
ARGV    [1] idempotency key   [2] type (topup | payment | adjustment | refund)   [3] amount, signed micro-units
        [4] ledger code   [5] description   [6] time, Unix ms   [7] transaction id   [8] digest of the request
Returns {"ok", transaction id, balance, tax} | {"dup", transaction id, balance, tax} | {"conflict"} | {"missing"}
        | {"limit"}
Prepaid tax (topup only): when the account's prepaid_tax_ppm r is > 0, the gross amount G = ARGV[3] is split into
  tax T = G × r / (10^6 + r), rounded half up to the micro-unit, and net N = G − T. The balance is credited N, and
  the entry carries amount = N (the balance change, as for every entry), gross = G, tax = T, tax_rate_ppm = r,
  tax_ledger and tax_code (the account's prepaid_tax_ledger and prepaid_tax_code). The split is computed here, from
  the rate read in this same call, so a rate change can never fall between reading the rate and applying it.
  G × r may exceed 2^53, so it is computed exactly as q × r + round(m × r / D) with D = 10^6 + r, G = q × D + m
  (0 ≤ m < D ≤ 2 × 10^6, so every product stays far below 2^53). Payments, adjustments and refunds are never taxed.
Invariants
  - one idempotency key changes the balance at most once; a repeat with the same request answers "dup" with the
    first outcome (balance and tax), a repeat with a different request (other digest) answers "conflict" and
    changes nothing.
  - the balance change and its event on the shard's stream are written together.
  - amounts and the balance stay within ±(2^53 - 1), where doubles are exact ("limit" otherwise, nothing written);
    written with %.0f.
]]

-- floor(a / b) and a - b × floor(a / b) for integers 0 ≤ a < 2^53, 0 < b, exact: the quotient of doubles is
-- corrected by one step either way.
local function divmod(a, b)
  local q = math.floor(a / b)
  local r = a - q * b
  if r < 0 then q, r = q - 1, r + b elseif r >= b then q, r = q + 1, r - b end
  return q, r
end

local stored = redis.call('HGET', KEYS[2], ARGV[1])
if stored then
  local id, balance, digest, tax = string.match(stored, '^([^|]*)|([^|]*)|([^|]*)|?(.*)$')
  if digest ~= ARGV[8] then return {'conflict'} end
  if tax == '' then tax = '0' end
  return {'dup', id, balance, tax}
end
local a = redis.call('HMGET', KEYS[1], 'balance', 'currency', 'prepaid_tax_ppm', 'prepaid_tax_ledger',
  'prepaid_tax_code')
if not a[1] then return {'missing'} end
local amount = tonumber(ARGV[3])
local rate = tonumber(a[3] or '0') or 0
local tax = 0
if ARGV[2] == 'topup' and rate > 0 and amount > 0 then
  local d = 1000000 + rate
  local q, m = divmod(amount, d)
  local t = divmod(2 * m * rate + d, 2 * d)  -- round(m × r / d), half up
  tax = q * rate + t
end
local net = amount - tax
local after = tonumber(a[1]) + net
if math.abs(after) > 9007199254740991 then return {'limit'} end -- beyond 2^53 - 1 doubles are no longer exact
local balance = string.format('%.0f', after)
local account = string.match(KEYS[1], ':acct:(.*)$')
redis.call('HSET', KEYS[1], 'balance', balance)
if tax > 0 then
  redis.call('XADD', KEYS[3], '*', 'type', ARGV[2], 'id', ARGV[7], 'account', account,
    'amount', string.format('%.0f', net), 'balance', balance, 'currency', a[2], 'ledger', ARGV[4],
    'description', ARGV[5], 'idempotency_key', ARGV[1], 'time_ms', ARGV[6], 'gross', ARGV[3],
    'tax', string.format('%.0f', tax), 'tax_rate_ppm', string.format('%.0f', rate), 'tax_ledger', a[4] or '',
    'tax_code', a[5] or '')
else
  redis.call('XADD', KEYS[3], '*', 'type', ARGV[2], 'id', ARGV[7], 'account', account,
    'amount', ARGV[3], 'balance', balance, 'currency', a[2], 'ledger', ARGV[4], 'description', ARGV[5],
    'idempotency_key', ARGV[1], 'time_ms', ARGV[6])
end
local taxed = string.format('%.0f', tax)
redis.call('HSET', KEYS[2], ARGV[1], ARGV[7] .. '|' .. balance .. '|' .. ARGV[8] .. '|' .. taxed)
return {'ok', ARGV[7], balance, taxed}

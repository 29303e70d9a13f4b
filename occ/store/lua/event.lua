--[[ event.lua — apply a batch of one-shot events (Diameter EVENT requests) atomically.
Typed in Python: occ/store/shapes.py EventRequest (each request of ARGV[1]) and ScriptReply (each result).

KEYS    keys without repeats; a request names its keys by index (field k):
        k[1] account hash   k[2] event-answer hash (evt:<session>)   k[3] shard event stream
ARGV[1] msgpack array of requests, each a map:
        k, sid, rn, acct, now (Unix ms)
        action  "DIRECT_DEBIT" | "REFUND_ACCOUNT" | "CHECK_BALANCE"
        plan    the tariff plan the event was rated with (must still be the account's, else "retry")
        cost    the rated price (micro-units);  units, rg, svc, group, ledger, rate, tariff, calling, called, start_s
Returns msgpack array, one entry per request: {"ok", answer} | {"dup", stored answer} | {"retry"} | {"fail", answer}
        answer = {code, cost, enough, balance, available} (stored as msgpack)
Invariants
  - a direct debit happens only when available (balance + credit_limit - reserved) covers the cost: no overspend.
  - every debit and refund is XADDed to the shard's stream in this same call; CHECK_BALANCE writes nothing.
  - the answer of a debit or refund, refused ones included, is stored as ans:<rn> (the hash expires a day after its
    last write) and a repeat gets it back without a second charge.
  - amounts are integers below 2^53, written with %.0f.
]]

local requests = cmsgpack.unpack(ARGV[1])
local results = {}

local function int(x) return string.format('%.0f', x) end

-- Keep an answer a day, so that a repeat of the request gets it back (a failure included) and changes nothing.
local function store(answers, r, outcome, answer)
  redis.call('HSET', answers, 'ans:' .. r.rn, cmsgpack.pack(answer))
  redis.call('EXPIRE', answers, 86400)
  return {outcome, answer}
end

local function apply(r)
  local acct, answers, events = KEYS[r.k[1]], KEYS[r.k[2]], KEYS[r.k[3]]
  local stored = redis.call('HGET', answers, 'ans:' .. r.rn)
  if stored then return {'dup', cmsgpack.unpack(stored)} end
  local a = redis.call('HMGET', acct, 'balance', 'credit_limit', 'reserved', 'status', 'plan', 'currency')
  if not a[1] then return store(answers, r, 'fail', {5030, r.cost, false, 0, 0}) end
  if a[5] ~= r.plan then return {'retry'} end
  local balance, limit, reserved, currency = tonumber(a[1]), tonumber(a[2]), tonumber(a[3]), a[6]
  local available = balance + limit - reserved
  if a[4] ~= 'ACTIVE' and r.action ~= 'REFUND_ACCOUNT' then
    return store(answers, r, 'fail', {4010, r.cost, false, balance, available})
  end
  local enough = r.cost <= available
  if r.action == 'CHECK_BALANCE' then
    return {'ok', {2001, r.cost, enough, balance, available}}
  end
  if r.action == 'DIRECT_DEBIT' and not enough then
    return store(answers, r, 'fail', {4012, r.cost, false, balance, available})
  end
  local amount = r.cost
  if r.action == 'DIRECT_DEBIT' then amount = -r.cost end
  balance = balance + amount
  redis.call('HSET', acct, 'balance', int(balance))
  redis.call('XADD', events, '*', 'type', (r.action == 'DIRECT_DEBIT') and 'event_charge' or 'event_refund',
    'id', r.sid .. ':' .. r.rn, 'account', r.acct, 'session_id', r.sid, 'request_number', r.rn, 'rg', r.rg,
    'service', r.svc, 'units', int(r.units), 'cost', int(r.cost), 'amount', int(amount), 'balance', int(balance),
    'currency', currency, 'group', r.group, 'ledger', r.ledger, 'rate', r.rate, 'tariff', r.tariff,
    'plan', r.plan, 'calling', r.calling, 'called', r.called, 'start_s', r.start_s, 'time_ms', int(r.now))
  return store(answers, r, 'ok', {2001, r.cost, true, balance, available + amount})
end

for i, r in ipairs(requests) do
  results[i] = apply(r)
end
return cmsgpack.pack(results)

--[[ read.lua — read what rating needs for a batch of requests, in one round trip. Reads only.
Typed in Python: occ/store/shapes.py ReadRequest (each request of ARGV[1]) and ReadReply (each result).

KEYS    keys without repeats; a request names its keys by index
ARGV[1] msgpack array of requests {k = {account key index, session (or event-answer) key index if any},
        acct = account id, owned = true when k[2] is a session (it names its account),
        rn = request number, -1 for none, rgs = {rating group, ...}}
Returns msgpack array, one entry per request: {account, session, rgs, stored}
        account = {balance, credit_limit, reserved, status, plan, currency} or false when there is no such account
        session = {state, version, plan, dest, start_s, tariff} or false
        rgs     = {{used, cost, hold, service}, ...} in the order asked
        stored  = the stored answer ans:<rn>, or false
Invariants: a session started by another account reads as no session and no stored answer; beyond that,
none but session.lua's: what is read may change before the apply step, which re-checks the
account's plan and the session's version and answers "retry" when they moved.
]]

local requests = cmsgpack.unpack(ARGV[1])
local results = {}
for i, r in ipairs(requests) do
  local account = redis.call('HMGET', KEYS[r.k[1]], 'balance', 'credit_limit', 'reserved', 'status', 'plan',
    'currency')
  if not account[1] then account = false end
  local session, rgs, stored = false, {}, false
  local sess = r.k[2] and KEYS[r.k[2]]
  if sess and r.owned then
    local owner = redis.call('HGET', sess, 'account')
    if owner and owner ~= r.acct then sess = nil end -- another account's session: this request sees none
  end
  if sess then
    local f = redis.call('HMGET', sess, 'state', 'version', 'plan', 'dest', 'start_s', 'tariff')
    if f[1] then session = f end
    for j, rg in ipairs(r.rgs) do
      local p = 'rg:' .. rg .. ':'
      rgs[j] = redis.call('HMGET', sess, p .. 'used', p .. 'cost', p .. 'hold', p .. 'svc')
    end
    if r.rn >= 0 then
      local packed = redis.call('HGET', sess, 'ans:' .. r.rn)
      if packed then stored = cmsgpack.unpack(packed) end
    end
  end
  results[i] = {account, session, rgs, stored}
end
return cmsgpack.pack(results)

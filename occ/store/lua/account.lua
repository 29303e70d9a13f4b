--[[ account.lua — create or update an account's settings atomically, and tell settlement on the shard's stream.

KEYS[1] the account hash   KEYS[2] the shard's event stream   KEYS[3] the shard's account index (sorted set)
ARGV[1] "create" | "update";  ARGV[2] time, Unix ms;  ARGV[3..] field, value pairs (currency, credit_limit, status,
        plan, tax_profile, prepaid_tax_ppm, prepaid_tax_ledger, prepaid_tax_code: the three are always written
        together)
Returns "exists" (create of a known id), "missing" (update of an unknown id) or "ok".
Stream entry (docs/events.md, type "account"), appended on every create and on every update that names a field:
  type=account, change=created|updated, id=<account>, account, amount=0, balance, currency, time_ms, and the
  account's whole settings after the change: plan, credit_limit, status, prepaid_tax_ppm, prepaid_tax_ledger,
  prepaid_tax_code, created_ms ("" where an account made before these fields has none). tax_profile is not sent:
  billing keeps its own settings in SQL (occ bill account set), the online field is a label only.
Invariants: balance and reserved are set to 0 on create and never written here afterwards; a create never
overwrites an existing account; created_ms is set once, on create, to ARGV[2]; a change and its entry are written
together (nothing at all on "exists" or "missing"), so settlement knows an account, and its settings, from its
first entry on, before any money moves on it. Every account created here is a member of its shard's index (score 0,
so ZRANGEBYLEX pages through ids in byte order), added in the same call as the account.
]]

local SETTINGS = {'plan', 'credit_limit', 'status', 'prepaid_tax_ppm', 'prepaid_tax_ledger', 'prepaid_tax_code',
                  'created_ms'}

local exists = redis.call('EXISTS', KEYS[1]) == 1
local change = 'updated'
if ARGV[1] == 'create' then
  if exists then return 'exists' end
  redis.call('HSET', KEYS[1], 'balance', 0, 'reserved', 0, 'created_ms', ARGV[2])
  redis.call('ZADD', KEYS[3], 0, string.match(KEYS[1], ':acct:(.*)$'))
  change = 'created'
elseif not exists then
  return 'missing'
end
if #ARGV > 2 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 3))
elseif change == 'updated' then
  return 'ok'  -- nothing changed: no entry
end

local now = redis.call('HMGET', KEYS[1], 'balance', 'currency', unpack(SETTINGS))
local entry = {'type', 'account', 'change', change, 'id', string.match(KEYS[1], ':acct:(.*)$'),
               'account', string.match(KEYS[1], ':acct:(.*)$'), 'amount', '0', 'balance', now[1] or '0',
               'currency', now[2] or '', 'time_ms', ARGV[2]}
for i, name in ipairs(SETTINGS) do
  entry[#entry + 1] = name
  entry[#entry + 1] = now[i + 2] or ''
end
redis.call('XADD', KEYS[2], '*', unpack(entry))
return 'ok'

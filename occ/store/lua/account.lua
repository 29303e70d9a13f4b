--[[ account.lua — create or update an account's settings atomically.

KEYS[1] the account hash
ARGV[1] "create" | "update";  ARGV[2..] field, value pairs (currency, credit_limit, status, plan, tax_profile,
        prepaid_tax_ppm, prepaid_tax_ledger, prepaid_tax_code: the three are always written together)
Returns "exists" (create of a known id), "missing" (update of an unknown id) or "ok".
Invariants: balance and reserved are set to 0 on create and never written here afterwards; a create never
overwrites an existing account.
]]

local exists = redis.call('EXISTS', KEYS[1]) == 1
if ARGV[1] == 'create' then
  if exists then return 'exists' end
  redis.call('HSET', KEYS[1], 'balance', 0, 'reserved', 0)
elseif not exists then
  return 'missing'
end
if #ARGV > 1 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 2))
end
return 'ok'

--[[ lease.lua — take, keep or give up a lease: the right of one process among many to run a job (the sweeper, the
tariff watch) for a while.

KEYS    [1] the lease (``occ:lease:<job>``), a string holding its holder's id
ARGV    [1] the caller's id   [2] how long the lease lasts from now (ms); 0 gives it up
Returns 1 when the caller holds the lease after the call (taken now or kept: its time starts again), else 0.
Invariants
  - at most one holder at a time: the lease is taken only when nobody holds it (never set, given up, or expired
    because its holder stopped renewing it: it died), and only its holder renews or gives it up.
  - a holder that renews at least once per ttl keeps it; one that stops loses it after ttl at most, and the next
    caller takes it over.
]]

local holder = redis.call('GET', KEYS[1])
local ttl_ms = tonumber(ARGV[2])
if ttl_ms == 0 then
  if holder == ARGV[1] then redis.call('DEL', KEYS[1]) end
  return 0
end
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl_ms)
return 1

--[[ ack.lua — acknowledge a settled batch of one shard's stream, moving the entries it could not book aside.

KEYS    [1] the shard's event stream   [2] the shard's dead-letter stream
ARGV    [1] consumer group   [2] number of dead letters D
        then D triples: entry id, reason, the entry's fields as a msgpack map
        then the ids of the entries booked in SQL (already committed), space-separated in one argument
Returns the number of entries acknowledged.
Invariants
  - a dead letter is written and its entry acknowledged in one step, and only while the entry is still pending in
    the group: an entry is never both pending and dead-lettered, and never dead-lettered twice (by a re-delivery
    after a crash, or by two workers that both held it).
  - only entries this call names are acknowledged; a booked entry is acknowledged only after its SQL commit (the
    caller's order), so a crash before this call re-delivers it and the idempotent insert changes nothing.
  - a dead letter carries the original fields plus source_id (the entry id) and reason.
]]

local group = ARGV[1]
local dead = tonumber(ARGV[2])
local ids = {}
local i = 3
for _ = 1, dead do
  local id, reason, fields = ARGV[i], ARGV[i + 1], cmsgpack.unpack(ARGV[i + 2])
  -- Still pending in this group? (Another worker that claimed the entry may have acknowledged it already.)
  if #redis.call('XPENDING', KEYS[1], group, id, id, 1) > 0 then
    local flat = {'source_id', id, 'reason', reason}
    for k, v in pairs(fields) do
      if k ~= 'source_id' and k ~= 'reason' then
        flat[#flat + 1] = k
        flat[#flat + 1] = v
      end
    end
    redis.call('XADD', KEYS[2], '*', unpack(flat))
    ids[#ids + 1] = id
  end
  i = i + 3
end
for id in string.gmatch(ARGV[i] or '', '%S+') do
  ids[#ids + 1] = id
end
if #ids == 0 then return 0 end
local acked = 0
for j = 1, #ids, 1000 do
  acked = acked + redis.call('XACK', KEYS[1], group, unpack(ids, j, math.min(j + 999, #ids)))
end
return acked

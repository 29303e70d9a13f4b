--[[ read.lua — read a batch for one consumer from a group of shard streams, packed as one MessagePack reply.

KEYS    the shard streams to read (on Redis Cluster one stream per call: keys of a call share one slot)
ARGV    [1] consumer group   [2] consumer   [3] COUNT, most entries per stream
        [4 .. 3 + #KEYS] where to read each stream from: '>' for new entries, or an id to re-read this consumer's
        own pending entries after it (XREADGROUP semantics)
Returns a MessagePack array of [k, entry id, fields] per entry, k the 1-based index of its stream in KEYS and
        fields the entry's field → value map, in stream order within each stream; an empty string when there is
        nothing to read. The caller decodes it in one call (msgspec), not field by field.
Invariants
  - exactly what XREADGROUP GROUP ARGV[1] ARGV[2] COUNT ARGV[3] STREAMS KEYS[i] ARGV[3 + i] would deliver to the
    consumer, stream by stream: new entries become pending with it, nothing is acknowledged by reading.
  - a pending entry deleted from the stream (XREADGROUP then returns it without fields) has nothing left to book:
    it is acknowledged here and not returned.
]]

local group, consumer, count = ARGV[1], ARGV[2], ARGV[3]
local out = {}
for k = 1, #KEYS do
  local reply = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count, 'STREAMS', KEYS[k], ARGV[3 + k])
  if reply then
    for _, entry in ipairs(reply[1][2]) do
      local flat = entry[2]
      if flat then
        local fields = {}
        for j = 1, #flat, 2 do
          fields[flat[j]] = flat[j + 1]
        end
        out[#out + 1] = {k, entry[1], fields}
      else
        redis.call('XACK', KEYS[k], group, entry[1])
      end
    end
  end
end
if #out == 0 then return '' end
return cmsgpack.pack(out)

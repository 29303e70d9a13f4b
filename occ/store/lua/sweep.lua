--[[ sweep.lua — the sessions past their deadline in a group of shards, and how many sessions each shard holds.

KEYS    the deadline zsets of the shards to look at (``occ:{sNNN}:deadlines``); on Redis Cluster the keys of one
        call share one slot (one shard per call, since every shard has its own hash tag)
ARGV    [1] now (ms): a session whose deadline score is at or before it is expired
        [2] most expired sessions returned per shard
Returns {open, expired}: open[i] is the number of open sessions of KEYS[i] (ZCARD, before any clean-up below);
        expired is a flat list of triples: i, session id, the session's account, for the expired sessions of KEYS[i]
        in deadline order.
Invariants
  - reads only, apart from one clean-up: a deadline entry whose session hash is gone (it expired long ago) has
    nothing left to close and is removed here, so it is never returned again.
  - closing is not done here: the caller closes each returned session with session.lua, which re-checks the
    deadline inside its own atomic step, so a session updated since this call stays open.
  - the session hash of a shard is ``<shard prefix>sess:<id>``, the prefix being its deadline key without
    ``deadlines``: it shares the shard's hash tag, hence the slot of KEYS[i].
]]

local now, limit = ARGV[1], tonumber(ARGV[2])
local open, expired = {}, {}
for i = 1, #KEYS do
  local deadlines = KEYS[i]
  open[i] = redis.call('ZCARD', deadlines)
  if open[i] > 0 then
    local prefix = string.sub(deadlines, 1, -10)  -- 'occ:{s017}:deadlines' → 'occ:{s017}:'
    for _, session in ipairs(redis.call('ZRANGEBYSCORE', deadlines, '-inf', now, 'LIMIT', 0, limit)) do
      local account = redis.call('HGET', prefix .. 'sess:' .. session, 'account')
      if account then
        expired[#expired + 1] = i
        expired[#expired + 1] = session
        expired[#expired + 1] = account
      else
        redis.call('ZREM', deadlines, session)
      end
    end
  end
end
return {open, expired}

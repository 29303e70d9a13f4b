--[[ session.lua — apply a batch of session requests atomically: start, update, end, and close (sweeper / abort).
Typed in Python: occ/store/shapes.py SessionRequest, SessionItem, CloseRequest (ARGV[1]) and ScriptReply.

KEYS  every key the batch touches, without repeats; a request names its keys by index (field k):
        k[1] account hash   k[2] session hash   k[3] account's open-session set
        k[4] shard event stream   k[5] shard deadline zset
ARGV[1] msgpack array of requests, each a map:
        t      "start" | "update" | "end" | "close"
        sid    session id          rn   request number      acct  account id
        now    time, Unix ms       validity   validity time, s (start, update)
        plan   start: the tariff plan the request was rated with; it must still be the account's ("retry" otherwise)
        ver    update/end: the session version the rating read ("retry" when the session has moved on since)
        probe  start: the account was not read for rating; if the credit cannot cover all an item asks for, answer
               "short" and write nothing, so the engine reads the credit and searches for the exact grant
        cause  close: TIMEOUT (only when the deadline has passed) or ABORTED (an administrator: the holds are
               released at once and the session waits, ABORTING, for the switch's terminate, which is still
               charged; updates meanwhile get no grant; the sweeper closes it with cause ABORTED if none comes)
        reason close with ABORTED: the administrator's reason
        info   start: {calling, called, dest, tariff, start_s}
        items  array of quota items: {rg, svc, used, used_total, cost_total, requested, group, ledger, rate,
               bp = {{units_total, cost_total}, ...} largest first, fail = result code when rating failed, reason}
Returns msgpack array, one entry per request:
        {"ok", answer} | {"dup", stored answer} | {"retry"} | {"short"} | {"gone"} | {"exists"} | {"fail", answer}
        (a close answers {"ok", answer, cause}: ABORTING for an abort, else the cause the session closed with)
        answer = {code, balance, available, session_cost, items = {{rg, code, granted, used_total, cost, over,
                  final_unit, reason}, ...}}; an "ok" answer is stored (msgpack) as ans:<rn> and replayed on a repeat.
Invariants
  - account.reserved = sum of the holds of its open sessions; available = balance + credit_limit - reserved;
    a grant is the largest breakpoint whose cost available covers, so available never goes below zero by a grant.
  - a new hold for (session, rating group) replaces the previous one; holds are released when the session closes.
  - rg:<n>:cost = cost(rg:<n>:used), priced on cumulative usage; a request debits only the difference, and usage
    above the grant is debited too (counted in rg:<n>:over).
  - every balance change and every session close is XADDed to the shard's stream in this same call.
  - nothing is applied twice for one (session, request number); a failed start reserves nothing and its answer
    is stored (state FAILED, kept a day) so that a repeat gets the same failure.
  - a session belongs to the account that started it: a request naming another account neither sees nor
    changes it (its stored answers included).
  - amounts are integers below 2^53 (Lua numbers are doubles); they are written with %.0f, never in e-notation.
]]

local requests = cmsgpack.unpack(ARGV[1])
local results = {}

local function int(x) return string.format('%.0f', x) end
local function num(x) return tonumber(x) or 0 end

-- Release every hold of the session; returns the account's reserved amount after it. An abort keeps the granted
-- units outstanding: usage within them, reported on the terminate, is not overuse.
local function release_holds(sess, rgs, reserved, keep_granted)
  for rg in string.gmatch(rgs or '', '[^,]+') do
    local p = 'rg:' .. rg .. ':'
    reserved = reserved - num(redis.call('HGET', sess, p .. 'hold'))
    redis.call('HSET', sess, p .. 'hold', 0)
    if not keep_granted then redis.call('HSET', sess, p .. 'granted', 0) end
  end
  return reserved
end

-- Release every hold of the session, mark it closed and emit one close event per rating group.
local function close_session(sess, open, events, deadlines, r, s, balance, reserved, currency, cause)
  reserved = release_holds(sess, s.rgs, reserved)
  for rg in string.gmatch(s.rgs or '', '[^,]+') do
    local p = 'rg:' .. rg .. ':'
    local f = redis.call('HMGET', sess, p .. 'hold', p .. 'svc', p .. 'used', p .. 'cost', p .. 'over',
      p .. 'group', p .. 'ledger', p .. 'rate')
    redis.call('XADD', events, '*', 'type', 'session_close', 'id', r.sid .. ':close:' .. rg, 'account', r.acct,
      'session_id', r.sid, 'rg', rg, 'service', f[2], 'units', f[3], 'cost', f[4], 'over', f[5] or '0',
      'amount', '0', 'balance', int(balance), 'currency', currency, 'group', f[6] or '', 'ledger', f[7] or '',
      'rate', f[8] or '', 'tariff', s.tariff or '', 'plan', s.plan or '', 'calling', s.calling or '',
      'called', s.called or '', 'start_s', s.start_s or '', 'started_ms', s.started_ms or '', 'time_ms', int(r.now),
      'cause', cause)
  end
  redis.call('HSET', sess, 'state', 'CLOSED', 'closed_ms', int(r.now), 'cause', cause)
  redis.call('ZREM', deadlines, r.sid)
  redis.call('SREM', open, r.sid)
  redis.call('EXPIRE', sess, 86400) -- keep stored answers a day for late repeats
  return reserved
end

-- A start that grants nothing opens no session, but its answer is kept so that a repeat is answered alike.
local function fail_start(sess, r, answer)
  redis.call('DEL', sess)
  redis.call('HSET', sess, 'account', r.acct, 'state', 'FAILED', 'ans:' .. r.rn, cmsgpack.pack(answer))
  redis.call('EXPIRE', sess, 86400)
  return {'fail', answer}
end

local function apply(r)
  local acct, sess, open, events, deadlines = KEYS[r.k[1]], KEYS[r.k[2]], KEYS[r.k[3]], KEYS[r.k[4]], KEYS[r.k[5]]
  local owner = redis.call('HGET', sess, 'account')
  if owner and owner ~= r.acct then -- session ids are global: another account's session is not this one's
    if r.t == 'start' then return {'exists'} end
    return {'gone'}
  end
  if r.t ~= 'close' then
    local stored = redis.call('HGET', sess, 'ans:' .. r.rn)
    if stored then return {'dup', cmsgpack.unpack(stored)} end
  end
  local a = redis.call('HMGET', acct, 'balance', 'credit_limit', 'reserved', 'status', 'plan', 'currency')
  local state = redis.call('HGET', sess, 'state')
  if r.t == 'start' then
    if state then return {'exists'} end
    if not a[1] then return fail_start(sess, r, {5030, 0, 0, 0, {}}) end
  elseif (state ~= 'OPEN' and state ~= 'ABORTING') or not a[1] then
    if r.t == 'close' then redis.call('ZREM', deadlines, r.sid) end -- a stale deadline: nothing left to close
    return {'gone'}
  end
  local balance, limit, reserved, currency = num(a[1]), num(a[2]), num(a[3]), a[6]
  local available_before = balance + limit - reserved
  local active = a[4] == 'ACTIVE'
  if r.t == 'start' and a[5] ~= r.plan then return {'retry'} end -- updates keep the plan the session began on

  local s = {}
  if r.t == 'start' then
    if not active then return fail_start(sess, r, {4010, balance, available_before, 0, {}}) end
    s = {rgs = '', cost = 0, tariff = r.info.tariff, calling = r.info.calling, called = r.info.called,
         start_s = r.info.start_s, started_ms = int(r.now), plan = r.plan}
  else
    local f = redis.call('HMGET', sess, 'version', 'rgs', 'cost', 'tariff', 'calling', 'called', 'start_s',
      'started_ms', 'deadline_ms', 'abort_reason', 'plan')
    if r.t ~= 'close' and num(f[1]) ~= r.ver then return {'retry'} end
    s = {version = num(f[1]), rgs = f[2] or '', cost = num(f[3]), tariff = f[4], calling = f[5], called = f[6],
         start_s = f[7], started_ms = f[8], abort_reason = f[10] or '', plan = f[11]}
    if r.t == 'close' then
      if r.cause == 'TIMEOUT' and num(f[9]) > r.now then return {'gone'} end -- updated since: not lost
      if r.cause == 'ABORTED' then
        if state == 'ABORTING' then return {'gone'} end -- aborted already
        reserved = release_holds(sess, s.rgs, reserved, true)
        local deadline = r.now + 2000 * r.validity -- the switch's terminate may still report usage until then
        redis.call('HSET', sess, 'state', 'ABORTING', 'deadline_ms', int(deadline), 'abort_reason', r.reason or '')
        redis.call('ZADD', deadlines, int(deadline), r.sid)
        redis.call('HSET', acct, 'reserved', int(reserved))
        return {'ok', {2001, balance, balance + limit - reserved, s.cost, {}}, 'ABORTING'}
      end
      local cause = (state == 'ABORTING') and 'ABORTED' or r.cause
      reserved = close_session(sess, open, events, deadlines, r, s, balance, reserved, currency, cause)
      redis.call('HSET', acct, 'reserved', int(reserved))
      return {'ok', {2001, balance, balance + limit - reserved, s.cost, {}}, cause}
    end
  end

  local items, known, any_granted, any_requested, first_failure, short = {}, {}, false, false, nil, false
  for rg in string.gmatch(s.rgs, '[^,]+') do known[rg] = true end
  for i, it in ipairs(r.items) do
    local rg = tostring(it.rg)
    local p = 'rg:' .. rg .. ':'
    local old = {0, 0, 0, 0, 0}
    if known[rg] then
      old = redis.call('HMGET', sess, p .. 'used', p .. 'cost', p .. 'hold', p .. 'granted', p .. 'over', p .. 'svc')
      if old[6] ~= it.svc then return {'retry'} end -- a rating group keeps its service: let the engine refuse it
    end
    local used_total, cost_total, hold_old = num(old[1]), num(old[2]), num(old[3])
    local outstanding, over = num(old[4]), num(old[5])
    local code, granted, hold, final_unit, reason = 2001, 0, 0, 0, it.reason or ''
    local kept = 0 -- granted units still outstanding after this request
    if it.fail then
      code, hold, kept = it.fail, hold_old, outstanding -- rating failed: nothing priced, the previous grant stays
      if r.t ~= 'end' and it.requested > 0 then any_requested = true end -- asked and not granted
    else
      local delta = it.cost_total - cost_total
      if it.used > outstanding then over = over + it.used - outstanding end
      used_total, cost_total = it.used_total, it.cost_total
      balance = balance - delta
      reserved = reserved - hold_old
      s.cost = s.cost + delta
      if delta ~= 0 then
        redis.call('XADD', events, '*', 'type', 'session_charge', 'id', r.sid .. ':' .. r.rn .. ':' .. rg,
          'account', r.acct, 'session_id', r.sid, 'request_number', r.rn, 'rg', rg, 'service', it.svc,
          'units', int(it.used), 'units_total', int(used_total), 'cost', int(cost_total),
          'amount', int(-delta), 'balance', int(balance), 'currency', currency, 'group', it.group,
          'ledger', it.ledger, 'rate', it.rate, 'tariff', s.tariff or '', 'calling', s.calling or '',
          'called', s.called or '', 'start_s', s.start_s or '', 'time_ms', int(r.now))
      end
      if r.t ~= 'end' and it.requested > 0 then
        any_requested = true
        if state == 'ABORTING' then
          code, reason = 4010, 'the session was aborted' .. ((s.abort_reason ~= '') and (': ' .. s.abort_reason) or '')
        elseif not active then
          code, reason = 4010, 'the account is blocked'
        else
          local available = balance + limit - reserved
          for _, bp in ipairs(it.bp) do
            if bp[2] - cost_total <= available and bp[1] > used_total then
              granted, hold = bp[1] - used_total, bp[2] - cost_total
              break
            end
          end
          if granted == 0 then
            code = 4012
          elseif granted < it.requested then
            final_unit = 1 -- TERMINATE: this grant is all the credit covers
          end
          if granted < it.requested and r.probe then short = true end
        end
      end
      reserved = reserved + hold
      kept = granted
    end
    if code == 2001 and granted > 0 then any_granted = true end
    if code ~= 2001 and not first_failure then first_failure = code end
    if not known[rg] then
      known[rg] = true
      s.rgs = (s.rgs == '') and rg or (s.rgs .. ',' .. rg)
    end
    redis.call('HSET', sess, p .. 'svc', it.svc, p .. 'used', int(used_total), p .. 'cost', int(cost_total),
      p .. 'hold', int(hold), p .. 'granted', int(kept), p .. 'over', int(over), p .. 'group', it.group or '',
      p .. 'ledger', it.ledger or '', p .. 'rate', it.rate or '')
    items[i] = {it.rg, code, granted, used_total, cost_total, over, final_unit, reason}
  end

  local code = 2001
  if any_requested and not any_granted and first_failure then code = first_failure end
  if short then
    redis.call('DEL', sess) -- a start: nothing but these item fields was written
    return {'short'}
  end
  if r.t == 'start' and code ~= 2001 then
    return fail_start(sess, r, {code, balance, available_before, 0, items}) -- no usage yet: nothing to charge
  end
  if r.t == 'start' then
    redis.call('HSET', sess, 'account', r.acct, 'state', 'OPEN', 'plan', r.plan, 'dest', r.info.dest,
      'tariff', s.tariff, 'calling', s.calling, 'called', s.called, 'start_s', s.start_s,
      'started_ms', s.started_ms)
    redis.call('SADD', open, r.sid)
  end
  redis.call('HSET', sess, 'rgs', s.rgs, 'cost', int(s.cost), 'version', int((s.version or 0) + 1),
    'last_rn', r.rn)
  if r.t == 'end' then
    local cause = (state == 'ABORTING') and 'ABORTED' or 'TERMINATE'
    reserved = close_session(sess, open, events, deadlines, r, s, balance, reserved, currency, cause)
  elseif state ~= 'ABORTING' then -- an aborted session keeps the deadline its abort set
    local deadline = r.now + 2000 * r.validity
    redis.call('HSET', sess, 'deadline_ms', int(deadline))
    redis.call('ZADD', deadlines, int(deadline), r.sid)
  end
  redis.call('HSET', acct, 'balance', int(balance), 'reserved', int(reserved))
  local answer = {code, balance, balance + limit - reserved, s.cost, items}
  redis.call('HSET', sess, 'ans:' .. r.rn, cmsgpack.pack(answer))
  return {'ok', answer}
end

for i, r in ipairs(requests) do
  results[i] = apply(r)
end
return cmsgpack.pack(results)

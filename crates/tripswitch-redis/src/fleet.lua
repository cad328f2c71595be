-- The fleet's breaker state, updated atomically on the server.
--
-- KEYS[1]  the state hash of one breaker
-- KEYS[2]  the prefix of its count buckets (same hash tag, so one slot)
-- KEYS[3]  what this replica's counts of this breaker were at its last report
-- ARGV     1 action (report | acquire | result | force | check), 2 replica id,
--          3 probes (0: no half-open state), 4 lease ms, 5 base open ms,
--          6 max open ms, 7 backoff multiplier, 8 bucket ms, 9 buckets,
--          10 minimum calls, 11 failure rate (0: off), 12 quorum,
--          13 channel, 14 breaker name,
--          15 the epoch this replica last applied (0: none), 16 the state
--          it had (closed | open | half_open | half_open_mine), 17 the ms
--          left of that open period, 18 its backoff step,
--          19.. the action's arguments
--
-- Time is the server's (TIME), so replicas' clocks never need to agree.
-- Returns { state, epoch, remaining ms, lease (0 none, 1 mine, 2 another's),
--           backoff step, probes granted, repaired ('' or why),
--           the fleet's settings if they differ from this replica's ('' if not) }.

local key, counts, seen = KEYS[1], KEYS[2], KEYS[3]
local action, me = ARGV[1], ARGV[2]
local probes, lease = tonumber(ARGV[3]), tonumber(ARGV[4])
local base, max_open, multiplier = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local bucket_ms, buckets = tonumber(ARGV[8]), tonumber(ARGV[9])
local min_calls, rate, quorum = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
local channel, name = ARGV[13], ARGV[14]
local known_epoch, known_state = tonumber(ARGV[15]), ARGV[16]
local known_remaining, known_step = tonumber(ARGV[17]), tonumber(ARGV[18])

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local bucket = math.floor(now / bucket_ms)

local f = redis.call('HMGET', key, 'state', 'epoch', 'until', 'step', 'owner', 'lease_until', 'cfg')
local state = f[1] or 'closed'
local epoch = tonumber(f[2]) or 0
local open_until = tonumber(f[3]) or 0
local step = tonumber(f[4]) or 0
local owner = f[5] or ''
local lease_until = tonumber(f[6]) or 0
-- changed: a transition (published); dirty: only the lease moved.
local changed, dirty = false, false

-- The fleet's settings of this breaker (ARGV 3-12) are stored with its
-- state; the stored ones win: those of the replica that created the state.
-- A replica that runs others (a rollout) is told, with the stored ones.
local cfg = table.concat({ ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7],
  ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12] }, '|')
local differs = ''
local stored_cfg = f[7]
if stored_cfg and stored_cfg ~= cfg then
  local v = {}
  for x in string.gmatch(stored_cfg, '[^|]+') do v[#v + 1] = tonumber(x) end
  if #v == 10 then
    differs, cfg = stored_cfg, stored_cfg
    probes, lease, base, max_open, multiplier = v[1], v[2], v[3], v[4], v[5]
    bucket_ms, buckets, min_calls, rate, quorum = v[6], v[7], v[8], v[9], v[10]
    bucket = math.floor(now / bucket_ms)
  else
    dirty = true
  end
elseif not stored_cfg and action ~= 'force' then
  dirty = true
end
-- An operator's order carries no breaker's settings: it never stores any.
local keep_cfg = stored_cfg or action ~= 'force'

-- Why the stored state was replaced by what this replica knew ('' if not).
local repaired = ''

-- State that cannot be read is lost state (a stray write, another program).
local states = { closed = true, open = true, half_open = true }
-- (Redis gives a missing field to Lua as false.)
local stored = f[1] or f[2]
if stored and (not states[state] or tonumber(f[2]) == nil) then
  state, epoch, open_until, step, owner, lease_until = 'closed', 0, 0, 0, '', 0
  repaired, dirty = 'unreadable', true
end
-- A state older than one this replica applied was lost (FLUSHALL, DEL,
-- eviction, a restart from an older snapshot): put back what the fleet
-- held. Only the fleet's own state is ever known here, never a local trip.
if epoch < known_epoch then
  if repaired == '' then
    repaired = stored and 'stale' or 'missing'
  end
  epoch, step, owner, lease_until, open_until = known_epoch, known_step, '', 0, 0
  if known_state == 'open' then
    state, open_until = 'open', now + math.max(known_remaining, 0)
  elseif known_state == 'half_open' or known_state == 'half_open_mine' then
    state = 'half_open'
    if known_state == 'half_open_mine' then
      owner, lease_until = me, now + lease
    end
  else
    state, step = 'closed', 0
    -- An idle closed breaker's state expires after a day: putting it back
    -- (to keep epochs rising) is routine, not worth a word.
    if repaired == 'missing' then repaired = '' end
  end
  changed = true
end

local function clear_counts()
  for i = 0, buckets do
    local b = bucket - i
    redis.call('DEL', counts .. ':c:' .. b, counts .. ':f:' .. b, counts .. ':t:' .. b)
  end
end

local function open()
  local period = base * (multiplier ^ step)
  if period > max_open then period = max_open end
  state, epoch, open_until = 'open', epoch + 1, now + math.floor(period)
  step, owner, lease_until, changed = step + 1, '', 0, true
  clear_counts()
end

local function close()
  state, epoch, open_until, step = 'closed', epoch + 1, 0, 0
  owner, lease_until, changed = '', 0, true
  clear_counts()
end

-- Periods that ran out since the last update.
if state == 'open' and now >= open_until then
  if probes == 0 then
    close()
  else
    state, epoch, owner, lease_until, changed = 'half_open', epoch + 1, '', 0, true
  end
end
if state == 'half_open' and owner ~= '' and now >= lease_until then
  -- The lease holder went away (or is too slow): the probes are free again.
  owner, lease_until, dirty = '', 0, true
end

local granted = 0
if action == 'report' then
  -- Counts are this replica's running totals since it started (ARGV 24 is
  -- its incarnation): from the last acknowledged report to now. A report
  -- that already ran (its answer was lost, and it is sent again with newer
  -- totals) only adds what is new, so nothing is counted twice.
  local calls_from, calls_to = tonumber(ARGV[19]), tonumber(ARGV[20])
  local failures_from, failures_to = tonumber(ARGV[21]), tonumber(ARGV[22])
  local tripped, incarnation = ARGV[23] == '1', ARGV[24]
  if calls_to > calls_from or failures_to > failures_from then
    local last = redis.call('HMGET', seen, 'i', 'c', 'f')
    if last[1] == incarnation then
      calls_from = math.max(calls_from, tonumber(last[2]) or 0)
      failures_from = math.max(failures_from, tonumber(last[3]) or 0)
    end
    -- Kept for twice the window (at least a minute) from its creation: long
    -- enough for a retry of a report to find it, short enough that one
    -- small hash per breaker and replica does not pile up. (Not refreshed:
    -- every call a script makes costs Redis more than the command itself;
    -- a new one starts when it expires.)
    if redis.call('HSET', seen, 'i', incarnation, 'c', calls_to, 'f', failures_to) == 3 then
      redis.call('PEXPIRE', seen, math.max(bucket_ms * buckets * 2, 60000))
    end
  end
  local calls = math.max(calls_to - calls_from, 0)
  local failures = math.max(failures_to - failures_from, 0)
  local ttl = bucket_ms * (buckets + 1)
  local c, fk, tk = counts .. ':c:' .. bucket, counts .. ':f:' .. bucket, counts .. ':t:' .. bucket
  if calls > 0 then
    -- A bucket is only written during its own period: its TTL is set once,
    -- when the first report creates it.
    if redis.call('HINCRBY', c, 'calls', calls) == calls then
      redis.call('PEXPIRE', c, ttl)
    end
    if failures > 0 then
      redis.call('HINCRBY', c, 'failures', failures)
    end
  end
  if failures > 0 or tripped then
    redis.call('SADD', fk, me)
    redis.call('PEXPIRE', fk, ttl)
  end
  if tripped then
    redis.call('SADD', tk, me)
    redis.call('PEXPIRE', tk, ttl)
  end
  if state == 'closed' and (failures > 0 or tripped) then
    local total, failed, fkeys, tkeys = 0, 0, {}, {}
    for i = 0, buckets - 1 do
      local b = bucket - i
      local n = redis.call('HMGET', counts .. ':c:' .. b, 'calls', 'failures')
      total = total + (tonumber(n[1]) or 0)
      failed = failed + (tonumber(n[2]) or 0)
      fkeys[#fkeys + 1] = counts .. ':f:' .. b
      tkeys[#tkeys + 1] = counts .. ':t:' .. b
    end
    local failing = #redis.call('SUNION', unpack(fkeys))
    local tripping = #redis.call('SUNION', unpack(tkeys))
    local by_votes = tripping >= quorum
    local by_rate = rate > 0 and total >= min_calls and total > 0
      and failed / total >= rate and failing >= quorum
    if by_votes or by_rate then
      open()
    end
  end
elseif action == 'acquire' then
  if state == 'half_open' and (owner == '' or owner == me) then
    owner, lease_until, dirty, granted = me, now + lease, true, probes
  end
elseif action == 'force' then
  -- An operator's order: open for ARGV 20 ms from now, or close, fleet-wide.
  if ARGV[19] == 'open' then
    state, epoch, open_until = 'open', epoch + 1, now + tonumber(ARGV[20])
    owner, lease_until, changed = '', 0, true
  else
    close()
  end
elseif action == 'result' then
  local at, outcome = tonumber(ARGV[19]), ARGV[20]
  if state == 'half_open' and owner == me and epoch == at then
    if outcome == 'closed' then
      close()
    elseif outcome == 'opened' then
      open()
    else
      owner, lease_until, dirty = '', 0, true
    end
  end
end

-- ('check' is the strict start's probe: it writes nothing.)
if (changed or dirty) and action ~= 'check' then
  redis.call('HSET', key, 'state', state, 'epoch', epoch, 'until', open_until,
    'step', step, 'owner', owner, 'lease_until', lease_until)
  if keep_cfg then redis.call('HSET', key, 'cfg', cfg) end
  -- Unused breakers do not stay on the server for ever.
  redis.call('PEXPIRE', key, 86400000)
end

local remaining = 0
if state == 'open' then
  remaining = open_until - now
elseif state == 'half_open' and owner ~= '' then
  remaining = lease_until - now
end
local holder = 0
if owner == me then holder = 1 elseif owner ~= '' then holder = 2 end

if changed then
  redis.call('PUBLISH', channel, table.concat({ name, epoch, state, remaining,
    holder == 0 and '' or owner, step }, '\t'))
end

return { state, epoch, remaining, holder, step, granted, repaired, differs }

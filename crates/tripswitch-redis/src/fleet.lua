-- The fleet's breaker state, updated atomically on the server.
--
-- KEYS[1]  the breaker's hash, `<prefix>:{<name>}:state`: everything the fleet
--          keeps of one breaker is in it (one key: a report reads it once
--          and writes it once). Its fields:
--   state, epoch, until, step, owner, lease_until  the fleet state (`until`
--          and `lease_until` in server ms; `owner` the lease holder's id)
--   cfg    the fleet's settings of this breaker, ARGV 3's format
--   w<i>   the count window, a ring of `buckets` slots: slot i = bucket % buckets
--          holds `bucket|epoch|calls|failures` (bucket = floor(ms / bucket ms));
--          a slot of another bucket or epoch counts as empty, so a transition
--          (a new epoch) starts an empty window without deleting anything
--   v:<replica>  its votes: `epoch|last bucket with failures|last bucket it
--          tripped in` (0: none); it counts towards the quorum in its window
--   s:<replica>  what its reports added so far: `incarnation|calls|failures|g`
--          (running totals), g the memory period it was written in,
--          floor(ms / memory), memory = max(2 × window, 60 s)
--   hk     server ms of the next housekeeping
-- Housekeeping, by the first call after `hk` (once a memory): PEXPIRE the
-- hash (a day), delete the records written before period g - 1 (the
-- youngest of them is a memory old: a replica gone that long) and votes of
-- other epochs or out of the window; `hk` = now + memory. A state change
-- also sets the day's TTL.
--
-- ARGV     1 action (report | acquire | result | force | check), 2 replica id,
--          3 settings: probes|lease ms|open ms|max open ms|multiplier|
--            bucket ms|buckets|minimum calls|failure rate (0: off)|quorum,
--          4 bucket ms, 5 buckets (as in 3), 6 channel, 7 breaker name,
--          8 the epoch this replica last applied (0: none), 9 the state
--          it had (closed | open | half_open | half_open_mine), 10 the ms
--          left of that open period, 11 its backoff step,
--          12.. the action's arguments
--          (or ARGV 1 `count`: the short form, for several breakers at
--          once, described where it is run.)
--
-- Time is the server's (TIME), so replicas' clocks never need to agree.
-- Returns { state, epoch, remaining ms, lease (0 none, 1 mine, 2 another's),
--           backoff step, probes granted, repaired ('' or why),
--           the fleet's settings if they differ from this replica's ('' if not) },
-- or, to the short form, one answer per key: 1 (added), 0 (nothing
-- written: report in full) or that key's error.
--
-- Cost: the script call itself, every call it makes, every closure it
-- builds and every number it parses or formats costs Redis CPU, and that is
-- what bounds a fleet's size (see the crate docs). The short form,
-- successes to breakers known closed, is the common report: up to 32
-- breakers a call (their keys on one server; one on a Cluster), one TIME,
-- then an HMGET and an HSET each, no closure, a few numbers parsed and
-- formatted. A read of an open breaker with nothing to report is answered
-- right after the HMGET.

local tonumber, floor, fmt = tonumber, math.floor, string.format
local key = KEYS[1]

local clock = redis.call('TIME')
local now = clock[1] * 1000 + floor(clock[2] / 1000)

if ARGV[1] == 'count' then
  -- The short form, for successes reported to closed breakers, one or
  -- more (KEYS, all of one replica): ARGV 2 replica id, 3 bucket ms, 4
  -- buckets, then five for each key: its settings (as ARGV 3 of the full
  -- form), the epoch this replica applied, its running totals at its last
  -- acknowledged report and now (`incarnation|calls|failures|`), the calls
  -- between them (its failures did not change). For each, adds them and
  -- answers 1 if the state is closed at that epoch with these settings, no
  -- housekeeping is due, and this replica's record is that last report (or
  -- there is none); else writes nothing and answers 0: send a full report.
  -- An error is that key's answer alone. Answers an array, one per key.
  local find, match, pcall = string.find, string.match, redis.pcall
  local bucket_ms, buckets = tonumber(ARGV[3]), tonumber(ARGV[4])
  local bucket = floor(now / bucket_ms)
  local slot = fmt('w%d', bucket % buckets)
  local memory = bucket_ms * buckets * 2
  if memory < 60000 then memory = 60000 end
  local period = floor(now / memory)
  local mine = 's:' .. ARGV[2]
  local answers = {}
  for i = 1, #KEYS do
    local a = i * 5
    local f = pcall('HMGET', KEYS[i], 'state', 'epoch', 'cfg', slot, mine, 'hk')
    if f.err then
      answers[i] = f
    elseif f[1] ~= 'closed' or f[2] ~= ARGV[a + 1] or f[3] ~= ARGV[a]
        or (f[5] and find(f[5], ARGV[a + 2], 1, true) ~= 1)
        or not f[6] or now >= tonumber(f[6]) then
      answers[i] = 0
    else
      local stamp = fmt('%d|%s|', bucket, f[2])
      local calls, failures, s = ARGV[a + 4], '0', f[4]
      if s and find(s, stamp, 1, true) == 1 then
        local c, fl = match(s, '^(%d+)|(%d+)$', #stamp + 1)
        if c then calls, failures = calls + c, fl end
      end
      local w = pcall('HSET', KEYS[i], slot, fmt('%s%d|%s', stamp, calls, failures),
        mine, fmt('%s%d', ARGV[a + 3], period))
      if type(w) == 'table' and w.err then answers[i] = w else answers[i] = 1 end
    end
  end
  return answers
end

local action, me, cfg = ARGV[1], ARGV[2], ARGV[3]
local bucket_ms, buckets = tonumber(ARGV[4]), tonumber(ARGV[5])

-- The fields this call reads, for the window settings in force.
local bucket = floor(now / bucket_ms)
local slot = fmt('w%d', bucket % buckets)
local memory = bucket_ms * buckets * 2
if memory < 60000 then memory = 60000 end
local gen = floor(now / memory)
local mine = 's:' .. me

local f = redis.call('HMGET', key, 'state', 'epoch', 'cfg', slot, mine, 'until',
  'step', 'owner', 'lease_until', 'hk')

-- A read with nothing to report (an open breaker watched at every sync)
-- of a state this replica knows, with the same settings, that nothing
-- changes: answered without building anything.
if action == 'report' and ARGV[14] == '0' and ARGV[15] == '0' and ARGV[16] == '0'
    and f[2] == ARGV[8] and f[3] == cfg then
  if f[1] == 'closed' then
    return { 'closed', f[2], 0, 0, f[7] or 0, 0, '', '' }
  end
  local open_until = f[1] == 'open' and tonumber(f[6])
  if open_until and now < open_until then
    return { 'open', f[2], open_until - now, 0, f[7] or 0, 0, '', '' }
  end
end

local channel, name = ARGV[6], ARGV[7]
local known_epoch = tonumber(ARGV[8])
local state = f[1] or 'closed'
local epoch = tonumber(f[2]) or 0
local slot_value, record = f[4], f[5]
local open_until = tonumber(f[6]) or 0
local step = tonumber(f[7]) or 0
local owner = f[8] or ''
local lease_until = tonumber(f[9]) or 0
-- changed: a transition (published); dirty: the state fields must be written.
local changed, dirty = false, false
-- Fields to write at the end, in one HSET.
local out = {}

-- The fleet's settings of this breaker (ARGV 3) are stored with its
-- state; the stored ones win: those of the replica that created the state.
-- A replica that runs others (a rollout) is told, with the stored ones.
local function parse(text)
  local v = {}
  for x in string.gmatch(text, '[^|]+') do v[#v + 1] = tonumber(x) end
  if #v == 10 then return v end
  return nil
end
local differs, settings = '', nil
local stored_cfg = f[3]
if stored_cfg and stored_cfg ~= cfg then
  settings = parse(stored_cfg)
  if settings then
    differs, cfg = stored_cfg, stored_cfg
    if settings[6] ~= bucket_ms or settings[7] ~= buckets then
      bucket_ms, buckets = settings[6], settings[7]
      bucket = floor(now / bucket_ms)
      slot = fmt('w%d', bucket % buckets)
      memory = bucket_ms * buckets * 2
      if memory < 60000 then memory = 60000 end
      gen = floor(now / memory)
      slot_value = redis.call('HGET', key, slot)
    end
  else
    dirty = true
  end
elseif not stored_cfg and action ~= 'force' then
  dirty = true
end
-- probes, lease, base, max open, multiplier, _, _, min calls, rate, quorum
local function setting(i)
  if not settings then settings = parse(cfg) or {} end
  return settings[i]
end
-- An operator's order carries no breaker's settings: it never stores any.
local keep_cfg = stored_cfg or action ~= 'force'

-- Why the stored state was replaced by what this replica knew ('' if not).
local repaired = ''

-- State that cannot be read is lost state (a stray write, another program).
-- (Redis gives a missing field to Lua as false.)
local stored = f[1] or f[2]
if stored and ((state ~= 'closed' and state ~= 'open' and state ~= 'half_open')
    or tonumber(f[2]) == nil) then
  state, epoch, open_until, step, owner, lease_until = 'closed', 0, 0, 0, '', 0
  repaired, dirty = 'unreadable', true
end
-- A state older than one this replica applied was lost (FLUSHALL, DEL,
-- eviction, a restart from an older snapshot): put back what the fleet
-- held. Only the fleet's own state is ever known here, never a local trip.
if epoch < known_epoch then
  local known_state = ARGV[9]
  if repaired == '' then
    repaired = stored and 'stale' or 'missing'
  end
  epoch, step, owner, lease_until, open_until = known_epoch, tonumber(ARGV[11]), '', 0, 0
  if known_state == 'open' then
    state, open_until = 'open', now + math.max(tonumber(ARGV[10]), 0)
  elseif known_state == 'half_open' or known_state == 'half_open_mine' then
    state = 'half_open'
    if known_state == 'half_open_mine' then
      owner, lease_until = me, now + setting(2)
    end
  else
    state, step = 'closed', 0
    -- An idle closed breaker's state expires after a day: putting it back
    -- (to keep epochs rising) is routine, not worth a word.
    if repaired == 'missing' then repaired = '' end
  end
  changed = true
end

-- A transition starts a new epoch: the count window and the votes of the
-- old one no longer count (their slots are stamped with it).
local function open()
  local period = setting(3) * (setting(5) ^ step)
  if period > setting(4) then period = setting(4) end
  state, epoch, open_until = 'open', epoch + 1, now + floor(period)
  step, owner, lease_until, changed = step + 1, '', 0, true
end

local function close()
  state, epoch, open_until, step = 'closed', epoch + 1, 0, 0
  owner, lease_until, changed = '', 0, true
end

-- Periods that ran out since the last update.
if state == 'open' and now >= open_until then
  if setting(1) == 0 then
    close()
  else
    state, epoch, owner, lease_until, changed = 'half_open', epoch + 1, '', 0, true
  end
end
if state == 'half_open' and owner ~= '' and now >= lease_until then
  -- The lease holder went away (or is too slow): the probes are free again.
  owner, lease_until, dirty = '', 0, true
end

-- The whole hash, read at most once, with this call's writes over it.
local all
local function whole()
  if not all then
    all = {}
    local flat = redis.call('HGETALL', key)
    for i = 1, #flat, 2 do all[flat[i]] = flat[i + 1] end
  end
  for k, v in pairs(out) do all[k] = v end
  return all
end

local granted = 0
if action == 'report' then
  -- Counts are this replica's running totals since it started
  -- (`incarnation|calls|failures|`, ARGV 12 at the last acknowledged report,
  -- 13 now; 14 and 15 the calls and failures between them). A report that
  -- already ran (its answer was lost, and it is sent again with newer
  -- totals) only adds what is new, so nothing is counted twice.
  local from, to = ARGV[12], ARGV[13]
  local calls, failures = tonumber(ARGV[14]), tonumber(ARGV[15])
  local tripped = ARGV[16] == '1'
  if calls > 0 or failures > 0 then
    if record and string.find(record, from, 1, true) ~= 1 then
      -- Not right after the last acknowledged report: the one after it ran,
      -- unanswered (or the record is another incarnation's: then it says
      -- nothing).
      local inc, c1, f1 = string.match(to, '^(.*)|(%d+)|(%d+)|$')
      local i, c, fl = string.match(record, '^(.*)|(%d+)|(%d+)|%d+$')
      if i == inc then
        c1, f1 = tonumber(c1), tonumber(f1)
        calls = math.max(c1 - math.max(c1 - calls, tonumber(c)), 0)
        failures = math.max(f1 - math.max(f1 - failures, tonumber(fl)), 0)
      end
    end
    out[mine] = fmt('%s%d', to, gen)
  end
  if state == 'closed' and (calls > 0 or failures > 0) then
    local stamp = fmt('%d|%d|', bucket, epoch)
    local c, fl = calls, failures
    if slot_value and string.sub(slot_value, 1, #stamp) == stamp then
      local c0, f0 = string.match(slot_value, '(%d+)|(%d+)$')
      c, fl = c + c0, fl + f0
    end
    out[slot] = fmt('%s%d|%d', stamp, c, fl)
  end
  if state == 'closed' and (failures > 0 or tripped) then
    local h = whole()
    local since = bucket - buckets
    local vote = 'v:' .. me
    local fb, tb = 0, 0
    local mine_before = h[vote]
    if mine_before then
      local e, a, b = string.match(mine_before, '^(%d+)|(%d+)|(%d+)$')
      if tonumber(e) == epoch then fb, tb = tonumber(a), tonumber(b) end
    end
    fb = bucket
    if tripped then tb = bucket end
    out[vote] = fmt('%d|%d|%d', epoch, fb, tb)
    h[vote] = out[vote]
    local total, failed, failing, tripping = 0, 0, 0, 0
    for i = 0, buckets - 1 do
      local s = h['w' .. i]
      if s then
        local b, e, c, fl = string.match(s, '^(%d+)|(%d+)|(%d+)|(%d+)$')
        if tonumber(b) > since and tonumber(e) == epoch then
          total, failed = total + c, failed + fl
        end
      end
    end
    for k, v in pairs(h) do
      if string.sub(k, 1, 2) == 'v:' then
        local e, a, b = string.match(v, '^(%d+)|(%d+)|(%d+)$')
        if tonumber(e) == epoch then
          if tonumber(a) > since then failing = failing + 1 end
          if tonumber(b) > since then tripping = tripping + 1 end
        end
      end
    end
    local quorum, rate, min_calls = setting(10), setting(9), setting(8)
    local by_votes = tripping >= quorum
    local by_rate = rate > 0 and total >= min_calls and total > 0
      and failed / total >= rate and failing >= quorum
    if by_votes or by_rate then
      open()
    end
  end
elseif action == 'acquire' then
  if state == 'half_open' and (owner == '' or owner == me) then
    owner, lease_until, dirty, granted = me, now + setting(2), true, setting(1)
  end
elseif action == 'force' then
  -- An operator's order: open for ARGV 13 ms from now, or close, fleet-wide.
  if ARGV[12] == 'open' then
    state, epoch, open_until = 'open', epoch + 1, now + tonumber(ARGV[13])
    owner, lease_until, changed = '', 0, true
  else
    close()
  end
elseif action == 'result' then
  local at, outcome = tonumber(ARGV[12]), ARGV[13]
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
if action ~= 'check' then
  local expire = changed or dirty
  if changed or dirty then
    out.state, out.epoch, out['until'], out.step = state, epoch, open_until, step
    out.owner, out.lease_until = owner, lease_until
    if keep_cfg then out.cfg = cfg end
  end
  local hk = tonumber(f[10])
  if not hk or now >= hk then
    -- Housekeeping (see the header).
    local h = whole()
    local since, gone = bucket - buckets, {}
    for k, v in pairs(h) do
      if string.sub(k, 1, 2) == 's:' then
        local g = tonumber(string.match(v, '|(%d+)$'))
        if not g or g < gen - 1 then gone[#gone + 1] = k end
      elseif string.sub(k, 1, 2) == 'v:' then
        local e, a, b = string.match(v, '^(%d+)|(%d+)|(%d+)$')
        if tonumber(e) ~= epoch or (tonumber(a) <= since and tonumber(b) <= since) then
          gone[#gone + 1] = k
        end
      end
    end
    if #gone > 0 then redis.call('HDEL', key, unpack(gone)) end
    out.hk = now + memory
    expire = true
  end
  local args = {}
  for k, v in pairs(out) do
    args[#args + 1] = k
    args[#args + 1] = v
  end
  if #args > 0 then
    redis.call('HSET', key, unpack(args))
    -- Unused breakers do not stay on the server for ever.
    if expire then redis.call('PEXPIRE', key, 86400000) end
  end
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

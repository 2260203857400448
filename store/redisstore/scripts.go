package redisstore

import (
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/risk"
	"github.com/stepup-auth/stepup/store/keyspace"
)

// Each atomic operation of the store is one of these scripts. They run with
// Script.Run (EVALSHA, falling back to EVAL) and touch only the keys they are
// given, all in one hash slot. Every script that queues a job does it with
// keyspace.EnqueueLua's enqueue, so a job entry's shape is written once.

// userWriteScript is the one atomic write of a user's shard: an
// engine.Commit and, for an evaluation, the login's record, its grace login
// and its history learning (or, for a verification, the verified login's
// learning). Nothing is written when the commit's checks fail.
//
// KEYS[1] account hash, KEYS[2] shard queue stream, KEYS[3] tenant's audit
// stream of the shard, KEYS[4] tenant's user set of the shard, KEYS[5] the
// user's open challenges (a zset of ids by expiry), KEYS[6..] further keys
// referenced by index from the plan (challenges, erased keys, the login
// record, the meta hash).
// ARGV[1] JSON plan (writePlan in account.go), ARGV[2] the login record's
// JSON ("" without one: a string of its own, not escaped into the plan),
// ARGV[3..] the history fields learn_seen writes (planLearn.Set), if any.
// Returns {"OK" | "conflict" | "challenge:<status>", learned (0/1)}.
var userWriteScript = redis.NewScript(keyspace.EnqueueLua + commitLua + loginLua + historyLua + learnLua + `
local p = cjson.decode(ARGV[1])
local failed = check(p)
if failed then return {failed, 0} end
apply(p)
if p.login then keep_login(p.login) end
if p.grace ~= '' then count_grace(p.grace, p.grace_ttl) end
local learned = 0
if p.learn then learned = learn_seen(p.learn, p.user, 3) end
return {'OK', learned}
`)

// commitLua defines check(p), which returns why a commit plan may not be
// applied ("conflict", "challenge:<status>") or nil, and apply(p), which
// applies it. KEYS as userWriteScript's.
const commitLua = `
local function check(p)
  if p.ver >= 0 then
    local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
    if v ~= p.ver then return 'conflict' end
  end
  if p.erase then
    -- An erasure closes every open challenge, so it must name them all: one
    -- opened since the caller listed them is a conflict (list again).
    local closing = {}
    for _, id in ipairs(p.closing) do closing[id] = true end
    for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[5], p.now, '+inf')) do
      if not closing[id] then return 'conflict' end
    end
    -- Likewise for the user's kept login records.
    local gone = {}
    for _, id in ipairs(p.closing_logins) do gone[id] = true end
    for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[p.login_index], p.now, '+inf')) do
      if not gone[id] then return 'conflict' end
    end
  end
  if p.ch > 0 then
    local ck = KEYS[p.ch]
    local st = redis.call('HGET', ck, 'status')
    if not st then return 'challenge:missing' end
    if st ~= 'pending' then return 'challenge:' .. st end
    if tonumber(redis.call('HGET', ck, 'expires_at')) <= p.now then
      redis.call('HSET', ck, 'status', 'expired')
      return 'challenge:expired'
    end
  end
  return nil
end

local function apply(p)
  local acct = KEYS[1]
  if p.ch > 0 then redis.call('HSET', KEYS[p.ch], 'status', p.chst) end
  if p.erase then
    redis.call('SREM', KEYS[4], p.user)
    for _, i in ipairs(p.erasekeys) do redis.call('DEL', KEYS[i]) end
    for _, i in ipairs(p.erase_logins) do redis.call('DEL', KEYS[i]) end
    -- A job of one of his challenges that failed for good, or waits for a
    -- retry, holds his number or address (sealed) and a code: it goes
    -- with the challenge (which the loop over p.cancel below deletes).
    -- So does any other job addressed to him (a notice to his address),
    -- which carries his keyed hash (keyspace.FieldUser); a job without
    -- one (a manager's mail, an older version's job) stays.
    local chs = {}
    for _, c in ipairs(p.cancel) do chs[KEYS[c]] = true end
    local who = p.erase_user
    if type(who) ~= 'string' or who == '' then who = nil end
    if next(chs) or who then
      for _, m in ipairs(redis.call('XRANGE', KEYS[p.dead], '-', '+')) do
        local gone = false
        for j = 1, #m[2], 2 do
          local f, v = m[2][j], m[2][j+1]
          if (f == 'ch' and chs[v]) or (f == '` + keyspace.FieldUser + `' and v == who) then gone = true end
        end
        if gone then redis.call('XDEL', KEYS[p.dead], m[1]) end
      end
      for _, m in ipairs(redis.call('ZRANGE', KEYS[p.delay], 0, -1)) do
        local ok, j = pcall(cjson.decode, m)
        if ok and type(j) == 'table' and (chs[j.ch] or (who and j.user == who)) then redis.call('ZREM', KEYS[p.delay], m) end
      end
    end
    -- The audit log keeps only that an erasure happened.
    for _, m in ipairs(redis.call('XRANGE', KEYS[3], '-', '+')) do
      local ok, e = pcall(cjson.decode, m[2][2])
      if ok and e.user_id == p.user then redis.call('XDEL', KEYS[3], m[1]) end
    end
  end
  if p.doc ~= cjson.null and p.doc ~= nil then
    redis.call('HINCRBY', acct, 'v', 1)
    redis.call('HSET', acct, 'doc', p.doc)
    -- An account is kept for good once it has a document (count_grace).
    redis.call('PERSIST', acct)
    redis.call('SADD', KEYS[4], p.user)
  end
  if p.force == '1' then redis.call('HSET', acct, 'force', '1') end
  if p.force == '0' then redis.call('HDEL', acct, 'force') end
  if p.grace_reset then redis.call('HDEL', acct, 'grace') end
  for _, c in ipairs(p.cancel) do
    local ck = KEYS[c]
    if p.erase then
      -- An erased user's challenges go whole, not just cancelled: each
      -- names him and holds his destination for a day past its expiry. A
      -- job still queued for one finds it gone and is dropped.
      redis.call('DEL', ck)
    elseif redis.call('HGET', ck, 'status') == 'pending' then
      redis.call('HSET', ck, 'status', 'cancelled')
    end
  end
  for _, c in ipairs(p.new) do
    redis.call('HSET', KEYS[c.k], unpack(c.f))
    redis.call('PEXPIRE', KEYS[c.k], c.ttl)
    -- The user's open challenges, so an erasure can close them all.
    redis.call('ZADD', KEYS[5], p.now + c.ttl, c.id)
    redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', p.now)
    redis.call('PEXPIRE', KEYS[5], c.ttl)
  end
  for _, e in ipairs(p.ev) do
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', p.evmax, '*', 'e', e)
  end
  for _, j in ipairs(p.jobs) do
    enqueue(KEYS[2], j.kind, j.tenant, j.ch, j.data, '0', j.gates, j.send, j.user)
  end
end
`

// attemptScript counts one verification attempt of a challenge against the
// challenge's own cap and the user's attempt budget (a sliding window of
// attempts across all the user's challenges, so switching factors or
// starting more challenges never refills it).
//
// KEYS[1] challenge hash, KEYS[2] the user's attempt window (a zset of
// attempts by time, in the user's slot). ARGV[1] tenant, ARGV[2] now (unix
// ms), ARGV[3] user, ARGV[4] budget (0: none), ARGV[5] window ms.
// Returns {"nf"}, {"st", status}, {"cap", ms to wait} or {"ok", field,
// value, …}. An exhausted budget counts nothing.
var attemptScript = redis.NewScript(`
local t = redis.call('HGET', KEYS[1], 'tenant')
if not t or t ~= ARGV[1] or redis.call('HGET', KEYS[1], 'user') ~= ARGV[3] then return {'nf'} end
local st = redis.call('HGET', KEYS[1], 'status')
if st ~= 'pending' then return {'st', st} end
local now = tonumber(ARGV[2])
if tonumber(redis.call('HGET', KEYS[1], 'expires_at')) <= now then
  redis.call('HSET', KEYS[1], 'status', 'expired')
  return {'st', 'expired'}
end
local budget, window = tonumber(ARGV[4]), tonumber(ARGV[5])
if budget > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
  if redis.call('ZCARD', KEYS[2]) >= budget then
    local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return {'cap', tostring(math.max(tonumber(first[2]) + window - now, 1))}
  end
end
local a = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
if a > tonumber(redis.call('HGET', KEYS[1], 'max_attempts')) then
  redis.call('HSET', KEYS[1], 'status', 'locked')
  return {'st', 'locked'}
end
if budget > 0 then
  redis.call('ZADD', KEYS[2], now, KEYS[1] .. ':' .. a)
  redis.call('PEXPIRE', KEYS[2], window)
end
local r = {'ok'}
for _, v in ipairs(redis.call('HGETALL', KEYS[1])) do r[#r+1] = v end
return r
`)

// releaseAttemptScript gives a right code's attempt back to the user's
// budget, which counts wrong codes. KEYS[1] the user's attempt window,
// KEYS[2] the challenge hash (only its name is used); ARGV[1] attempt.
var releaseAttemptScript = redis.NewScript(`
return redis.call('ZREM', KEYS[1], KEYS[2] .. ':' .. ARGV[1])
`)

// sendScript gives a challenge a new code, records the send and queues the
// message, marked with its send number: a job of an earlier send still
// queued (waiting out a retry) carries a code that no longer works, and the
// delivery worker drops it.
//
// KEYS[1] challenge hash, KEYS[2] shard queue. ARGV: tenant, now ms,
// cooldown ms, max sends, kind, data, code hash. Returns {"ok"}, {"nf"}, {"st",
// status}, {"wait", ms} or {"max"}.
var sendScript = redis.NewScript(keyspace.EnqueueLua + `
local t = redis.call('HGET', KEYS[1], 'tenant')
if not t or t ~= ARGV[1] then return {'nf'} end
local now = tonumber(ARGV[2])
local st = redis.call('HGET', KEYS[1], 'status')
if st ~= 'pending' then return {'st', st} end
if tonumber(redis.call('HGET', KEYS[1], 'expires_at')) <= now then return {'st', 'expired'} end
local last = tonumber(redis.call('HGET', KEYS[1], 'last_sent_at') or '0')
if last > 0 and now - last < tonumber(ARGV[3]) then return {'wait', tostring(tonumber(ARGV[3]) - (now - last))} end
local sends = tonumber(redis.call('HGET', KEYS[1], 'sends') or '0')
if sends >= tonumber(ARGV[4]) then return {'max'} end
redis.call('HSET', KEYS[1], 'sends', sends + 1, 'last_sent_at', now, 'delivery', 'queued', 'delivery_error', '', 'code', ARGV[7])
enqueue(KEYS[2], ARGV[5], ARGV[1], KEYS[1], ARGV[6], '0', nil, tostring(sends + 1))
return {'ok'}
`)

// historyLua defines the user's history, which lives in the meta hash
// with the login count ("n"), the last place ("last") and the day of the
// last expiry refresh ("d"): per level, each value the user has had as the
// field "<level>:<value hash>" = "<count>:<last seen, unix s>", the number
// of values held ("len:<level>", for eviction) and of new values his
// logins brought ("nv:<level>", the missing mass's numerator, never below
// len: every value held came new once). One hash, so that a login reads it
// with one HMGET and learns with one HSET; "hv" marks it. A history of
// before, one hash per level ("h:<level>" beside the meta hash, in the
// same slot), is read in place (LoadLogin) and folded in at the first
// write (migrate, which raises nv to len where an older store had not
// counted it).
//
// old_history(meta, level) is the level's hash of before; migrate(meta,
// init) folds those in, and starts the history's version at init (when
// given) at the head of the hash, where it is quick to find; evict(meta,
// level) drops the level's least recently seen value.
var historyLua = `
local function old_history(meta, l) return string.sub(meta, 1, -2) .. 'h:' .. l end

local function migrate(meta, init)
  local set = {'hv', '2'}
  if init then set[3] = 'w'; set[4] = init end
  for _, l in ipairs({` + luaStrings(risk.LevelNames()) + `}) do
    local h = old_history(meta, l)
    local all = redis.call('HGETALL', h)
    if #all > 0 then
      for j = 1, #all, 2 do set[#set+1] = l .. ':' .. all[j]; set[#set+1] = all[j+1] end
      local held = #all / 2
      set[#set+1] = 'len:' .. l; set[#set+1] = tostring(held)
      local nv = tonumber(redis.call('HGET', meta, 'nv:' .. l) or '0')
      set[#set+1] = 'nv:' .. l; set[#set+1] = tostring(math.max(nv, held))
      redis.call('DEL', h)
    end
  end
  redis.call('HSET', meta, unpack(set))
end

local function evict(meta, l)
  local p = l .. ':'
  local all = redis.call('HGETALL', meta)
  local old, oldt = nil, nil
  for j = 1, #all, 2 do
    if string.sub(all[j], 1, #p) == p then
      local t = tonumber(string.match(all[j+1], ':(%d+)$'))
      if t and (not oldt or t < oldt) then old, oldt = all[j], t end
    end
  end
  if old then redis.call('HDEL', meta, old) end
end
`

// loginLua defines keep_login(l), which keeps a login's record for its
// verification (l.k its key's index, ARGV[2] its JSON, l.ttl ms, l.learned
// "0" or "1"), and count_grace(epoch, ttl), which counts one grace login
// of the epoch in the account hash KEYS[1] (a new epoch starts again at
// one). An account that is nothing but that count (a user who never set
// anything up: any id a login was evaluated for) expires ttl ms (the
// history's) after his last grace login, as his history does; one with a
// document is kept.
const loginLua = `
local function keep_login(l)
  redis.call('HSET', KEYS[l.k], 'rec', ARGV[2], 'learned', l.learned)
  redis.call('PEXPIRE', KEYS[l.k], l.ttl)
  -- The user's index of kept records, so an erasure can name them all.
  redis.call('ZADD', KEYS[l.ix], l.now + l.ttl, l.id)
  redis.call('ZREMRANGEBYSCORE', KEYS[l.ix], '-inf', l.now)
  redis.call('PEXPIRE', KEYS[l.ix], l.ttl)
end

local function count_grace(epoch, ttl)
  local g = redis.call('HGET', KEYS[1], 'grace')
  local used = 0
  if g then
    local e, u = string.match(g, '^(.*):(%d+)$')
    if e == epoch then used = tonumber(u) end
  end
  redis.call('HSET', KEYS[1], 'grace', epoch .. ':' .. (used + 1))
  if ttl and ttl > 0 and redis.call('HEXISTS', KEYS[1], 'doc') == 0 then
    redis.call('PEXPIRE', KEYS[1], ttl)
  end
end
`

// learnLua defines learn(l, user), which teaches a login to the user's
// bounded history (historyLua): a known value's count and last-seen grow;
// a new value counts in its level's nv and evicts the level's least
// recently seen one when the level holds l.size. l.once > 0 is the index
// of the login record whose "learned" flag makes the learning once per
// login (a record gone or reported as fraud teaches nothing); l.meta the
// meta hash's, l.hist {f, l} the values' fields and levels; l.ttl (ms),
// l.now (unix s), l.last (the last place, lastPlace). Returns 1 when it
// learned. A history alone does not make a user one of the tenant's user
// set (KEYS[4]), which lists users with an account: it expires, a set
// member would not, and a login can be evaluated for any id at all.
//
// Every write of a history raises its version "w" (unlearn's too); a
// history starts at l.init, a random number, so that one erased and made
// again does not repeat the versions of the one before.
//
// learn_seen(l, user, first) learns a login being evaluated from the
// counts its read saw (planLearn.seenFrom) without reading them again:
// when the history is still at the version read (l.seen), it writes the
// fields and values of ARGV[first..] (the values' counts and last-seen,
// the new-value counts of l.fresh's levels, n and last) and counts each
// of l.fresh's new values in its level's len, evicting as learn does. It
// refreshes the expiry every time rather than read the day of the last
// refresh ("d", which learn keeps): in a compact hash a field is found by
// a scan, and d lies past the values. Otherwise (another write came
// between, a history of before, no ARGV[first]) it learns as learn does.
const learnLua = `
local function learn(l, user)
  if l.once > 0 then
    local rk = KEYS[l.once]
    if redis.call('EXISTS', rk) == 0 or redis.call('HGET', rk, 'learned') == '1'
      or redis.call('HGET', rk, 'verdict') == 'fraud' then return 0 end
    redis.call('HSET', rk, 'learned', '1')
  end
  local size, ttl, now, meta = l.size, l.ttl, l.now, KEYS[l.meta]
  local f = {'d', 'n', 'hv'}
  for _, v in ipairs(l.hist) do f[#f+1] = v.f; f[#f+1] = 'nv:' .. v.l; f[#f+1] = 'len:' .. v.l end
  f[#f+1] = 'w'
  local m = redis.call('HMGET', meta, unpack(f))
  if not m[3] then
    migrate(meta, l.init)
    m = redis.call('HMGET', meta, unpack(f))
  end
  -- Expiry is refreshed once a day (and on a new key), not on every
  -- login: "180 days without a login" needs no finer clock.
  local day = tostring(math.floor(now / 86400))
  local set = {}
  for i, v in ipairs(l.hist) do
    local c = m[3*i+1]
    if c then
      c = tonumber(string.match(c, '^(%d+)')) + 1
    else
      c = 1
      set[#set+1] = 'nv:' .. v.l; set[#set+1] = tonumber(m[3*i+2] or '0') + 1
      local len = tonumber(m[3*i+3] or '0')
      if len >= size then evict(meta, v.l) else set[#set+1] = 'len:' .. v.l; set[#set+1] = len + 1 end
    end
    set[#set+1] = v.f; set[#set+1] = c .. ':' .. now
  end
  local n = tonumber(m[2] or '0') + 1
  set[#set+1] = 'n'; set[#set+1] = n
  set[#set+1] = 'last'; set[#set+1] = l.last
  set[#set+1] = 'd'; set[#set+1] = day
  set[#set+1] = 'hv'; set[#set+1] = '2'
  set[#set+1] = 'w'; set[#set+1] = (tonumber(m[#f] or '') or l.init) + 1
  redis.call('HSET', meta, unpack(set))
  if m[1] ~= day then redis.call('PEXPIRE', meta, ttl) end
  return 1
end

local function learn_seen(l, user, first)
  if #ARGV < first then return learn(l, user) end
  local meta = KEYS[l.meta]
  local m = redis.call('HMGET', meta, 'w', 'hv')
  if m[2] ~= '2' or tonumber(m[1] or '0') ~= l.seen then return learn(l, user) end
  for _, lv in ipairs(l.fresh) do
    if redis.call('HINCRBY', meta, 'len:' .. lv, 1) > l.size then
      evict(meta, lv)
      redis.call('HINCRBY', meta, 'len:' .. lv, -1)
    end
  end
  redis.call('HSET', meta, 'w', l.seen + 1, unpack(ARGV, first))
  redis.call('PEXPIRE', meta, l.ttl)
  return 1
end
`

// feedbackScript records a verdict on a login in the user's slot, with
// what it changes, atomically: nothing when the record is gone or already
// has a verdict, or when the commit's checks fail; else the commit (audit
// event, an account without the devices remembered from the login), the
// verdict, and for "legit" the learning of a login not learnt (learn's
// once) or for "fraud" the unlearning of a learnt one.
//
// KEYS as userWriteScript's. ARGV[1] JSON plan: a writePlan with rec (the
// record's index), verdict, and learn (legit) or unlearn (fraud).
// Returns {"OK" | "missing" | "verdict:<previous>" | "conflict" |
// "challenge:<status>", changed (0/1), the user's learnt logins left}.
var feedbackScript = redis.NewScript(keyspace.EnqueueLua + commitLua + historyLua + learnLua + unlearnLua + `
local p = cjson.decode(ARGV[1])
local rk = KEYS[p.rec]
if redis.call('EXISTS', rk) == 0 then return {'missing', 0, 0} end
local prev = redis.call('HGET', rk, 'verdict')
if prev then return {'verdict:' .. prev, 0, 0} end
local failed = check(p)
if failed then return {failed, 0, 0} end
apply(p)
redis.call('HSET', rk, 'verdict', p.verdict)
if p.verdict == 'legit' then return {'OK', learn(p.learn, p.user), 1} end
local changed, n = unlearn(p.unlearn)
return {'OK', changed, n}
`)

// unlearnLua defines unlearn(u), which takes a learnt login back out of
// the user's history (historyLua): each value's count drops by one, and
// the user's login count by one. A value no other login has (its count
// drops to zero) was new when the login taught it: it is removed and its
// level's nv (the missing mass's numerator) and len drop by one too. The
// user's last place goes when it is still the login's (the one before it
// is not kept: impossible travel then waits for the next learnt login
// rather than measure from the attacker's place). u.rec is the login
// record's index (its "learned" flag makes this once per login), u.meta
// the meta hash's, u.hist {f, l} the values' fields and levels, u.last
// the place the login left (u.last_json as written before). A value since
// evicted from a full history stays evicted (and its nv stays counted).
// Returns changed (0/1) and the logins left.
const unlearnLua = `
local function unlearn(u)
  local rk = KEYS[u.rec]
  if redis.call('HGET', rk, 'learned') ~= '1' then return 0, 0 end
  redis.call('HSET', rk, 'learned', '0')
  local meta = KEYS[u.meta]
  if redis.call('HEXISTS', meta, 'hv') == 0 then migrate(meta) end
  local f = {'n', 'last'}
  for _, v in ipairs(u.hist) do f[#f+1] = v.f; f[#f+1] = 'nv:' .. v.l; f[#f+1] = 'len:' .. v.l end
  local m = redis.call('HMGET', meta, unpack(f))
  local set, del = {}, {}
  local function down(field, v)
    local left = tonumber(v or '0') - 1
    if left <= 0 then del[#del+1] = field else set[#set+1] = field; set[#set+1] = left end
  end
  for i, v in ipairs(u.hist) do
    local c = m[3*i]
    if c then
      local n, t = string.match(c, '^(%d+):(%d+)$')
      n = tonumber(n) - 1
      if n <= 0 then
        del[#del+1] = v.f
        down('nv:' .. v.l, m[3*i+1])
        down('len:' .. v.l, m[3*i+2])
      else
        set[#set+1] = v.f; set[#set+1] = n .. ':' .. t
      end
    end
  end
  if u.last ~= '' and (m[2] == u.last or m[2] == u.last_json) then del[#del+1] = 'last' end
  redis.call('HINCRBY', meta, 'w', 1)
  local n = math.max(tonumber(m[1] or '0') - 1, 0)
  down('n', m[1])
  if #set > 0 then redis.call('HSET', meta, unpack(set)) end
  if #del > 0 then redis.call('HDEL', meta, unpack(del)) end
  return 1, n
end
`

// reportScript raises fraud reports: each named network's report weight
// decays to now and rises by one (entries decayed below 0.01 are dropped,
// so the hash holds only live reports).
//
// KEYS[1] fraud reports. ARGV[1] now (unix s), ARGV[2] half-life (s),
// ARGV[3..] the report fields.
var reportScript = redis.NewScript(`
local now, half = tonumber(ARGV[1]), tonumber(ARGV[2])
local function weight(v)
  if not v then return 0 end
  local w, t = string.match(v, '^([%d.e+-]+):(%d+)$')
  return tonumber(w) * math.pow(2, -math.max(now - tonumber(t), 0) / half)
end
local all = redis.call('HGETALL', KEYS[1])
for j = 1, #all, 2 do
  if weight(all[j+1]) < 0.01 then redis.call('HDEL', KEYS[1], all[j]) end
end
for i = 3, #ARGV do
  local w = weight(redis.call('HGET', KEYS[1], ARGV[i])) + 1
  redis.call('HSET', KEYS[1], ARGV[i], string.format('%.4f', w) .. ':' .. now)
end
redis.call('EXPIRE', KEYS[1], math.ceil(half * 8))
return 'OK'
`)

// statsLoadScript reads a tenant's statistics with the position of its
// statistics stream, atomically (see stats.go).
//
// KEYS[1] stats, KEYS[2] statistics stream, KEYS[3] hourly blocked tally,
// KEYS[4..] one count hash per level.
// Returns {stats HGETALL, the stream's last id or "", blocked HGETALL,
// one HGETALL per count hash}.
var statsLoadScript = redis.NewScript(`
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
local r = {redis.call('HGETALL', KEYS[1]), (last[1] and last[1][1]) or '', redis.call('HGETALL', KEYS[3])}
for i = 4, #KEYS do r[#r+1] = redis.call('HGETALL', KEYS[i]) end
return r
`)

// statsFlushScript applies one process's batch of increments to a
// tenant's statistics and appends what it changed, numbered, to the
// tenant's statistics stream (see stats.go): logins n and users u, each
// count hash's buckets (a counter leaving zero is one more value in use at
// its level, M, as "m:<level>" in stats; one reaching zero one fewer, and
// is removed), the hourly blocked tally (hours older than a day before the
// newest dropped) and the daily tallies (kept a month).
//
// KEYS[1] stats, KEYS[2] statistics stream, KEYS[3] hourly blocked tally,
// KEYS[4..] the count hashes and day tallies the batch names. ARGV[1] JSON
// {p: process, n, u, c: [{k, b: {bucket: increment}}], b: {hour:
// increment}, t: [{k, f: {field: increment}}], len: the stream's bound}.
// Returns the stream entry's JSON {p, s: its number, n, u, m: {level:
// change}, c: {level: {bucket: increment}}, b}.
var statsFlushScript = redis.NewScript(`
local a = cjson.decode(ARGV[1])
local e = {p = a.p, n = a.n, u = a.u, m = {}, c = {}, b = {}}
if a.n ~= 0 then redis.call('HINCRBY', KEYS[1], 'n', a.n) end
if a.u ~= 0 then redis.call('HINCRBY', KEYS[1], 'u', a.u) end
for _, c in ipairs(a.c) do
  local k = KEYS[c.k]
  local level = string.match(k, ':c:(.*)$')
  local dm, applied = 0, {}
  for b, inc in pairs(c.b) do
    local after = redis.call('HINCRBY', k, b, inc)
    local before = after - inc
    if after <= 0 then redis.call('HDEL', k, b) end
    if before <= 0 and after > 0 then dm = dm + 1 elseif before > 0 and after <= 0 then dm = dm - 1 end
    applied[b] = inc
  end
  if dm ~= 0 then
    redis.call('HINCRBY', KEYS[1], 'm:' .. level, dm)
    e.m[level] = dm
  end
  e.c[level] = applied
end
local newest
for h, inc in pairs(a.b) do
  redis.call('HINCRBY', KEYS[3], h, inc)
  e.b[h] = inc
  if not newest or tonumber(h) > newest then newest = tonumber(h) end
end
if newest then
  for _, f in ipairs(redis.call('HKEYS', KEYS[3])) do
    if tonumber(f) < newest - 24 then redis.call('HDEL', KEYS[3], f) end
  end
  redis.call('EXPIRE', KEYS[3], 90000)
end
for _, t in ipairs(a.t) do
  for f, inc in pairs(t.f) do redis.call('HINCRBY', KEYS[t.k], f, inc) end
  -- Kept a month for the console's overview (and the digest's yesterday).
  redis.call('EXPIRE', KEYS[t.k], 2764800)
end
e.s = redis.call('HINCRBY', KEYS[1], 'seq', 1)
-- An empty table may encode as [] rather than {}: leave it out.
for l, c in pairs(e.c) do if next(c) == nil then e.c[l] = nil end end
for _, f in ipairs({'m', 'c', 'b'}) do if next(e[f]) == nil then e[f] = nil end end
local doc = cjson.encode(e)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', a.len, '*', 'e', doc)
-- An idle tenant's stream goes; its numbering lives on in stats.
redis.call('EXPIRE', KEYS[2], 86400)
return doc
`)

// failureScript adds one event to a sliding window set and trims it.
//
// KEYS[1] window zset. ARGV[1] now ms, ARGV[2] member, ARGV[3] window ms.
var failureScript = redis.NewScript(`
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return redis.call('ZCARD', KEYS[1])
`)

// putKeyScript stores a key record under its hash and its id.
var putKeyScript = redis.NewScript(`
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
return 'OK'
`)

// deleteKeyScript revokes a key of a tenant. ARGV[1] id, ARGV[2] tenant.
// Returns the revoked key's hash, or 0 when the tenant has no such key.
var deleteKeyScript = redis.NewScript(`
local h = redis.call('HGET', KEYS[2], ARGV[1])
if not h then return 0 end
local rec = redis.call('HGET', KEYS[1], h)
if rec and cjson.decode(rec).tenant ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], h)
redis.call('HDEL', KEYS[2], ARGV[1])
return h
`)

// putPolicyScript replaces a tenant's policy if it is still the one the
// change was computed from, with its audit event and the mails it queues.
// KEYS[1] policy, KEYS[2] audit stream, KEYS[3] queue. ARGV[1] policy,
// ARGV[2] event, ARGV[3] max len, ARGV[4] tenant, ARGV[5] the previous
// policy ("" for none), then kind,data pairs. Returns 1, or 0 on conflict.
var putPolicyScript = redis.NewScript(keyspace.EnqueueLua + `
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[5] then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'e', ARGV[2])
for j = 6, #ARGV, 2 do
  enqueue(KEYS[3], ARGV[j], ARGV[4], '', ARGV[j+1], '0')
end
return 1
`)

// appendEventScript records a tenant-level audit event and queues its jobs
// in the tenant's home shard. KEYS[1] audit stream, KEYS[2] queue; ARGV[1]
// event, ARGV[2] max len, ARGV[3] tenant, then kind,data pairs.
var appendEventScript = redis.NewScript(keyspace.EnqueueLua + `
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[1])
for j = 4, #ARGV, 2 do
  enqueue(KEYS[2], ARGV[j], ARGV[3], '', ARGV[j+1], '0')
end
return 'OK'
`)

// eraseTenantEventsScript deletes a tenant-level stream's events that name
// an erased user (an alert's "user" detail), keeping user_erased.
// KEYS[1] the tenant's audit stream of its home shard; ARGV[1] the user.
var eraseTenantEventsScript = redis.NewScript(`
local n = 0
for _, m in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
  local ok, e = pcall(cjson.decode, m[2][2])
  if ok and e.type ~= 'user_erased' and (e.user_id == ARGV[1] or (type(e.details) == 'table' and e.details.user == ARGV[1])) then
    redis.call('XDEL', KEYS[1], m[1])
    n = n + 1
  end
end
return n
`)

// countScript adds to fields of a tenant's daily tally. KEYS[1] the day's
// hash; ARGV field, increment pairs.
var countScript = redis.NewScript(`
for i = 1, #ARGV, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i+1]) end
redis.call('EXPIRE', KEYS[1], 2764800)
return 'OK'
`)

// enqueueScript queues jobs in the tenant's home shard. KEYS[1] queue;
// ARGV[1] tenant, then kind,data pairs.
var enqueueScript = redis.NewScript(keyspace.EnqueueLua + `
for j = 2, #ARGV, 2 do
  enqueue(KEYS[1], ARGV[j], ARGV[1], '', ARGV[j+1], '0')
end
return 'OK'
`)

// limitScript is a GCRA rate limit (as go-redis/redis_rate's): `limit`
// units per period, a burst of `limit`, then one unit each period/limit.
// The key holds the theoretical arrival time (TAT, unix ms).
// KEYS[1] the limit's key, KEYS[2] (optional) where to record the
// verdict for a gated job ("1" or "0", kept ARGV[4] ms). ARGV[1] now ms,
// ARGV[2] period ms, ARGV[3] limit. Returns {1, 0} when a unit was taken,
// {0, ms to wait} when not.
var limitScript = redis.NewScript(`
local now, period, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local step = period / limit
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local next = tat + step
if next - now > period then
  if KEYS[2] then redis.call('SET', KEYS[2], '0', 'PX', ARGV[4]) end
  return {0, math.max(math.ceil(next - period - now), 1)}
end
redis.call('SET', KEYS[1], string.format('%d', math.ceil(next)), 'PX', math.ceil(next - now))
if KEYS[2] then redis.call('SET', KEYS[2], '1', 'PX', ARGV[4]) end
return {1, 0}
`)

// refundScript gives back the unit a limitScript call took. KEYS[1] the
// limit; ARGV as limitScript's first three.
var refundScript = redis.NewScript(`
local now, period, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') - period / limit
if tat <= now then
  redis.call('DEL', KEYS[1])
  return 0
end
redis.call('SET', KEYS[1], string.format('%d', math.ceil(tat)), 'PX', math.ceil(tat - now))
return 1
`)

var allScripts = []*redis.Script{limitScript, refundScript, countScript, enqueueScript, userWriteScript, attemptScript, releaseAttemptScript, sendScript,
	statsLoadScript, statsFlushScript, failureScript, putKeyScript, deleteKeyScript,
	putPolicyScript, appendEventScript, setDeliveryScript, linkProviderScript, feedbackScript, reportScript, eraseTenantEventsScript}

// setDeliveryScript records a delivery report on a challenge that still
// exists. KEYS[1] challenge; ARGV[1] status, ARGV[2] provider error code,
// ARGV[3] the provider's message id.
var setDeliveryScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local h = redis.call('HMGET', KEYS[1], 'delivery', 'provider_id')
-- A report on a message the challenge has since replaced (a resend, whose
-- id linkProviderScript wrote) says nothing of the current one.
if h[2] and h[2] ~= '' and h[2] ~= ARGV[3] then return 0 end
-- Reports arrive out of order (and a late or replayed one is still
-- signed): "sent" never overwrites "delivered" or "undelivered".
if ARGV[1] == 'sent' and (h[1] == 'delivered' or h[1] == 'undelivered') then return 0 end
redis.call('HSET', KEYS[1], 'delivery', ARGV[1], 'delivery_error', ARGV[2])
return 1
`)

// linkProviderScript names a provider's message id on its challenge, if
// it still exists, before the message's reports can find the challenge.
// KEYS[1] challenge; ARGV[1] the provider's message id.
var linkProviderScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'provider_id', ARGV[1])
return 1
`)

// putSessionScript stores a console session. KEYS[1] the session hash;
// ARGV[1] the session's data, ARGV[2] now ms, ARGV[3] idle ms, ARGV[4] the
// absolute deadline ms.
var putSessionScript = redis.NewScript(`
redis.call('HSET', KEYS[1], 'd', ARGV[1], 'seen', ARGV[2], 'abs', ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.min(tonumber(ARGV[3]), tonumber(ARGV[4]) - tonumber(ARGV[2])))
return 'OK'
`)

// touchSessionScript reads a console session and, when ARGV[3] is "1",
// extends its idle expiry; a session idle too long or past its absolute
// deadline is deleted. KEYS[1] the session hash; ARGV[1] now ms, ARGV[2]
// idle ms. Returns the session's data, or nil.
var touchSessionScript = redis.NewScript(`
local v = redis.call('HMGET', KEYS[1], 'd', 'seen', 'abs')
if not v[1] then return nil end
local now, idle = tonumber(ARGV[1]), tonumber(ARGV[2])
local abs = tonumber(v[3])
if now >= abs or now - tonumber(v[2]) >= idle then
  redis.call('DEL', KEYS[1])
  return nil
end
if ARGV[3] ~= '1' then return v[1] end
redis.call('HSET', KEYS[1], 'seen', ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.min(idle, abs - now))
return v[1]
`)

// createPromptScript stores a new prompt. KEYS[1] prompt hash; ARGV[1] ttl
// ms, ARGV[2..] field/value pairs.
var createPromptScript = redis.NewScript(`
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 'OK'
`)

// promptOpenLua defines usable(now, session): whether KEYS[1] is an open
// prompt of that browser session, unexpired at now.
const promptOpenLua = `
local function usable(now, session)
  local f = redis.call('HMGET', KEYS[1], 'status', 'session', 'expires_at')
  return f[1] == 'open' and f[2] == session and tonumber(f[3]) > tonumber(now)
end
`

// openPromptScript claims a new, unexpired prompt for a browser session.
// KEYS[1] prompt hash; ARGV[1] now ms, ARGV[2] session hash. Returns
// {claimed (0/1), the hash's fields} ({0} when there is no prompt).
var openPromptScript = redis.NewScript(`
local f = redis.call('HMGET', KEYS[1], 'status', 'expires_at')
if not f[1] then return {0} end
local claimed = 0
if f[1] == 'new' and tonumber(f[2]) > tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'status', 'open', 'session', ARGV[2])
  claimed = 1
end
return {claimed, redis.call('HGETALL', KEYS[1])}
`)

// releasePromptScript makes a prompt new again that the session opened
// and that asks no code yet (compare-and-release: a prompt another
// session holds, or one that asks a code, stays). KEYS[1] prompt hash;
// ARGV[1] session hash. Returns 1 when released, else 0.
var releasePromptScript = redis.NewScript(`
local f = redis.call('HMGET', KEYS[1], 'status', 'session', 'ch', 'verified')
if f[1] ~= 'open' or f[2] ~= ARGV[1] or (f[3] or '') ~= '' or f[4] == '1' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'new', 'session', '')
return 1
`)

// updatePromptScript sets fields of an open prompt of the session, if
// the condition holds. KEYS[1] prompt hash; ARGV[1] now ms, ARGV[2]
// session hash, ARGV[3] a field that must hold ARGV[4] ("" for no
// condition; a missing field holds ""), ARGV[5..] field/value pairs.
// Returns 'OK', 'closed' or 'stale' (the condition failed).
var updatePromptScript = redis.NewScript(promptOpenLua + `
if not usable(ARGV[1], ARGV[2]) then return 'closed' end
if ARGV[3] ~= '' and (redis.call('HGET', KEYS[1], ARGV[3]) or '') ~= ARGV[4] then return 'stale' end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
return 'OK'
`)

// finishPromptScript closes an open prompt of the session and, with a
// code, stores its exchange result: both at once, so a prompt yields one
// code. KEYS[1] prompt hash, KEYS[2] exchange key; ARGV[1] now ms, ARGV[2]
// session hash, ARGV[3] tenant, ARGV[4] result JSON ("" for none), ARGV[5]
// ttl ms. Returns 'OK' or 'closed'.
var finishPromptScript = redis.NewScript(promptOpenLua + `
if not usable(ARGV[1], ARGV[2]) then return 'closed' end
redis.call('HSET', KEYS[1], 'status', 'done', 'ceremony', '')
if ARGV[4] ~= '' then
  redis.call('SET', KEYS[2], ARGV[3] .. '\n' .. ARGV[4], 'PX', ARGV[5])
end
return 'OK'
`)

// takeExchangeScript returns and deletes an exchange result of a tenant
// (GETDEL, guarded by the tenant: another tenant's code is left alone).
// KEYS[1] exchange key; ARGV[1] tenant. Returns the result or false.
var takeExchangeScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return false end
local nl = string.find(v, '\n', 1, true)
if not nl or string.sub(v, 1, nl - 1) ~= ARGV[1] then return false end
redis.call('DEL', KEYS[1])
return string.sub(v, nl + 1)
`)

// luaStrings writes ss as the items of a Lua table constructor.
func luaStrings(ss []string) string {
	q := make([]string, len(ss))
	for i, v := range ss {
		q[i] = strconv.Quote(v)
	}
	return strings.Join(q, ", ")
}

package delivery

import (
	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/store/keyspace"
)

// Each script is one atomic step of a job's life. All keys a script
// touches are passed in KEYS and share the shard's hash tag. Scripts that
// add a job use keyspace.EnqueueLua's enqueue, the one place a job entry's
// shape is written.
//
// Every script that ends a job's stay in the stream starts with settleLua's
// settle, which acknowledges and deletes the entry and does nothing more
// when the job was already finished, so two workers that both processed a
// job (one of them after reclaiming it) record one outcome. A job is
// finished exactly when its entry is gone: each outcome deletes it in the
// same script as the XACK. Being pending to this consumer is not the test:
// after a failover the promoted replica may not have received the
// XREADGROUP that gave the job to its worker (replication is
// asynchronous), so the entry is in the stream but in nobody's pending
// list, and the group would hand it out again as new. A worker that sent
// it must still record it, or the code goes out twice.
const settleLua = `
local function settle(q, group, id)
  if redis.call('XACK', q, group, id) == 0 and #redis.call('XRANGE', q, id, id) == 0 then
    return false
  end
  redis.call('XDEL', q, id)
  return true
end
`

// enqueueScript adds a job and marks its challenge queued.
//
//	KEYS[1] stream, KEYS[2] challenge hash (optional)
//	ARGV kind, tenant, challenge key, data
//	returns the new entry id
var enqueueScript = redis.NewScript(keyspace.EnqueueLua + `
local id = enqueue(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], '0')
if KEYS[2] and redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[2], 'delivery', 'queued')
end
return id
`)

// promoteScript moves jobs whose retry is due from the delay set back into
// the stream. A member that cannot be decoded becomes a dead letter.
//
//	KEYS[1] delay set, KEYS[2] stream, KEYS[3] dead-letter stream
//	ARGV now (unix ms), limit, dead-letter max length
//	returns the number of members moved
var promoteScript = redis.NewScript(keyspace.EnqueueLua + `
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do
  local ok, j = pcall(cjson.decode, m)
  if ok and type(j) == 'table' and type(j.data) == 'string' then
    local ch = ''
    if type(j.ch) == 'string' then ch = j.ch end
    enqueue(KEYS[2], tostring(j.kind or ''), tostring(j.tenant or ''), ch, j.data, tostring(j.attempt or '0'), nil, tostring(j.send or ''), tostring(j.user or ''))
  else
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*',
      'kind', '', 'tenant', '', 'data', m, 'attempt', '0',
      'error', 'malformed delayed job', 'at', ARGV[1])
  end
  redis.call('ZREM', KEYS[1], m)
end
return #due
`)

// beginScript checks, right before a send, that the entry is still pending
// for this consumer, resets its idle time so no other worker claims it while
// it is being sent, and reads the challenge's status.
//
//	KEYS[1] stream, KEYS[2] challenge hash (optional)
//	ARGV group, consumer, id
//	returns false when the entry is not ours, else
//	{delivery count, challenge exists (0/1), status, expires_at, sends}
var beginScript = redis.NewScript(`
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 or p[1][2] ~= ARGV[2] then return false end
local n = p[1][4]
-- RETRYCOUNT keeps the delivery count: this claim is a heartbeat, not a delivery.
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'RETRYCOUNT', n, 'JUSTID')
if not KEYS[2] then return {n, 0, '', '', ''} end
if redis.call('EXISTS', KEYS[2]) == 0 then return {n, 0, '', '', ''} end
local h = redis.call('HMGET', KEYS[2], 'status', 'expires_at', 'sends')
return {n, 1, h[1] or '', h[2] or '', h[3] or ''}
`)

// currentLua defines current(ch, send): whether the challenge hash ch
// exists and the job of its send number send is its latest send (a job
// without one, queued by an older version, counts as the latest). A job
// of an earlier send records nothing on the challenge: its outcome is not
// the current code's.
const currentLua = `
local function current(ch, send)
  if redis.call('EXISTS', ch) == 0 then return false end
  local n = tonumber(send)
  return not n or tonumber(redis.call('HGET', ch, 'sends') or '0') <= n
end
`

// finishScript acknowledges a job that was sent or dropped and records the
// outcome on its challenge.
//
//	KEYS[1] stream, KEYS[2] challenge hash (optional)
//	ARGV group, id, outcome ('sent' or 'dropped'), provider id, send number
//	returns 1, or 0 when the job was already finished
var finishScript = redis.NewScript(settleLua + currentLua + `
if not settle(KEYS[1], ARGV[1], ARGV[2]) then return 0 end
if KEYS[2] and current(KEYS[2], ARGV[5]) then
  -- A provider's delivery report may have arrived first: "sent" never
  -- overwrites "delivered" or "undelivered".
  local cur = redis.call('HGET', KEYS[2], 'delivery')
  if not (ARGV[3] == 'sent' and (cur == 'delivered' or cur == 'undelivered')) then
    redis.call('HSET', KEYS[2], 'delivery', ARGV[3])
  end
  if ARGV[3] == 'sent' then
    redis.call('HDEL', KEYS[2], 'delivery_error')
    if ARGV[4] ~= '' then redis.call('HSET', KEYS[2], 'provider_id', ARGV[4]) end
  end
end
return 1
`)

// retryScript acknowledges a failed job and parks it in the delay set.
//
//	KEYS[1] stream, KEYS[2] delay set
//	ARGV group, id, due (unix ms), member (JSON of the job, attempt counted up)
//	returns 1, or 0 when the job was already finished
var retryScript = redis.NewScript(settleLua + `
if not settle(KEYS[1], ARGV[1], ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
return 1
`)

// deadScript acknowledges a job that will not be retried, appends it to the
// dead-letter stream and marks its challenge failed.
//
//	KEYS[1] stream, KEYS[2] dead-letter stream, KEYS[3] challenge hash (optional)
//	ARGV group, id, max length, kind, tenant, challenge key, data, attempt, error, at (unix ms), send number, user hash
//	returns 1, or 0 when the job was already finished
var deadScript = redis.NewScript(settleLua + currentLua + `
if not settle(KEYS[1], ARGV[1], ARGV[2]) then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*',
  'origin', ARGV[2], 'kind', ARGV[4], 'tenant', ARGV[5], 'ch', ARGV[6],
  'data', ARGV[7], 'attempt', ARGV[8], 'error', ARGV[9], 'at', ARGV[10], 'send', ARGV[11], 'user', ARGV[12])
if KEYS[3] and current(KEYS[3], ARGV[11]) then
  redis.call('HSET', KEYS[3], 'delivery', 'failed', 'delivery_error', ARGV[9])
end
return 1
`)

// requeueScript moves a dead letter back into the job stream with its
// attempts reset.
//
//	KEYS[1] dead-letter stream, KEYS[2] stream
//	ARGV dead letter id
//	returns the new entry id, or false when there is no such dead letter
var requeueScript = redis.NewScript(keyspace.EnqueueLua + `
local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #e == 0 then return false end
local v = {}
local raw = e[1][2]
for i = 1, #raw, 2 do v[raw[i]] = raw[i+1] end
local id = enqueue(KEYS[2], v.kind or '', v.tenant or '', v.ch or '', v.data or '', '0', nil, v.send or '', v.user or '')
redis.call('XDEL', KEYS[1], ARGV[1])
return id
`)

// reapScript removes consumers of the group that have no pending entries
// and have been idle for long: every process start adds a consumer name, and
// dead ones would pile up. Checking and deleting in one script guarantees
// that no pending entry is lost with a consumer.
//
//	KEYS[1] stream
//	ARGV group, minimum idle time (ms)
//	returns the number of consumers removed
var reapScript = redis.NewScript(`
local cs = redis.pcall('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if type(cs) ~= 'table' or cs.err then return 0 end
local n = 0
for _, c in ipairs(cs) do
  local name, pending, idle
  for i = 1, #c, 2 do
    if c[i] == 'name' then name = c[i+1]
    elseif c[i] == 'pending' then pending = c[i+1]
    elseif c[i] == 'idle' then idle = c[i+1] end
  end
  if name and pending == 0 and idle and idle > tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], name)
    n = n + 1
  end
end
return n
`)

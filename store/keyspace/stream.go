package keyspace

// Fields of a job stream entry.
const (
	FieldKind      = "kind"
	FieldTenant    = "tenant"
	FieldChallenge = "ch" // key of the challenge hash the job delivers a code for, or ""
	FieldData      = "data"
	FieldAttempt   = "attempt"
	// FieldGates, when present, lists (space-separated) the limit verdict
	// keys that must all say "1" before the job's code is sent.
	FieldGates = "gates"
	// FieldSend, when present, is which send of its challenge the job's
	// code is (the challenge's "sends" once it was queued). A job whose
	// challenge was sent again since carries a code that no longer works,
	// and is dropped. Absent (jobs queued by an older version): sent.
	FieldSend = "send"
	// FieldUser, when present, is the keyed hash of the user the job is
	// addressed to (the engine's per-user limit subject, never his id): an
	// erasure removes his dead-lettered and retrying jobs by it. Absent:
	// a tenant's job (a manager's mail) or one queued by an older version.
	FieldUser = "user"
)

// EnqueueLua defines the Lua function enqueue(stream, kind, tenant, ch,
// data, attempt[, gates[, send[, user]]]), which adds one job entry to a
// job stream and returns its id. Scripts that queue jobs start with it, so
// the entry's shape is written once; every argument must be a string (""
// for no challenge); gates, send and user may be nil or "" for none.
const EnqueueLua = `
local function enqueue(q, kind, tenant, ch, data, attempt, gates, send, user)
  local a = {'XADD', q, '*', '` + FieldKind + `', kind, '` + FieldTenant + `', tenant, '` +
	FieldChallenge + `', ch, '` + FieldData + `', data, '` + FieldAttempt + `', attempt}
  if gates and gates ~= '' then
    a[#a + 1] = '` + FieldGates + `'
    a[#a + 1] = gates
  end
  if send and send ~= '' then
    a[#a + 1] = '` + FieldSend + `'
    a[#a + 1] = send
  end
  if user and user ~= '' then
    a[#a + 1] = '` + FieldUser + `'
    a[#a + 1] = user
  end
  return redis.call(unpack(a))
end
`

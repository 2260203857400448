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
)

// EnqueueLua defines the Lua function enqueue(stream, kind, tenant, ch,
// data, attempt[, gates]), which adds one job entry to a job stream and
// returns its id. Scripts that queue jobs start with it, so the entry's
// shape is written once; every argument must be a string ("" for no
// challenge); gates may be nil or "" for none.
const EnqueueLua = `
local function enqueue(q, kind, tenant, ch, data, attempt, gates)
  if gates and gates ~= '' then
    return redis.call('XADD', q, '*', '` + FieldKind + `', kind, '` + FieldTenant + `', tenant, '` +
	FieldChallenge + `', ch, '` + FieldData + `', data, '` + FieldAttempt + `', attempt, '` + FieldGates + `', gates)
  end
  return redis.call('XADD', q, '*', '` + FieldKind + `', kind, '` + FieldTenant + `', tenant, '` +
	FieldChallenge + `', ch, '` + FieldData + `', data, '` + FieldAttempt + `', attempt)
end
`

// Package message is the vocabulary the engine, notify, delivery and the
// dispatcher share about what is queued and told: job kinds, delivery
// states, audit event types, actor kinds, reasons, audiences, and the
// payload structs of the queued jobs. Each vocabulary is a named type whose
// values are listed here once; the other packages import them rather than
// re-declaring strings.
//
// The values are stored (in Redis, in audit logs) and sent over HTTP: they
// and the JSON field names must never change.
//
// message is a leaf: it must not import any other stepup package, hold
// behaviour beyond listing and classifying its values, or know about Redis,
// HTTP or providers.
package message

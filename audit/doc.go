// Package audit is the gateway's audit trail: an event.Sink that keeps
// every security-relevant event of the engine (flows/event) in the
// storage engine, writes it to Caddy's log, and answers the admin API's
// queries (an event.Log).
//
// Storage layout (sessionstore's records, so Badger and PostgreSQL alike):
//
//	audit.rec.<hour>    one namespace per hour of event time; key: the
//	                    event's time inverted (16 hex digits, newest
//	                    first) and 8 random hex digits; value: the
//	                    record's JSON (event.Record)
//	audit.id.<identity> the identity index: the same keys, empty values
//	audit.count         records written per hour (key: the hour inverted),
//	                    which the trim sums instead of counting records
//	audit.lease         the trim lease, so one node of many trims
//
// Every record and index entry carries a TTL of max_age. A trim, run
// periodically by the node that holds the lease, deletes the oldest
// records while the hours' counts exceed max_records, and whole hours
// older than max_age (after max_age was lowered).
//
// Writes never wait for the storage: Record puts the event on a bounded
// queue that a background writer drains in batches. When the queue is
// full, Record waits a moment (QueueWait) and then drops the event: a
// slow or failing database must not turn into slow logins. Every drop is
// counted (Dropped), logged, and written as an audit.dropped record, so
// the gap shows in the trail; the Caddy log line of the event is written
// before it is queued, so the log keeps it either way.
//
// Gate denials and rate-limit blocks are aggregated, so a flood cannot
// fill the storage or push older records out: per gate and reason (per
// rule and client for rate limits), one record per window (a minute)
// with Count and the last client address.
//
// It imports flows/event and sessionstore, never the engine.
package audit

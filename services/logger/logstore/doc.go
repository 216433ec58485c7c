// Package logstore keeps the hubhooks event log in Redis: one entry per
// delivery with its attempts, and per-hub indexes for listing and filtering.
//
// Writes are idempotent and order-independent: an entry's summary always
// follows the record with the highest (attempt number, status rank), so
// duplicate or reordered records and many logger replicas writing at once
// all converge to the same entry. A new entry is created whole by one
// SET NX EX (a string, see entry.go); a record for an existing entry turns
// it into a hash and a Lua script decides its summary atomically.
//
// Retention: every key's TTL is set to Options.Retention on each write;
// index members older than Retention (by created_at) are dropped on write;
// each hub keeps at most Options.MaxEntriesPerHub entries (oldest trimmed).
// Index members whose entry is gone are skipped and removed when a list
// meets them.
package logstore

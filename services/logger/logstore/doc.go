// Package logstore keeps the hubhooks event log in Redis: one entry per
// delivery with every attempt of every run, and per-hub indexes for listing
// and filtering. docs/event-log.md describes what it keeps and how; it is
// the reference for this package's Go code and Lua scripts alike.
//
// Writes are idempotent and order-independent: an entry's summary follows
// the record with the highest order key (run, attempt number, status rank),
// so duplicate or reordered records and many logger replicas writing at
// once all converge to the same entry. A new entry is created whole by one
// SET NX EX (a string, entry.go); a record for an existing entry turns it
// into a hash and a Lua script decides its summary atomically.
//
// Bounds: each hub keeps its entries for Options.Retention after their
// created_at, at most Options.MaxEntriesPerHub of them and at most
// Options.MaxBytesPerHub bytes (oldest removed first). Purge empties a hub's
// log (or its entries before a time); DeleteHub also drops the late records
// of the deliveries under way when the hub was deleted.
package logstore

package logstore

// EntryFields decodes an entry string (for tests of the stored forms).
var EntryFields = entryFields

package logstore

// EntryFields decodes an entry string (for tests of the stored forms).
var EntryFields = entryFields

// BoundScript is the script that counts a batch's new bytes (for the test
// of a Redis that has only some of the scripts).
var BoundScript = boundScript

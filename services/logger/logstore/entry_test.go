package logstore

import (
	"bytes"
	"strconv"
	"testing"
)

func TestEntryString(t *testing.T) {
	x := "0123456789abcdef0123456789abcdef0123456789abcdef"
	v := entryString(x, 7, []byte("summary"), []byte("metadata"), "a:000001:3", []byte("attempt"))
	if got := string(v[8:56]); got != x {
		t.Fatalf("bytes 8-55 = %q, want x (the trim script reads them there)", got)
	}
	h, err := entryFields(v)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"x": x, "k": "7", "s": "summary", "m": "metadata", "a:000001:3": "attempt"}
	if len(h) != len(want) {
		t.Fatalf("fields %v, want %v", h, want)
	}
	for k, w := range want {
		if h[k] != w {
			t.Errorf("field %s = %q, want %q", k, h[k], w)
		}
	}
	// A pending record has no attempt field.
	if h, err := entryFields(entryString(x, 0, []byte("s"), []byte("m"), "", nil)); err != nil || len(h) != 4 {
		t.Errorf("pending entry: %v, %v; want 4 fields", h, err)
	}
	// The summary is found in every prefix that holds it, and only there.
	end := bytes.Index(v, []byte("summary")) + len("summary")
	for n := range len(v) + 1 {
		sum, found, err := entrySummary(v[:n])
		if n < 2 {
			if err == nil {
				t.Errorf("prefix of %d bytes: no error", n)
			}
			continue
		}
		if err != nil || found != (n >= end) || (found && string(sum) != "summary") {
			t.Errorf("prefix of %d bytes: %q, %v, %v", n, sum, found, err)
		}
		if h, err := entryFields(v[:n]); err == nil && n < len(v) && len(h) == len(want) {
			t.Errorf("entryFields of a %d-byte prefix (of %d) found every field", n, len(v))
		}
	}
	if _, err := entryFields([]byte("not an entry")); err == nil {
		t.Error("entryFields took a string without the format's mark")
	}
}

// FuzzEntryFields: decoding never panics, and what entryString writes
// decodes to the same fields.
func FuzzEntryFields(f *testing.F) {
	f.Add([]byte("L1\x01x\x00\x00\x00\x01a"), []byte("s"), []byte("m"), int64(5))
	f.Add([]byte("L1\xff"), []byte(""), []byte(""), int64(0))
	f.Fuzz(func(t *testing.T, raw, sum, meta []byte, ord int64) {
		_, _ = entryFields(raw)
		_, _, _ = entrySummary(raw)
		v := entryString(string(raw), ord, sum, meta, "a:000002:1", raw)
		h, err := entryFields(v)
		if err != nil {
			t.Fatal(err)
		}
		if h["x"] != string(raw) || h["k"] != strconv.FormatInt(ord, 10) || h["s"] != string(sum) || h["m"] != string(meta) || h["a:000002:1"] != string(raw) {
			t.Fatalf("fields %q", h)
		}
	})
}

package logstore

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hubhooks/hubhooks/pkg/redistest"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

var update = flag.Bool("update", false, "rewrite testdata/entry.golden and the example in docs/event-log.md")

// entryString is encodeEntry of messages encoded already (the golden
// entry and the fuzz test build entries of any bytes). afield is "" for a
// record without an attempt (pending).
func entryString(x, order string, sum []byte, mfield string, meta []byte, afield string, ablob []byte) []byte {
	n := len(entryMagic) + 6*4 + len(x) + len(order) + len(sum) + len(mfield) + len(meta) + 2
	if afield != "" {
		n += 5 + len(afield) + len(ablob)
	}
	b := make([]byte, 0, n)
	b = append(b, entryMagic...)
	b = appendField(b, fieldX, []byte(x))
	b = appendField(b, fieldOrder, []byte(order))
	b = appendField(b, fieldSum, sum)
	b = appendField(b, mfield, meta)
	if afield != "" {
		b = appendField(b, afield, ablob)
	}
	return b
}

// TestEncodeEntry: encodeEntry writes what entryString writes of the same
// messages encoded apart, and each message's bytes are its own.
func TestEncodeEntry(t *testing.T) {
	job := &deliveryv1.DeliveryJob{DeliveryId: "dlv_1", HubId: "hub1", Url: "https://example.com/h", Body: []byte(`{"id":"x"}`)}
	sum := &hubhooksv1.EventLog{Id: "dlv_1", HubId: "hub1", Status: "succeeded"}
	att := &hubhooksv1.Attempt{Number: 1, Status: "succeeded", Request: &hubhooksv1.HttpRequest{Url: job.Url, Headers: map[string]string{"a": "b"}}}
	x := goldenFields["x"]
	for _, afield := range []string{"a:000640e4a0d4a000:000001:3", ""} {
		var a sizedVT
		if afield != "" {
			a = att
		}
		whole, sb, mb, ab, err := encodeEntry(x, "k1", sum, "m:r", job, afield, a)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := sum.MarshalVT()
		m, _ := job.MarshalVT()
		var ablob []byte
		if afield != "" {
			ablob, _ = att.MarshalVT()
		}
		if want := entryString(x, "k1", s, "m:r", m, afield, ablob); !bytes.Equal(whole, want) {
			t.Fatalf("afield %q: encodeEntry wrote\n%q\nentryString\n%q", afield, whole, want)
		}
		if !bytes.Equal(sb, s) || !bytes.Equal(mb, m) || !bytes.Equal(ab, ablob) || cap(sb) != len(sb) {
			t.Fatalf("afield %q: message bytes %q %q %q", afield, sb, mb, ab)
		}
	}
}

// goldenFields are the fields of testdata/entry.golden: an entry of one
// record, as docs/event-log.md shows it.
var goldenFields = map[string]string{
	"x":                           "0ff9bf1b5f2b6000" + "1111111111111111" + "2222222222222222" + "3333333333333333" + "4444444444444444" + "-",
	"k":                           "000640e4a0d4a000:000001:3",
	"s":                           "<summary: hubhooks.v1.EventLog>",
	"m:000640e4a0d4a000":          "<job: hubhooks.delivery.v1.DeliveryJob, body included>",
	"a:000640e4a0d4a000:000001:3": "<attempt: hubhooks.v1.Attempt>",
}

func goldenString() []byte {
	f := goldenFields
	return entryString(f["x"], f["k"], []byte(f["s"]), "m:000640e4a0d4a000", []byte(f["m:000640e4a0d4a000"]),
		"a:000640e4a0d4a000:000001:3", []byte(f["a:000640e4a0d4a000:000001:3"]))
}

// docExample renders an entry string as docs/event-log.md shows it: the
// mark, then one frame a line (name length, name, value length, value;
// lengths in hex).
func docExample(v []byte) string {
	var b strings.Builder
	b.WriteString(strconv.Quote(string(v[:len(entryMagic)])) + "\n")
	_, _ = eachField(v, func(name string, val []byte) bool {
		fmt.Fprintf(&b, "%02x %q %08x %q\n", len(name), name, len(val), val)
		return true
	})
	return b.String()
}

// TestEntryFormatGolden holds the Go encoder and decoder, the Lua scripts
// and docs/event-log.md to one entry string: Go writes testdata/entry.golden
// byte for byte and reads it back; toHashScript turns it into a hash of the
// same fields; purgeScript finds its index members from its x (bytes 8 to
// 88); and the documentation shows it.
func TestEntryFormatGolden(t *testing.T) {
	golden := filepath.Join("testdata", "entry.golden")
	doc := filepath.Join("..", "..", "..", "docs", "event-log.md")
	v := goldenString()
	if *update {
		if err := os.WriteFile(golden, v, 0o644); err != nil {
			t.Fatal(err)
		}
		d, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		before, rest, ok1 := strings.Cut(string(d), "<!-- entry.golden -->\n```\n")
		_, after, ok2 := strings.Cut(rest, "```\n<!-- /entry.golden -->")
		if !ok1 || !ok2 {
			t.Fatalf("%s has no entry.golden markers", doc)
		}
		d = []byte(before + "<!-- entry.golden -->\n```\n" + docExample(v) + "```\n<!-- /entry.golden -->" + after)
		if err := os.WriteFile(doc, d, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test ./services/logger/logstore -run TestEntryFormatGolden -update writes it)", err)
	}
	if !bytes.Equal(v, want) {
		t.Fatalf("entryString wrote\n%q\nthe golden entry is\n%q", v, want)
	}
	d, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(d), "```\n"+docExample(want)+"```") {
		t.Fatalf("%s does not show testdata/entry.golden as\n%s(-update rewrites it)", doc, docExample(want))
	}

	// Go reads it.
	if got := string(want[xStart : xStart+xLen]); got != goldenFields["x"] {
		t.Fatalf("bytes %d to %d = %q, want x", xStart, xStart+xLen-1, got)
	}
	fields, err := entryFields(want)
	if err != nil {
		t.Fatal(err)
	}
	equalFields(t, "entryFields", fields, goldenFields)

	// Lua reads it: toHashScript makes the same fields, with the TTL.
	ctx := context.Background()
	rdb, prefix := redistest.New(t)
	base := prefix + "log:{hub1}:"
	key := base + "e:dlv_1"
	if err := rdb.Set(ctx, key, want, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := toHashScript.Run(ctx, rdb, []string{base + "i", key}).Int(); err != nil || n != 1 {
		t.Fatalf("toHashScript = %d, %v; want 1 entry turned", n, err)
	}
	h := rdb.HGetAll(ctx, key).Val()
	if h["z"] != strconv.Itoa(len(want)) {
		t.Errorf("toHashScript: z = %q, want the string's length %d", h["z"], len(want))
	}
	delete(h, "z")
	equalFields(t, "toHashScript", h, goldenFields)
	if ttl := rdb.TTL(ctx, key).Val(); ttl < 59*time.Minute {
		t.Errorf("TTL after toHashScript = %v, want the string's hour", ttl)
	}

	// Lua reads x from the string form too: purgeScript removes the entry
	// (the hub's oldest) and its members in the indexes x names.
	x := goldenFields["x"]
	own, newer := placeCreated(x)+"dlv_1", "0ff9bf1b5f2b5fff"+"dlv_2"
	indexes := []string{base + "i", base + "t:" + x[16:32], base + "u:" + x[32:48], base + "v:" + x[48:64], base + "d:" + x[64:80]}
	if err := rdb.Set(ctx, key, want, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	for _, ix := range indexes {
		rdb.ZAdd(ctx, ix, redis.Z{Member: own}, redis.Z{Member: newer})
	}
	if n, err := purgeScript.Run(ctx, rdb, []string{base + "i", base + "b", base + "gone"}, "-", 1, "", 60).Int(); err != nil || n != 1 {
		t.Fatalf("purgeScript = %d, %v; want 1 entry removed", n, err)
	}
	if rdb.Exists(ctx, key).Val() != 0 {
		t.Error("purgeScript left the entry")
	}
	for _, ix := range indexes {
		if got := rdb.ZRange(ctx, ix, 0, -1).Val(); len(got) != 1 || got[0] != newer {
			t.Errorf("%s holds %v after the purge, want only the other entry's member", ix, got)
		}
	}
}

func equalFields(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: fields %q, want %q", what, got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: field %s = %q, want %q", what, k, got[k], w)
		}
	}
}

func TestEntryHead(t *testing.T) {
	v := goldenString()
	end := bytes.Index(v, []byte(goldenFields["s"])) + len(goldenFields["s"])
	for n := range len(v) + 1 {
		h, found, err := entryHead(v[:n])
		if n < 2 {
			if err == nil {
				t.Errorf("prefix of %d bytes: no error", n)
			}
			continue
		}
		if err != nil || found != (n >= end) || (found && (string(h.sum) != goldenFields["s"] || h.x != goldenFields["x"] || h.made != -1)) {
			t.Errorf("prefix of %d bytes: %+v, %v, %v", n, h, found, err)
		}
		if f, err := entryFields(v[:n]); err == nil && n < len(v) && len(f) == len(goldenFields) {
			t.Errorf("entryFields of a %d-byte prefix (of %d) found every field", n, len(v))
		}
	}
	if _, err := entryFields([]byte("not an entry")); err == nil {
		t.Error("entryFields took a string without the format's mark")
	}
}

func TestAttemptField(t *testing.T) {
	run := runKey(time.UnixMicro(0x640e4a0d4a000))
	f := attemptField(orderKey(run, 12, rankCancelled))
	if f != "a:000640e4a0d4a000:000012:2" {
		t.Fatalf("attemptField = %q", f)
	}
	k, ok := parseAttemptField(f)
	if !ok || k.run != run || k.number != 12 || k.rank != rankCancelled || k.made() != 11 {
		t.Fatalf("parseAttemptField = %+v, %v", k, ok)
	}
	for _, bad := range []string{"a:", "m:000640e4a0d4a000", "a:000640e4a0d4a000:00001x:3", "a:000640e4a0d4a000:000001:9"} {
		if _, ok := parseAttemptField(bad); ok {
			t.Errorf("parseAttemptField(%q) accepted it", bad)
		}
	}
	// Later runs order after earlier ones, whatever their attempt numbers.
	if !(orderKey(runKey(time.UnixMicro(2)), 1, rankPending) > orderKey(runKey(time.UnixMicro(1)), 8, rankFinal)) {
		t.Error("a later run does not order after an earlier one")
	}
}

// FuzzEntryFields: decoding never panics, and what entryString writes
// decodes to the same fields.
func FuzzEntryFields(f *testing.F) {
	f.Add([]byte("L2\x01x\x00\x00\x00\x01a"), []byte("s"), []byte("m"), "k")
	f.Add([]byte("L2\xff"), []byte(""), []byte(""), "")
	f.Fuzz(func(t *testing.T, raw, sum, meta []byte, order string) {
		_, _ = entryFields(raw)
		_, _, _ = entryHead(raw)
		v := entryString(string(raw), order, sum, "m:r", meta, "a:000002:1", raw)
		h, err := entryFields(v)
		if err != nil {
			t.Fatal(err)
		}
		if h["x"] != string(raw) || h["k"] != order || h["s"] != string(sum) || h["m:r"] != string(meta) || h["a:000002:1"] != string(raw) {
			t.Fatalf("fields %q", h)
		}
	})
}

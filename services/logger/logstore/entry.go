package logstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// An entry is one delivery. Its fields (docs/event-log.md is the reference,
// shared with the Lua scripts; TestEntryFormatGolden holds both sides to it):
//
//	x                the entry's place: its created_at (inverted, 16 hex
//	                 digits, as in index members), the digests of its
//	                 event type, URL, webhook event id and domain event id
//	                 (16 hex digits each), then "t" for a test entry, else
//	                 "-": 81 characters
//	k                the order key of the record that decided s
//	s                the summary (hubhooks.v1.EventLog, protobuf)
//	m:<run>          the job of one run (DeliveryJob without its per-attempt
//	                 fields, body included)
//	a:<run>:<n>:<r>  one attempt (hubhooks.v1.Attempt) of a run: attempt
//	                 number n (6 digits), status rank r; its request body is
//	                 left out when it is the run's body
//	n                attempts made, all runs together (hash form only)
//
// A run is one expansion of the webhook event that produced the delivery,
// named by its job's created_at in microseconds (16 hex digits); a delivery
// normally has one run, and a second when its domain event was published
// again after hubhooks stopped remembering its id.
//
// An entry that has only ever had one record is a string, created whole by
// one SET NX EX: "L2" then one frame per field (name length, 1 byte; name;
// value length, 4 bytes big-endian; value), in the order x, k, s, m, then the
// attempt, so that x is always bytes 8 to 88 (the scripts read it with
// GETRANGE) and the summary is near the start (lists read a prefix). The
// first record written to an existing entry turns it into a hash of the same
// fields (toHashScript).
const entryMagic = "L2"

// Field names and sizes of the format.
const (
	fieldX     = "x"
	fieldOrder = "k"
	fieldSum   = "s"
	fieldMade  = "n"
	// xLen is the length of x: created_at, four digests, the test flag.
	xLen = 16 + 4*digestLen + 1
	// xStart is where x's value starts in an entry string: after the magic
	// and x's frame header (1 + 1 + 4 bytes).
	xStart = len(entryMagic) + 6
)

// summaryReadAhead is how many bytes of an entry string a list reads to find
// its place and summary: enough for any summary but one with very long ids
// or URL, which costs one more read.
const summaryReadAhead = 1024

// entryPlace builds x: created is the entry's inverted created_at, the
// digests name its filter indexes, test puts it in the test index.
func entryPlace(created, typeDigest, urlDigest, eventDigest, domainDigest string, test bool) string {
	flag := "-"
	if test {
		flag = "t"
	}
	return created + typeDigest + urlDigest + eventDigest + domainDigest + flag
}

// placeCreated is the inverted created_at in x.
func placeCreated(x string) string { return x[:16] }

// placeDigests returns the four index digests of x, in the order type, URL,
// webhook event, domain event.
func placeDigests(x string) [4]string {
	var d [4]string
	for i := range d {
		d[i] = x[16+i*digestLen : 16+(i+1)*digestLen]
	}
	return d
}

// runKey names a run by its job's created_at.
func runKey(created time.Time) string { return fmt.Sprintf("%016x", uint64(clampMicros(created))) }

// orderKey totally orders the records of one delivery: later runs first,
// then the attempt number, then the status rank. The record with the highest
// key decides the summary, whatever order records arrive in; string order is
// the order (the scripts compare keys as strings).
func orderKey(run string, attempt int32, rank int) string {
	return run + ":" + fmt.Sprintf("%06d", attempt) + ":" + strconv.Itoa(rank)
}

// attemptField and metaField name an attempt's and a run's fields.
func attemptField(order string) string { return "a:" + order }
func metaField(run string) string      { return "m:" + run }

// attemptKey is an attempt field's order key split up.
type attemptKey struct {
	run    string
	number int32
	rank   int
}

// parseAttemptField reads "a:<run>:<nnnnnn>:<r>".
func parseAttemptField(f string) (attemptKey, bool) {
	rest, ok := strings.CutPrefix(f, "a:")
	if !ok || len(rest) != 16+1+6+1+1 || rest[16] != ':' || rest[23] != ':' {
		return attemptKey{}, false
	}
	n, err := strconv.ParseInt(rest[17:23], 10, 32)
	if err != nil {
		return attemptKey{}, false
	}
	r := int(rest[24] - '0')
	if r < 0 || r > 3 {
		return attemptKey{}, false
	}
	return attemptKey{run: rest[:16], number: int32(n), rank: r}, true
}

// made is how many attempts a record of this key says were made in its
// run: a cancellation numbered N means attempt N was not made.
func (a attemptKey) made() int32 {
	switch a.rank {
	case rankPending:
		return 0
	case rankCancelled:
		return max(a.number-1, 0)
	}
	return a.number
}

// sizedVT is a message of generated vtprotobuf code.
type sizedVT interface {
	SizeVT() int
	MarshalToSizedBufferVT([]byte) (int, error)
}

// encodeEntry encodes an entry with one record: the messages sum, meta
// and (unless afield is "", a record without an attempt: pending) attempt,
// each encoded straight into its place in the one buffer of the entry, not
// in a buffer of its own first. It returns the entry and
// each message's bytes, which are slices of it.
func encodeEntry(x, order string, sum sizedVT, mfield string, meta sizedVT, afield string, attempt sizedVT) (whole, sumB, metaB, attemptB []byte, err error) {
	ss, ms, as := sum.SizeVT(), meta.SizeVT(), 0
	n := len(entryMagic) + 6*4 + len(x) + len(order) + ss + len(mfield) + ms + 2
	if afield != "" {
		as = attempt.SizeVT()
		n += 5 + len(afield) + as
	}
	b := make([]byte, 0, n)
	b = append(b, entryMagic...)
	b = appendField(b, fieldX, []byte(x))
	b = appendField(b, fieldOrder, []byte(order))
	if b, sumB, err = appendFieldVT(b, fieldSum, sum, ss); err != nil {
		return nil, nil, nil, nil, fmt.Errorf("encode entry summary: %w", err)
	}
	if b, metaB, err = appendFieldVT(b, mfield, meta, ms); err != nil {
		return nil, nil, nil, nil, fmt.Errorf("encode entry metadata: %w", err)
	}
	if afield != "" {
		if b, attemptB, err = appendFieldVT(b, afield, attempt, as); err != nil {
			return nil, nil, nil, nil, fmt.Errorf("encode attempt: %w", err)
		}
	}
	return b, sumB, metaB, attemptB, nil
}

// appendFieldVT is appendField of m (of size n, its SizeVT) encoded in
// place; val is the encoded message, a slice of the result.
func appendFieldVT(b []byte, name string, m sizedVT, n int) (out, val []byte, err error) {
	b = append(b, byte(len(name)))
	b = append(b, name...)
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	start := len(b)
	b = b[:start+n]
	if _, err := m.MarshalToSizedBufferVT(b[start:]); err != nil {
		return nil, nil, err
	}
	return b, b[start : start+n : start+n], nil
}

func appendField(b []byte, name string, val []byte) []byte {
	b = append(b, byte(len(name)))
	b = append(b, name...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(val)))
	return append(b, val...)
}

var errNotEntryString = errors.New("not an entry string")

// eachField calls fn with each field of the entry string v, in order, until
// fn returns false. complete is false when v ends inside a field (v is a
// prefix of the entry); the fields before it were passed to fn.
func eachField(v []byte, fn func(name string, val []byte) bool) (complete bool, err error) {
	if len(v) < len(entryMagic) || string(v[:len(entryMagic)]) != entryMagic {
		return false, errNotEntryString
	}
	for p := len(entryMagic); p < len(v); {
		nl := int(v[p])
		if p+1+nl+4 > len(v) {
			return false, nil
		}
		name := string(v[p+1 : p+1+nl])
		dl := int(binary.BigEndian.Uint32(v[p+1+nl:]))
		start := p + 1 + nl + 4
		if dl > len(v)-start {
			return false, nil
		}
		if !fn(name, v[start:start+dl]) {
			return true, nil
		}
		p = start + dl
	}
	return true, nil
}

// entryFields decodes a whole entry string into its fields, as HGETALL
// returns those of an entry hash.
func entryFields(v []byte) (map[string]string, error) {
	h := map[string]string{}
	complete, err := eachField(v, func(name string, val []byte) bool {
		h[name] = string(val)
		return true
	})
	if err == nil && !complete {
		err = errors.New("entry string cut short")
	}
	return h, err
}

// head is what a list reads of an entry: its place and its summary.
type head struct {
	x   string
	sum []byte
	// made is the n field (-1 when absent: the summary's count holds).
	made int32
}

// entryHead finds x and the summary in (a prefix of) an entry string. found
// is false when v ends before the summary does.
func entryHead(v []byte) (h head, found bool, err error) {
	h.made = -1
	_, err = eachField(v, func(name string, val []byte) bool {
		switch name {
		case fieldX:
			h.x = string(val)
		case fieldSum:
			h.sum, found = val, true
			return false
		}
		return true
	})
	if found && len(h.x) != xLen {
		return h, false, fmt.Errorf("entry string: x is %d bytes, want %d", len(h.x), xLen)
	}
	return h, found, err
}

package logstore

import (
	"encoding/binary"
	"errors"
	"strconv"
)

// An entry that has only ever had one record is stored as a string, created
// whole by one SET NX EX; the first record written to an existing entry turns
// it into a hash of the same fields (toHashScript). Both forms are read.
//
// The string is "L1" then one frame per field: the name's length (1 byte),
// the name, the value's length (4 bytes, big-endian), the value. Fields come
// in the order x, k, s, m, then the attempt, so that "x" is always bytes 8
// to 55 (the trim script reads it with GETRANGE) and the summary is near the
// start (lists read it with GETRANGE).
const entryMagic = "L1"

// summaryReadAhead is how many bytes of an entry string a list reads to find
// its summary: enough for any summary but one with very long ids or URL,
// which costs one more read.
const summaryReadAhead = 1024

// entryString encodes an entry with one record: index digests x, order key
// ord, summary sum, metadata meta and, unless afield is empty, the attempt
// ablob in field afield.
func entryString(x string, ord int64, sum, meta []byte, afield string, ablob []byte) []byte {
	var k [20]byte
	ks := strconv.AppendInt(k[:0], ord, 10)
	n := len(entryMagic) + 4*6 + len(x) + len(ks) + len(sum) + len(meta) // 4 frames of 1+1+4 bytes

	if afield != "" {
		n += 5 + len(afield) + len(ablob)
	}
	b := make([]byte, 0, n)
	b = append(b, entryMagic...)
	b = appendField(b, "x", []byte(x))
	b = appendField(b, "k", ks)
	b = appendField(b, "s", sum)
	b = appendField(b, "m", meta)
	if afield != "" {
		b = appendField(b, afield, ablob)
	}
	return b
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

// entrySummary finds the summary in (a prefix of) an entry string. found is
// false when v ends before the summary does.
func entrySummary(v []byte) (sum []byte, found bool, err error) {
	_, err = eachField(v, func(name string, val []byte) bool {
		if name == "s" {
			sum, found = val, true
			return false
		}
		return true
	})
	return sum, found, err
}

package logstore

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Key layout, under P = prefix + "log:" and with the hub id as a Redis
// Cluster hash tag so that every key of one hub lives in one slot (the Lua
// scripts touch an entry and its indexes together):
//
//	P{hub}:e:<id>        string entry with one record (entry.go: the fields
//	                     or     below, framed, in one value), turned into
//	                     hash   a hash of the same fields by a second record:
//	                            m = DeliveryJob (metadata + body, once),
//	                            s = EventLog summary, k = order key of the
//	                            record that decided s, a:<nnnnnn>:<r> = Attempt,
//	                            x = h(type) h(url) h(event), naming its filter
//	                            index keys (the trim script uses it)
//	P{hub}:i             zset   every entry of the hub
//	P{hub}:t:<h(type)>   zset   entries by event type
//	P{hub}:u:<h(url)>    zset   entries by URL
//	P{hub}:v:<h(event)>  zset   entries by webhook event id
//
// Index members all have score 0 and are <inverted created_at, 16 hex
// digits><entry id>, so lexicographic order is newest first, a member is a
// total-order cursor, and since/until are lexicographic ranges.
type keys struct{ base string }

func (k keys) hub(hub string) string            { return k.base + "{" + hub + "}:" }
func (k keys) entry(hub, id string) string      { return entryKey(k.hub(hub), id) }
func (k keys) all(hub string) string            { return k.hub(hub) + "i" }
func (k keys) byType(hub, typ string) string    { return k.index(hub, "t:", digest(typ)) }
func (k keys) byURL(hub, url string) string     { return k.index(hub, "u:", digest(url)) }
func (k keys) byEvent(hub, event string) string { return k.index(hub, "v:", digest(event)) }

func (k keys) index(hub, kind, dig string) string { return indexKey(k.hub(hub), kind, dig) }

// entryKey and indexKey name keys under a hub's prefix (keys.hub), for
// callers that build several keys of one hub; indexKey is the filter index
// of one kind ("t:", "u:" or "v:") and digest, the names the trim script
// also builds from an entry's "x" field.
func entryKey(hubPrefix, id string) string        { return hubPrefix + "e:" + id }
func indexKey(hubPrefix, kind, dig string) string { return hubPrefix + kind + dig }

// digest keeps filter values of any length and alphabet out of key names.
// Collisions only widen the candidate set: every filter is checked again on
// the entry itself.
func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

// digestCache remembers the digests of one batch's values.
type digestCache map[string]string

func (c digestCache) of(s string) string {
	d, ok := c[s]
	if !ok {
		d = digest(s)
		c[s] = d
	}
	return d
}

// maxMicros bounds timestamps in index members (year ~38000).
const maxMicros = int64(1) << 60

// inverted encodes t so that later times sort first.
func inverted(t time.Time) string {
	us := t.UnixMicro()
	if us < 0 {
		us = 0
	}
	if us > maxMicros {
		us = maxMicros
	}
	return fmt.Sprintf("%016x", uint64(maxMicros-us))
}

// member is an entry's index member.
func member(createdAt time.Time, id string) string { return inverted(createdAt) + id }

// memberID is the entry id of an index member.
func memberID(m string) string {
	if len(m) <= 16 {
		return ""
	}
	return m[16:]
}

func validMember(m string) bool {
	if len(m) <= 16 {
		return false
	}
	if _, err := strconv.ParseUint(m[:16], 16, 64); err != nil {
		return false
	}
	return ValidID(m[16:])
}

const tokenVersion = "c1:"

// encodeToken makes the opaque page token for a cursor member.
func encodeToken(m string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(tokenVersion + m))
}

// decodeToken returns the cursor member of a token, or ErrBadPageToken.
func decodeToken(tok string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return "", fmt.Errorf("%w: not a token this service issued", ErrBadPageToken)
	}
	m, ok := strings.CutPrefix(string(b), tokenVersion)
	if !ok || !validMember(m) {
		return "", fmt.Errorf("%w: not a token this service issued", ErrBadPageToken)
	}
	return m, nil
}

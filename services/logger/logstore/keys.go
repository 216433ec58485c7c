package logstore

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hubhooks/hubhooks/pkg/urlguard"
)

// Key layout (docs/event-log.md describes it with the entry format). Under
// P = prefix + "log:", every key of a hub carries the hub id as a Redis
// Cluster hash tag, so that one hub's keys live in one slot and a script
// may touch an entry and its indexes together:
//
//	P{hub}:e:<id>        an entry (entry.go), string or hash
//	P{hub}:i             zset   every entry of the hub
//	P{hub}:t:<h(type)>   zset   entries by webhook event type
//	P{hub}:u:<h(url)>    zset   entries by callback URL
//	P{hub}:v:<h(event)>  zset   entries by webhook event id
//	P{hub}:d:<h(domain)> zset   entries by domain event id
//	P{hub}:T             zset   test entries
//	P{hub}:b             string bytes the hub's entries hold
//	P{hub}:gone          string the hub was deleted at this time (inverted)
//	P{hub}:w             string a marker Write waits behind (WaitReplicas), 1 min
//
// Index members all have score 0 and are <inverted created_at, 16 hex
// digits><entry id>, so lexicographic order is newest first, a member is a
// total-order cursor, and since/until are lexicographic ranges.
type keys struct{ base string }

func (k keys) hub(hub string) string       { return k.base + "{" + hub + "}:" }
func (k keys) entry(hub, id string) string { return entryKey(k.hub(hub), id) }
func (k keys) all(hub string) string       { return k.hub(hub) + "i" }
func (k keys) tests(hub string) string     { return k.hub(hub) + "T" }
func (k keys) bytes(hub string) string     { return k.hub(hub) + "b" }
func (k keys) gone(hub string) string      { return k.hub(hub) + "gone" }
func (k keys) marker(hub string) string    { return k.hub(hub) + "w" }

// Filter index kinds, each keyed by the digest of one field of the entry.
const (
	kindType   = "t:"
	kindURL    = "u:"
	kindEvent  = "v:"
	kindDomain = "d:"
)

func (k keys) index(hub, kind, value string) string { return indexKey(k.hub(hub), kind, digest(value)) }

// entryKey and indexKey name keys under a hub's prefix (keys.hub), for
// callers that build several keys of one hub; the scripts build the same
// names from an entry's "x" field.
func entryKey(hubPrefix, id string) string        { return hubPrefix + "e:" + id }
func indexKey(hubPrefix, kind, dig string) string { return hubPrefix + kind + dig }

// digestLen is the length of a digest: 16 hex digits.
const digestLen = 16

// digest keeps filter values of any length and alphabet out of key names.
// Collisions only widen the candidate set: every filter is checked again on
// the entry itself.
func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:digestLen/2])
}

// digestCache remembers the digests of one batch's values, and of its
// callback URLs' index values (urlIndexValue) by raw URL, so each distinct
// URL is parsed once per batch.
type digestCache struct{ vals, urls map[string]string }

func newDigestCache() digestCache {
	return digestCache{vals: map[string]string{}, urls: map[string]string{}}
}

func (c digestCache) of(s string) string {
	d, ok := c.vals[s]
	if !ok {
		d = digest(s)
		c.vals[s] = d
	}
	return d
}

// ofURL is the digest of urlIndexValue(raw).
func (c digestCache) ofURL(raw string) string {
	d, ok := c.urls[raw]
	if !ok {
		d = c.of(urlIndexValue(raw))
		c.urls[raw] = d
	}
	return d
}

// maxMicros bounds timestamps in index members (year ~38000).
const maxMicros = int64(1) << 60

func clampMicros(t time.Time) int64 {
	return min(max(t.UnixMicro(), 0), maxMicros)
}

// inverted encodes t in 16 hex digits so that later times sort first.
func inverted(t time.Time) string {
	return fmt.Sprintf("%016x", uint64(maxMicros-clampMicros(t)))
}

// fromInverted decodes inverted; false when s is not 16 hex digits.
func fromInverted(s string) (time.Time, bool) {
	if len(s) != 16 {
		return time.Time{}, false
	}
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil || v > uint64(maxMicros) {
		return time.Time{}, false
	}
	return time.UnixMicro(maxMicros - int64(v)).UTC(), true
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
	if _, ok := fromInverted(m[:16]); !ok {
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

// urlIndexValue is the form of a callback URL that the URL index and the
// url filter compare: urlguard.Normalize's, so that the spellings of one
// endpoint find the same entries (a URL that does not parse is compared as
// it is).
func urlIndexValue(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return urlguard.Normalize(u)
}

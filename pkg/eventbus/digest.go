package eventbus

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
)

// configDigestKey is the metadata key under which Ensure and EnsureConsumer
// keep a digest of the config they applied. A replica that starts against
// a stream or consumer already carrying its config's digest sends no
// update, so replicas starting together propose nothing to the JetStream
// meta leader (on a cluster, one of two identical proposals made at once
// can go unanswered, see ensureAttempt).
const configDigestKey = "hubhooks.config"

// withDigest returns a copy of md with the digest of cfg (taken with md
// as it is) under configDigestKey, and that digest.
func withDigest(md map[string]string, cfg any) (map[string]string, string) {
	b, err := json.Marshal(cfg)
	if err != nil { // the jetstream configs always marshal
		panic("eventbus: marshal config: " + err.Error())
	}
	sum := sha256.Sum256(b)
	d := hex.EncodeToString(sum[:12])
	out := maps.Clone(md)
	if out == nil {
		out = map[string]string{}
	}
	out[configDigestKey] = d
	return out, d
}

package daemon

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// ScriptMode says how QueueScript sends a Lua script: by digest or by text.
//
// A pipeline sends its scripts by digest (EVALSHA), which spares Redis
// their text (and the parsing of it) every time. A Redis that lacks a
// script (restarted, failed over, flushed) refuses it with NOSCRIPT
// (IsNoScript) before the script does anything; the caller then sends
// the pipeline again by text (EVAL), which also caches the script. Writes
// that are not scripts may then run twice, so each caller says why that
// is safe.
type ScriptMode int

const (
	ScriptByDigest ScriptMode = iota // EVALSHA
	ScriptByText                     // EVAL
)

// QueueScript queues sc with keys and args on pipe, by digest or by text.
func QueueScript(ctx context.Context, pipe redis.Pipeliner, sc *redis.Script, mode ScriptMode, keys []string, args ...any) *redis.Cmd {
	if mode == ScriptByDigest {
		return sc.EvalSha(ctx, pipe, keys, args...)
	}
	return sc.Eval(ctx, pipe, keys, args...)
}

// IsNoScript reports whether Redis refused a script by digest because it
// does not have it.
func IsNoScript(err error) bool { return redis.HasErrorPrefix(err, "NOSCRIPT") }

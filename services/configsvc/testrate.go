package configsvc

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Test events are bounded per hub: each POSTs to a URL of the caller's
// choosing among the hub's and writes an event log entry, so an unbounded
// loop of them is a flood at the receiver and in the log. The bound holds
// across every configsvc replica: one counter per hub and minute in Redis.

// takeTestEventScript counts one test event in KEYS[1], a counter that
// expires after ARGV[1] seconds, and returns the count.
var takeTestEventScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
`)

// TakeTestEvent counts a test event of hubID in the current minute and
// refuses it with ErrRateLimited when the hub has sent perMinute already.
func (s *Store) TakeTestEvent(ctx context.Context, hubID string, perMinute int) error {
	now := s.now()
	minute := now.Unix() / 60
	key := fmt.Sprintf("%stestrate:%s:%d", s.prefix, hubID, minute)
	n, err := takeTestEventScript.Run(ctx, s.rdb, []string{key}, 120).Int()
	if err != nil {
		return unavailable("count test events", err)
	}
	if n > perMinute {
		wait := time.Duration(60-now.Unix()%60) * time.Second
		return fmt.Errorf("%w: hub %s has sent %d test events this minute, the most allowed; try again in %s", ErrRateLimited, hubID, perMinute, wait)
	}
	return nil
}

package auth

import (
	"context"
	"errors"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Open streams. Every stream is registered while it is open:
//   - a hub token has at most MaxStreamsPerToken streams open on a
//     server, and a client connection (whoever calls) MaxStreamsPerConn;
//     the next is refused with ResourceExhausted;
//   - the streams of a revoked hub token end at once (Run hears of every
//     revocation from the token store), and every StreamRecheck the hub
//     tokens of open streams are looked up again, for a revocation whose
//     announcement was missed;
//   - a stream sends nothing to a hub token no longer valid (scopedStream).

// openStream is one registered stream.
type openStream struct {
	token   string // a hub token's value (memory only), "" for admin
	tokenID string // "" for admin
	conn    string // the peer's address: one per client connection
	cancel  context.CancelCauseFunc
}

// streamRegistry counts and finds open streams. It is safe for concurrent use.
type streamRegistry struct {
	maxToken, maxConn int

	mu      sync.Mutex
	byToken map[string]map[*openStream]struct{}
	perConn map[string]int
}

func newStreamRegistry(maxToken, maxConn int) *streamRegistry {
	return &streamRegistry{maxToken: maxToken, maxConn: maxConn, byToken: map[string]map[*openStream]struct{}{}, perConn: map[string]int{}}
}

// open registers s, or refuses it when its token or connection has as many
// streams open as allowed.
func (r *streamRegistry) open(s *openStream) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.perConn[s.conn] >= r.maxConn {
		return status.Errorf(codes.ResourceExhausted, "this connection has %d streams open, the most allowed; close some or use another connection", r.maxConn)
	}
	if s.tokenID != "" && len(r.byToken[s.tokenID]) >= r.maxToken {
		return status.Errorf(codes.ResourceExhausted, "this token has %d streams open, the most allowed; close one first", r.maxToken)
	}
	r.perConn[s.conn]++
	if s.tokenID != "" {
		if r.byToken[s.tokenID] == nil {
			r.byToken[s.tokenID] = map[*openStream]struct{}{}
		}
		r.byToken[s.tokenID][s] = struct{}{}
	}
	return nil
}

// close unregisters s.
func (r *streamRegistry) close(s *openStream) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.perConn[s.conn]--; r.perConn[s.conn] <= 0 {
		delete(r.perConn, s.conn)
	}
	if set := r.byToken[s.tokenID]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(r.byToken, s.tokenID)
		}
	}
}

// end ends the streams of the token tokenID with cause and says how many.
func (r *streamRegistry) end(tokenID string, cause error) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	for s := range r.byToken[tokenID] {
		s.cancel(cause)
	}
	return len(r.byToken[tokenID])
}

// tokens returns one token value per token id with open streams.
func (r *streamRegistry) tokens() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]string, len(r.byToken))
	for id, set := range r.byToken {
		for s := range set {
			out[id] = s.token
			break
		}
	}
	return out
}

// Run ends the streams of revoked hub tokens until ctx ends: at once when
// the token store announces a revocation, and, for one whose announcement
// was missed (Redis away at that moment), when the periodic re-check
// (Config.StreamRecheck) finds the token gone. Run returns nil when ctx
// ends. Without Run, streams still end at the next message they send.
func (a *Authenticator) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			_ = a.tokens.WatchRevocations(ctx, func(id string) { a.ended(id, "revoked") })
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	})
	t := time.NewTicker(a.cfg.StreamRecheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-t.C:
		}
		for id, token := range a.streams.tokens() {
			if err := a.stillValid(ctx, token); errors.Is(err, errRevoked) {
				a.ended(id, "re-checked")
			}
		}
	}
}

// ended ends the streams of the revoked token id, logging how.
func (a *Authenticator) ended(id, how string) {
	if n := a.streams.end(id, errRevoked); n > 0 {
		a.log.Info("streams of a revoked hub token ended", "token_id", id, "streams", n, "how", how)
	}
}

package configsvc

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

func (g *grpcServer) DeleteHub(ctx context.Context, req *hubhooksv1.DeleteHubRequest) (*hubhooksv1.DeleteHubResponse, error) {
	resp, err := g.svc.deleteHub(ctx, req.GetHubId())
	return resp, grpcError(err)
}

// deleteHub is DeleteHub. Each service learns of the deletion through what
// it already reads, in the separate deployment as in hubd:
//   - the configuration becomes empty (Store.Delete) and reaches every
//     config cache on the change feed: the expander expands nothing more
//     for the hub, and the deliverer cancels its pending retries and the
//     jobs it meets (the triggers are off and the URLs gone);
//   - the hub tokens are revoked here;
//   - a HubDeleted message on HUBHOOKS_ATTEMPTS tells the logger to remove
//     the hub's event log and to drop the records of deliveries created
//     before the deletion (those cancellations among them) when they come.
//
// Each step is idempotent, so a call that failed part way is made again.
func (s *Service) deleteHub(ctx context.Context, hub string) (*hubhooksv1.DeleteHubResponse, error) {
	if err := validateHub(hub); err != nil {
		return nil, err
	}
	if !s.streamsReady.Load() {
		return nil, fmt.Errorf("%w: configsvc is starting (ensuring JetStream streams); try again shortly", ErrUnavailable)
	}
	cfg, wrote, err := s.store.Delete(ctx, hub)
	if err != nil {
		return nil, err
	}
	if wrote {
		s.changes.WithLabelValues(KindHubDeleted).Inc()
	}
	toks, err := s.tokens.List(ctx, hub)
	if err != nil {
		return nil, tokenError("delete hub: list its tokens", err)
	}
	for _, tok := range toks {
		if err := s.tokens.Revoke(ctx, hub, "", tok.GetId()); err != nil {
			return nil, tokenError("delete hub: revoke its tokens", err)
		}
	}
	at := s.cfg.Now()
	msg, err := eventbus.NewHubDeletedMsg(hub, at)
	if err != nil {
		return nil, err
	}
	if _, err := s.js.PublishMsg(ctx, msg); err != nil {
		return nil, fmt.Errorf("%w: hub %s's configuration and tokens are deleted, but its event log could not be yet (%v): call DeleteHub again", ErrUnavailable, hub, err)
	}
	s.log.Info("hub deleted", "hub_id", hub, "version", cfg.GetVersion(), "tokens_revoked", len(toks))
	return &hubhooksv1.DeleteHubResponse{DeletedAt: timestamppb.New(at), TokensRevoked: int32(len(toks))}, nil
}

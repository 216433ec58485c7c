package configsvc

import (
	"context"
	"encoding/base64"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hubhooks/hubhooks/pkg/auth"
	"github.com/hubhooks/hubhooks/pkg/hubid"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// Page sizes of ListHubs.
const (
	defaultHubsPageSize = 50
	maxHubsPageSize     = 500
)

// hubsToken is the page token of ListHubs: the last hub id of the previous
// page, base64url-encoded behind a version tag.
const hubsTokenTag = "h1:"

func encodeHubsToken(last string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(hubsTokenTag + last))
}

func decodeHubsToken(tok string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	last, ok := strings.CutPrefix(string(b), hubsTokenTag)
	if err != nil || !ok || hubid.Validate(last) != nil {
		return "", invalidf("page_token: not a token from a previous ListHubs; start again without one")
	}
	return last, nil
}

// HubIDs returns up to limit configured hub ids that start with prefix and
// sort after after, in order, and whether more follow.
func (s *Store) HubIDs(ctx context.Context, prefix, after string, limit int) (ids []string, more bool, err error) {
	all, err := s.rdb.SMembers(ctx, s.hubsKey()).Result()
	if err != nil {
		return nil, false, unavailable("list hubs", err)
	}
	slices.Sort(all)
	for _, id := range all {
		if id <= after || !strings.HasPrefix(id, prefix) {
			continue
		}
		if len(ids) == limit {
			return ids, true, nil
		}
		ids = append(ids, id)
	}
	return ids, false, nil
}

func (g *grpcServer) ListHubs(ctx context.Context, req *hubhooksv1.ListHubsRequest) (*hubhooksv1.ListHubsResponse, error) {
	if err := checkLen("prefix", req.GetPrefix(), hubid.MaxLen); err != nil {
		return nil, grpcError(err)
	}
	size := int(req.GetPageSize())
	switch {
	case size < 0:
		return nil, grpcError(invalidf("page_size %d: must be 0 (default %d) to %d", size, defaultHubsPageSize, maxHubsPageSize))
	case size == 0:
		size = defaultHubsPageSize
	case size > maxHubsPageSize:
		size = maxHubsPageSize
	}
	var after string
	if tok := req.GetPageToken(); tok != "" {
		var err error
		if after, err = decodeHubsToken(tok); err != nil {
			return nil, grpcError(err)
		}
	}
	ids, more, err := g.svc.store.HubIDs(ctx, req.GetPrefix(), after, size)
	if err != nil {
		return nil, grpcError(err)
	}
	cfgs, err := g.svc.store.GetMany(ctx, ids)
	if err != nil {
		return nil, grpcError(err)
	}
	resp := &hubhooksv1.ListHubsResponse{}
	for _, c := range cfgs {
		resp.Hubs = append(resp.Hubs, &hubhooksv1.HubSummary{
			HubId: c.GetHubId(), EventsEnabled: c.GetEventsEnabled(),
			CallbackUrlCount: int32(len(c.GetCallbackUrls())), UpdatedAt: c.GetUpdatedAt(),
		})
	}
	if more && len(ids) > 0 {
		resp.NextPageToken = encodeHubsToken(ids[len(ids)-1])
	}
	return resp, nil
}

// WhoAmI answers with the identity the authentication interceptor admitted
// the call as.
func (g *grpcServer) WhoAmI(ctx context.Context, _ *hubhooksv1.WhoAmIRequest) (*hubhooksv1.WhoAmIResponse, error) {
	id, ok := auth.FromContext(ctx)
	if !ok {
		return nil, status.Error(codes.Internal, "no caller identity: this server runs without the authentication interceptors")
	}
	return &hubhooksv1.WhoAmIResponse{Admin: id.Admin, HubId: id.HubID}, nil
}

package configsvc

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/auth"
	"github.com/hubhooks/hubhooks/pkg/configcache"
	"github.com/hubhooks/hubhooks/pkg/hubid"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// SnapshotCountHeader is the WatchHubConfig response header that says how
// many messages form the initial snapshot.
const SnapshotCountHeader = configcache.SnapshotCountHeader

// Request limits.
const (
	maxIDLen          = 128
	maxDescriptionLen = 200
	maxTokenLen       = 512
	maxEventTypeLen   = 128
	// MaxTestBodyLen bounds SendTestEvent's body (its own sample data).
	MaxTestBodyLen = 64 << 10
)

// argError is an ErrInvalidArgument whose message is just the reason.
type argError struct {
	msg   string
	cause error
}

func (e *argError) Error() string        { return e.msg }
func (e *argError) Is(target error) bool { return target == ErrInvalidArgument }
func (e *argError) Unwrap() error        { return e.cause }

func invalidf(format string, args ...any) error {
	return &argError{msg: fmt.Sprintf(format, args...)}
}

func invalid(err error) error { return &argError{msg: err.Error(), cause: err} }

func validateHub(id string) error {
	if err := hubid.Validate(id); err != nil {
		return invalid(err)
	}
	return nil
}

func checkLen(field, v string, max int) error {
	if len(v) > max {
		return invalidf("%s is %d bytes long; at most %d allowed", field, len(v), max)
	}
	return nil
}

// grpcServer implements hubhooksv1.ConfigServiceServer over a Service.
type grpcServer struct {
	hubhooksv1.UnimplementedConfigServiceServer
	svc *Service
}

func (g *grpcServer) GetHubConfig(ctx context.Context, req *hubhooksv1.GetHubConfigRequest) (*hubhooksv1.HubConfig, error) {
	if err := validateHub(req.GetHubId()); err != nil {
		return nil, grpcError(err)
	}
	cfg, err := g.svc.store.Get(ctx, req.GetHubId())
	return cfg, grpcError(err)
}

func (g *grpcServer) SetEventsEnabled(ctx context.Context, req *hubhooksv1.SetEventsEnabledRequest) (*hubhooksv1.HubConfig, error) {
	if err := validateHub(req.GetHubId()); err != nil {
		return nil, grpcError(err)
	}
	cfg, err := g.svc.mutate(ctx, req.GetHubId(), KindEventsEnabled, func(next *hubhooksv1.HubConfig, now time.Time) (bool, error) {
		if next.EventsEnabled == req.GetEnabled() {
			return false, nil
		}
		next.EventsEnabled = req.GetEnabled()
		if next.EventsEnabled {
			next.EventsEnabledAt = timestamppb.New(now)
		}
		return true, nil
	})
	return cfg, grpcError(err)
}

func (g *grpcServer) AddCallbackUrl(ctx context.Context, req *hubhooksv1.AddCallbackUrlRequest) (*hubhooksv1.HubConfig, error) {
	hub := req.GetHubId()
	if err := validateHub(hub); err != nil {
		return nil, grpcError(err)
	}
	stored, err := g.svc.callbackURL(req.GetUrl())
	if err != nil {
		return nil, grpcError(err)
	}
	desc := strings.TrimSpace(req.GetDescription())
	types, err := g.svc.eventTypeFilter(req.GetEventTypes())
	if err = errors.Join(err, checkLen("description", desc, maxDescriptionLen)); err != nil {
		return nil, grpcError(err)
	}
	max := g.svc.cfg.MaxURLs
	cfg, err := g.svc.mutate(ctx, hub, KindURLAdded, func(next *hubhooksv1.HubConfig, now time.Time) (bool, error) {
		for _, c := range next.CallbackUrls {
			if sameURL(c.GetUrl(), stored) {
				return false, fmt.Errorf("%w: hub %s already has %s (id %s)", ErrDuplicateURL, hub, c.GetUrl(), c.GetId())
			}
		}
		if len(next.CallbackUrls) >= max {
			return false, fmt.Errorf("%w: hub %s already has %d callback URLs, the most allowed; remove one before adding another", ErrTooManyURLs, hub, len(next.CallbackUrls))
		}
		next.CallbackUrls = append(next.CallbackUrls, &hubhooksv1.CallbackUrl{
			Id:          webhook.RandomID("url_"),
			Url:         stored,
			CreatedAt:   timestamppb.New(now),
			Description: desc,
			EventTypes:  types,
		})
		return true, nil
	})
	return cfg, grpcError(err)
}

func (g *grpcServer) RemoveCallbackUrl(ctx context.Context, req *hubhooksv1.RemoveCallbackUrlRequest) (*hubhooksv1.HubConfig, error) {
	hub, raw, id := req.GetHubId(), strings.TrimSpace(req.GetUrl()), req.GetId()
	if err := validateHub(hub); err != nil {
		return nil, grpcError(err)
	}
	if (raw == "") == (id == "") {
		return nil, grpcError(invalidf("set exactly one of url and id to name the callback URL to remove"))
	}
	if err := errors.Join(checkLen("url", raw, 4096), checkLen("id", id, maxIDLen)); err != nil {
		return nil, grpcError(err)
	}
	cfg, err := g.svc.mutate(ctx, hub, KindURLRemoved, func(next *hubhooksv1.HubConfig, _ time.Time) (bool, error) {
		i := findURL(next, raw, id)
		if i < 0 {
			what := "url " + strconv.Quote(raw)
			if id != "" {
				what = "id " + strconv.Quote(id)
			}
			return false, fmt.Errorf("%w: hub %s has no callback URL with %s; GetHubConfig lists its URLs", ErrURLNotFound, hub, what)
		}
		next.CallbackUrls = append(next.CallbackUrls[:i], next.CallbackUrls[i+1:]...)
		return true, nil
	})
	return cfg, grpcError(err)
}

func (g *grpcServer) ConfigureCallbackUrl(ctx context.Context, req *hubhooksv1.ConfigureCallbackUrlRequest) (*hubhooksv1.HubConfig, error) {
	cfg, err := g.svc.configureURL(ctx, req)
	return cfg, grpcError(err)
}

// findURL returns the index of the hub's URL named by raw (compared in
// stored form, so any spelling of it, with or without its scheme, names it)
// or by id, or -1.
func findURL(cfg *hubhooksv1.HubConfig, raw, id string) int {
	key := ""
	if raw != "" {
		key = comparable(raw)
	}
	for i, c := range cfg.GetCallbackUrls() {
		switch {
		case id != "" && c.GetId() == id:
			return i
		case raw != "" && (c.GetUrl() == raw || sameURL(c.GetUrl(), key)):
			return i
		}
	}
	return -1
}

func (g *grpcServer) GenerateSecret(ctx context.Context, req *hubhooksv1.GenerateSecretRequest) (*hubhooksv1.GenerateSecretResponse, error) {
	if err := validateHub(req.GetHubId()); err != nil {
		return nil, grpcError(err)
	}
	var prevExpires *timestamppb.Timestamp
	cfg, err := g.svc.mutate(ctx, req.GetHubId(), KindSecretGenerated, func(next *hubhooksv1.HubConfig, now time.Time) (bool, error) {
		prevExpires = nil
		if old := next.Secret; old != "" {
			prevExpires = timestamppb.New(now.Add(g.svc.cfg.SecretGrace))
			next.PreviousSecrets = append([]*hubhooksv1.PreviousSecret{{Secret: old, ExpiresAt: prevExpires}}, next.PreviousSecrets...)
		}
		next.Secret = webhook.NewSecret()
		return true, nil
	})
	if err != nil {
		return nil, grpcError(err)
	}
	return &hubhooksv1.GenerateSecretResponse{Secret: cfg.GetSecret(), HubConfig: cfg, PreviousSecretExpiresAt: prevExpires}, nil
}

func (g *grpcServer) ListEventTypes(context.Context, *hubhooksv1.ListEventTypesRequest) (*hubhooksv1.ListEventTypesResponse, error) {
	return g.svc.rules.EventTypes(), nil
}

func (g *grpcServer) SendTestEvent(ctx context.Context, req *hubhooksv1.SendTestEventRequest) (*hubhooksv1.SendTestEventResponse, error) {
	resp, err := g.svc.sendTestEvent(ctx, req)
	return resp, grpcError(err)
}

func (g *grpcServer) WatchHubConfig(req *hubhooksv1.WatchHubConfigRequest, stream grpc.ServerStreamingServer[hubhooksv1.HubConfig]) error {
	hub := req.GetHubId()
	if (hub == "") == !req.GetAll() {
		return grpcError(invalidf("set exactly one of hub_id (watch one hub) and all (watch every hub)"))
	}
	if hub != "" {
		if err := validateHub(hub); err != nil {
			return grpcError(err)
		}
	}
	ctx := stream.Context()
	w, err := g.svc.broker.add(hub, g.svc.cfg.WatchBuffer)
	if err != nil {
		return err
	}
	defer g.svc.broker.remove(w)

	snap, err := g.svc.snapshot(ctx, hub)
	if err != nil {
		return grpcError(err)
	}
	if err := stream.SendHeader(metadata.Pairs(SnapshotCountHeader, strconv.Itoa(len(snap)))); err != nil {
		return err
	}
	for _, c := range snap {
		if err := stream.Send(c); err != nil {
			return err
		}
	}
	for {
		select {
		case <-ctx.Done():
			return grpcError(ctx.Err())
		case <-w.done:
			return w.err
		case it := <-w.ch:
			if !it.resync {
				if err := stream.Send(it.cfg); err != nil {
					return err
				}
				continue
			}
			snap, err := g.svc.snapshot(ctx, hub)
			if err != nil {
				return grpcError(err)
			}
			for _, c := range snap {
				if err := stream.Send(c); err != nil {
					return err
				}
			}
		}
	}
}

// snapshot returns the current config of hubID (Unconfigured when never
// written), or of every configured hub when hubID is "".
func (s *Service) snapshot(ctx context.Context, hubID string) ([]*hubhooksv1.HubConfig, error) {
	if hubID != "" {
		c, err := s.store.Get(ctx, hubID)
		if err != nil {
			return nil, err
		}
		return []*hubhooksv1.HubConfig{c}, nil
	}
	return s.store.All(ctx)
}

// tokenError maps a TokenStore error to this package's sentinels, knowing
// pkg/auth's: not found -> ErrTokenNotFound, too many -> ErrTooManyTokens,
// a bad request -> ErrInvalidArgument; anything else is a store outage.
func tokenError(op string, err error) error {
	var nf interface{ NotFound() bool }
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrTokenNotFound), errors.Is(err, ErrInvalidArgument), errors.Is(err, ErrTooManyTokens),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, auth.ErrTokenNotFound), errors.As(err, &nf) && nf.NotFound():
		return fmt.Errorf("%w: %s", ErrTokenNotFound, err.Error())
	case errors.Is(err, auth.ErrTooManyTokens):
		return fmt.Errorf("%w: %s; revoke one first", ErrTooManyTokens, err.Error())
	case errors.Is(err, auth.ErrInvalidRequest):
		return invalid(err)
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return fmt.Errorf("%w: %s: %v", ErrUnavailable, op, err)
}

func (g *grpcServer) CreateHubToken(ctx context.Context, req *hubhooksv1.CreateHubTokenRequest) (*hubhooksv1.CreateHubTokenResponse, error) {
	if err := errors.Join(validateHub(req.GetHubId()), checkLen("description", req.GetDescription(), maxDescriptionLen)); err != nil {
		return nil, grpcError(err)
	}
	tok, info, err := g.svc.tokens.Create(ctx, req.GetHubId(), strings.TrimSpace(req.GetDescription()))
	if err != nil {
		return nil, grpcError(tokenError("create hub token", err))
	}
	g.svc.log.Info("hub token created", "hub_id", req.GetHubId(), "token_id", info.GetId())
	return &hubhooksv1.CreateHubTokenResponse{Token: tok, Info: info}, nil
}

func (g *grpcServer) RevokeHubToken(ctx context.Context, req *hubhooksv1.RevokeHubTokenRequest) (*hubhooksv1.RevokeHubTokenResponse, error) {
	if err := validateHub(req.GetHubId()); err != nil {
		return nil, grpcError(err)
	}
	if (req.GetToken() == "") == (req.GetId() == "") {
		return nil, grpcError(invalidf("set exactly one of token and id to name the token to revoke"))
	}
	if err := errors.Join(checkLen("token", req.GetToken(), maxTokenLen), checkLen("id", req.GetId(), maxIDLen)); err != nil {
		return nil, grpcError(err)
	}
	if err := g.svc.tokens.Revoke(ctx, req.GetHubId(), req.GetToken(), req.GetId()); err != nil {
		return nil, grpcError(tokenError("revoke hub token", err))
	}
	g.svc.log.Info("hub token revoked", "hub_id", req.GetHubId(), "token_id", req.GetId())
	return &hubhooksv1.RevokeHubTokenResponse{}, nil
}

func (g *grpcServer) ListHubTokens(ctx context.Context, req *hubhooksv1.ListHubTokensRequest) (*hubhooksv1.ListHubTokensResponse, error) {
	if err := validateHub(req.GetHubId()); err != nil {
		return nil, grpcError(err)
	}
	toks, err := g.svc.tokens.List(ctx, req.GetHubId())
	if err != nil {
		return nil, grpcError(tokenError("list hub tokens", err))
	}
	return &hubhooksv1.ListHubTokensResponse{Tokens: toks}, nil
}

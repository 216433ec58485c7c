package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// MinAdminTokenLen is the shortest admin token accepted.
const MinAdminTokenLen = 16

// Refusal messages; they never echo what the caller sent.
const (
	msgMalformed = "malformed authorization header; send \"authorization: Bearer <token>\""
	msgMissing   = "missing token; send \"authorization: Bearer <token>\""
	msgInvalid   = "invalid or revoked token"
)

// maxTokenLen bounds the token read from the authorization header.
const maxTokenLen = 512

// publicMethods are open to everyone: the standard health service and
// server reflection. An entry ending in "/" matches a whole service.
var publicMethods = []string{
	"/grpc.health.v1.Health/",
	"/grpc.reflection.v1.ServerReflection/",
	"/grpc.reflection.v1alpha.ServerReflection/",
}

// hublessMethods are the methods whose requests name no hub and which any
// valid token may call. Any other request without a hub_id needs the admin
// token.
var hublessMethods = map[string]bool{
	"/hubhooks.v1.ConfigService/ListEventTypes": true,
	"/hubhooks.v1.ConfigService/WhoAmI":         true,
}

// adminMethods need the admin token even though their requests name a hub:
// what they remove cannot be undone, and a hub token must not be able to
// erase the record of what it did; and token management, so that a hub
// token cannot mint tokens that outlive its own revocation; and the dead
// letters, which may name no hub or another hub than the one they hold.
var adminMethods = map[string]bool{
	"/hubhooks.v1.OperationsService/ListDeadLetters": true,
	"/hubhooks.v1.ConfigService/DeleteHub":           true,
	"/hubhooks.v1.EventLogService/PurgeEventLogs":    true,
	"/hubhooks.v1.ConfigService/CreateHubToken":      true,
	"/hubhooks.v1.ConfigService/RevokeHubToken":      true,
	"/hubhooks.v1.ConfigService/ListHubTokens":       true,
}

// TokenLookup resolves hub tokens and announces their revocation;
// *TokenStore implements it. It must be safe for concurrent use.
type TokenLookup interface {
	// Lookup returns the token's hub and id: ErrTokenNotFound (possibly
	// wrapped) for unknown or revoked tokens; any other error means the
	// answer is unknown (e.g. Redis is down).
	Lookup(ctx context.Context, token string) (Token, error)
	// WatchRevocations calls fn with the id of every token revoked from
	// now on, by any replica, until ctx ends.
	WatchRevocations(ctx context.Context, fn func(tokenID string)) error
}

// Config configures an Authenticator.
type Config struct {
	// AdminToken may act on every hub (HUBHOOKS_ADMIN_TOKEN). Empty means
	// loopback-only mode: only loopback and unix-socket callers are
	// accepted. At least MinAdminTokenLen visible ASCII characters.
	AdminToken string
	// Tokens resolves hub tokens. Required.
	Tokens TokenLookup
	// Log receives start-up warnings and refusals (never tokens). Required.
	Log *slog.Logger
	// MaxStreamsPerToken bounds the streams one hub token has open on this
	// server; default DefaultMaxStreamsPerToken.
	MaxStreamsPerToken int
	// MaxStreamsPerConn bounds the streams one client connection has open
	// on this server, whoever calls; default DefaultMaxStreamsPerConn.
	MaxStreamsPerConn int
	// StreamRecheck is how often the hub tokens of open streams are looked
	// up again, to end those of tokens whose revocation was not announced
	// (Run); default DefaultStreamRecheck.
	StreamRecheck time.Duration
	// RefusalLogInterval is how often at most a refused call is logged,
	// per reason (with the number refused since); default
	// DefaultRefusalLogInterval.
	RefusalLogInterval time.Duration
	// Refused, when set, is called with the reason of every refused call
	// (one of the Refusal constants), logged or not: a counter metric.
	Refused func(reason string)
}

// The reasons a call is refused, as Config.Refused and the log lines give
// them.
const (
	RefusalMalformed    = "malformed"     // the authorization header is not "Bearer <token>"
	RefusalNotLoopback  = "not_loopback"  // no admin token configured and the caller is not local
	RefusalMissing      = "missing"       // no token
	RefusalUnknownToken = "unknown_token" // not the admin token nor a live hub token (revoked ones included)
)

// Defaults of Config.
const (
	DefaultMaxStreamsPerToken = 16
	DefaultMaxStreamsPerConn  = 1024
	DefaultStreamRecheck      = 30 * time.Second
	DefaultRefusalLogInterval = 10 * time.Second
)

func (c Config) withDefaults() Config {
	if c.MaxStreamsPerToken == 0 {
		c.MaxStreamsPerToken = DefaultMaxStreamsPerToken
	}
	if c.MaxStreamsPerConn == 0 {
		c.MaxStreamsPerConn = DefaultMaxStreamsPerConn
	}
	if c.StreamRecheck == 0 {
		c.StreamRecheck = DefaultStreamRecheck
	}
	if c.RefusalLogInterval == 0 {
		c.RefusalLogInterval = DefaultRefusalLogInterval
	}
	return c
}

// Validate reports every problem of c.
func (c Config) Validate() error {
	var errs []error
	if c.Tokens == nil {
		errs = append(errs, errors.New("auth: Tokens is required"))
	}
	if c.Log == nil {
		errs = append(errs, errors.New("auth: Log is required"))
	}
	if c.MaxStreamsPerToken < 0 || c.MaxStreamsPerConn < 0 || c.StreamRecheck < 0 || c.RefusalLogInterval < 0 {
		errs = append(errs, errors.New("auth: stream limits, StreamRecheck and RefusalLogInterval must not be negative"))
	}
	if c.AdminToken != "" {
		if len(c.AdminToken) < MinAdminTokenLen || len(c.AdminToken) > maxTokenLen {
			errs = append(errs, fmt.Errorf("auth: HUBHOOKS_ADMIN_TOKEN must be %d to %d characters long", MinAdminTokenLen, maxTokenLen))
		}
		if !visibleASCII(c.AdminToken) {
			errs = append(errs, errors.New("auth: HUBHOOKS_ADMIN_TOKEN must be visible ASCII without spaces"))
		}
	}
	return errors.Join(errs...)
}

// Identity is who a call was authenticated as; FromContext returns it in
// handlers.
type Identity struct {
	// Admin is true for the admin token and for loopback callers without a
	// token when no admin token is configured.
	Admin bool
	// HubID is the hub a hub token acts on; empty for admin.
	HubID string
	// TokenID is the hub token's id; empty for admin.
	TokenID string
	// Loopback is true when the call was admitted as a tokenless loopback
	// caller.
	Loopback bool
}

type identityKey struct{}

// FromContext returns the caller's identity set by the interceptors; false
// for public methods and calls that did not go through them.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// Authenticator holds the gRPC server interceptors. It is safe for
// concurrent use.
type Authenticator struct {
	adminHash [sha256.Size]byte
	hasAdmin  bool
	tokens    TokenLookup
	log       *slog.Logger
	cfg       Config
	streams   *streamRegistry
	refusals  *refusals
}

// New returns an Authenticator, or the problems of cfg.
func New(cfg Config) (*Authenticator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	a := &Authenticator{
		tokens: cfg.Tokens, log: cfg.Log, cfg: cfg,
		streams:  newStreamRegistry(cfg.MaxStreamsPerToken, cfg.MaxStreamsPerConn),
		refusals: newRefusals(cfg.Log, cfg.RefusalLogInterval, cfg.Refused),
	}
	if cfg.AdminToken != "" {
		a.adminHash = sha256.Sum256([]byte(cfg.AdminToken))
		a.hasAdmin = true
	}
	return a, nil
}

// LoopbackOnly reports whether no admin token is configured, so only
// loopback callers are accepted.
func (a *Authenticator) LoopbackOnly() bool { return !a.hasAdmin }

// Warn logs a loud start-up warning when no admin token is configured. Call
// it once when the server starts.
func (a *Authenticator) Warn() {
	if a.hasAdmin {
		return
	}
	a.log.Warn("!!! HUBHOOKS_ADMIN_TOKEN is not set: the gRPC API is UNAUTHENTICATED for loopback callers " +
		"and refuses every other caller. Set HUBHOOKS_ADMIN_TOKEN (and use TLS) before exposing it beyond this machine.")
}

// Unary returns the unary server interceptor.
func (a *Authenticator) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if a.isPublic(info.FullMethod) {
			return handler(ctx, req)
		}
		id, _, err := a.authenticate(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		if err := a.authorize(id, info.FullMethod, req); err != nil {
			return nil, err
		}
		return handler(context.WithValue(ctx, identityKey{}, id), req)
	}
}

// Stream returns the stream server interceptor. The token is checked when
// the stream opens; for hub tokens, every request message received is
// checked against the token's hub, and a refusal is what the call returns,
// whatever the handler makes of the error. The stream is registered while
// it is open (see streams.go): within the limits per token and per
// connection, ended at once when its hub token is revoked, and sending
// nothing to a hub token no longer valid.
func (a *Authenticator) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if a.isPublic(info.FullMethod) {
			return handler(srv, ss)
		}
		id, token, err := a.authenticate(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithCancelCause(ss.Context())
		defer cancel(nil)
		open := &openStream{tokenID: id.TokenID, conn: peerAddr(ss.Context()), cancel: cancel}
		if !id.Admin {
			open.token = token
		}
		if err := a.streams.open(open); err != nil {
			return err
		}
		defer a.streams.close(open)
		w := &scopedStream{ServerStream: ss, ctx: context.WithValue(ctx, identityKey{}, id), a: a, id: id, method: info.FullMethod, token: open.token}
		herr := handler(srv, w)
		if cause := context.Cause(ctx); cause != nil && ss.Context().Err() == nil {
			// Ended by the server: its token was revoked. This comes first:
			// a send racing the end fails its token check on the ended
			// context, which says nothing about the token.
			return cause
		}
		if denied := w.deniedErr(); denied != nil {
			return denied
		}
		return herr
	}
}

type scopedStream struct {
	grpc.ServerStream
	ctx    context.Context
	a      *Authenticator
	id     Identity
	method string
	token  string // a hub token's value, "" for admin

	mu     sync.Mutex
	denied error
}

func (s *scopedStream) Context() context.Context { return s.ctx }

func (s *scopedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if err := s.a.authorize(s.id, s.method, m); err != nil {
		s.deny(err)
		return err
	}
	return nil
}

// SendMsg sends m, after looking a hub token up again: a stream sends
// nothing to a token revoked a moment ago, whichever replica revoked it.
func (s *scopedStream) SendMsg(m any) error {
	if s.token != "" {
		if err := s.a.stillValid(s.ctx, s.token); err != nil {
			s.deny(err)
			return err
		}
	}
	return s.ServerStream.SendMsg(m)
}

func (s *scopedStream) deny(err error) {
	s.mu.Lock()
	if s.denied == nil {
		s.denied = err
	}
	s.mu.Unlock()
}

func (s *scopedStream) deniedErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.denied
}

func (a *Authenticator) isPublic(method string) bool {
	for _, p := range publicMethods {
		if method == p || (strings.HasSuffix(p, "/") && strings.HasPrefix(method, p)) {
			return true
		}
	}
	return false
}

// authenticate finds who is calling and returns the bearer token it sent
// ("" for none). Errors are gRPC status errors.
func (a *Authenticator) authenticate(ctx context.Context, method string) (Identity, string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	token, present, err := parseBearer(md.Get("authorization"))
	if err != nil {
		a.refusals.note(RefusalMalformed, method, peerAddr(ctx))
		return Identity{}, "", status.Error(codes.Unauthenticated, msgMalformed)
	}
	if !a.hasAdmin {
		if !loopbackPeer(ctx) {
			a.refusals.note(RefusalNotLoopback, method, peerAddr(ctx))
			return Identity{}, "", status.Error(codes.Unauthenticated,
				"this server has no admin token and accepts loopback callers only; set HUBHOOKS_ADMIN_TOKEN on the server and send \"authorization: Bearer <token>\"")
		}
		if !present {
			return Identity{Admin: true, Loopback: true}, "", nil
		}
	} else {
		if !present {
			a.refusals.note(RefusalMissing, method, peerAddr(ctx))
			return Identity{}, "", status.Error(codes.Unauthenticated, msgMissing)
		}
		got := sha256.Sum256([]byte(token))
		if subtle.ConstantTimeCompare(got[:], a.adminHash[:]) == 1 {
			return Identity{Admin: true}, "", nil
		}
	}
	tok, err := a.tokens.Lookup(ctx, token)
	switch {
	case errors.Is(err, ErrTokenNotFound), err == nil && tok.HubID == "":
		a.refusals.note(RefusalUnknownToken, method, peerAddr(ctx))
		return Identity{}, "", status.Error(codes.Unauthenticated, msgInvalid)
	case err != nil:
		a.log.Warn("cannot check hub token", "method", method, "err", err)
		return Identity{}, "", status.Error(codes.Unavailable, "cannot check the token right now; retry")
	}
	return Identity{HubID: tok.HubID, TokenID: tok.ID}, token, nil
}

// stillValid looks a hub token up again: nil while it is valid,
// Unauthenticated once it is revoked, Unavailable when it cannot be told.
func (a *Authenticator) stillValid(ctx context.Context, token string) error {
	_, err := a.tokens.Lookup(ctx, token)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrTokenNotFound):
		return errRevoked
	}
	return status.Error(codes.Unavailable, "cannot check the token right now; reconnect")
}

// errRevoked ends a stream whose hub token was revoked.
var errRevoked = status.Error(codes.Unauthenticated, "the token of this stream was revoked; it ends here")

// authorize checks that id may send req to method. Errors are gRPC status
// errors.
func (a *Authenticator) authorize(id Identity, method string, req any) error {
	if id.Admin {
		return nil
	}
	if adminMethods[method] {
		return status.Errorf(codes.PermissionDenied, "%s needs the admin token; a hub token may not call it, even for its own hub", method)
	}
	if all, ok := req.(interface{ GetAll() bool }); ok && all.GetAll() {
		return status.Errorf(codes.PermissionDenied, "a hub token acts on hub %q only; requests for all hubs need the admin token", id.HubID)
	}
	if h, ok := req.(interface{ GetHubId() string }); ok {
		if got := h.GetHubId(); got != id.HubID {
			return status.Errorf(codes.PermissionDenied, "this token acts on hub %q only; the request names hub_id %q", id.HubID, got)
		}
		return nil
	}
	if hublessMethods[method] {
		return nil
	}
	return status.Errorf(codes.PermissionDenied, "%s needs the admin token", method)
}

// parseBearer reads the token from the authorization metadata values.
// present is false when there is no authorization header; a header that is
// not exactly one "Bearer <token>" is an error.
func parseBearer(vals []string) (token string, present bool, err error) {
	if len(vals) == 0 {
		return "", false, nil
	}
	if len(vals) > 1 {
		return "", true, errors.New("more than one authorization header")
	}
	scheme, rest, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", true, errors.New("not a bearer token")
	}
	token = strings.TrimLeft(rest, " ")
	if token == "" || len(token) > maxTokenLen || !visibleASCII(token) {
		return "", true, errors.New("malformed bearer token")
	}
	return token, true, nil
}

func visibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// loopbackPeer reports whether the caller is on this machine: TCP from
// 127.0.0.0/8 or ::1 (also IPv4-mapped), or a unix socket.
func loopbackPeer(ctx context.Context) bool {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return false
	}
	switch addr := p.Addr.(type) {
	case *net.TCPAddr:
		return addr.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	}
	return false
}

func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

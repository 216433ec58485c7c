package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/proto/openapi"
)

// Gateway is the HTTP/JSON API and the web console. It is safe for
// concurrent use.
type Gateway struct {
	cfg     Config
	mux     *runtime.ServeMux
	handler http.Handler
}

// New builds the gateway on client connections to ConfigService (config)
// and to EventLogService and OperationsService (logs, the logger); hubd
// passes the same connection twice. The
// connections must not add credentials of their own: each call carries the
// caller's token.
func New(cfg Config, config, logs grpc.ClientConnInterface) (*Gateway, error) {
	var errs []error
	if config == nil {
		errs = append(errs, errors.New("gateway: nil ConfigService connection"))
	}
	if logs == nil {
		errs = append(errs, errors.New("gateway: nil EventLogService connection"))
	}
	cfg = cfg.withDefaults()
	errs = append(errs, cfg.Validate())
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	mux := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}),
		// grpc-gateway always passes Authorization on as "authorization"
		// metadata; no other header is.
		runtime.WithIncomingHeaderMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithRoutingErrorHandler(routingError),
		runtime.WithOutgoingHeaderMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithOutgoingTrailerMatcher(func(string) (string, bool) { return "", false }),
	)
	ctx := context.Background()
	if err := hubhooksv1.RegisterConfigServiceHandlerClient(ctx, mux, hubhooksv1.NewConfigServiceClient(config)); err != nil {
		return nil, fmt.Errorf("gateway: register ConfigService: %w", err)
	}
	if err := hubhooksv1.RegisterEventLogServiceHandlerClient(ctx, mux, hubhooksv1.NewEventLogServiceClient(logs)); err != nil {
		return nil, fmt.Errorf("gateway: register EventLogService: %w", err)
	}
	// OperationsService is served beside EventLogService.
	if err := hubhooksv1.RegisterOperationsServiceHandlerClient(ctx, mux, hubhooksv1.NewOperationsServiceClient(logs)); err != nil {
		return nil, fmt.Errorf("gateway: register OperationsService: %w", err)
	}
	g := &Gateway{cfg: cfg, mux: mux}
	api := g.limitBody(mux)
	if cfg.LoopbackOnly {
		api = g.loopbackOnly(api)
	}
	root := http.NewServeMux()
	root.Handle("/v1/", noStore(api))
	root.Handle("GET /openapi.json", noStore(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openapi.JSON)
	})))
	console, err := consoleHandler()
	if err != nil {
		return nil, err
	}
	root.Handle("/", console)
	g.handler = g.writeDeadlines(securityHeaders(root))
	return g, nil
}

// Handler is the gateway's HTTP handler: /v1/ (API), /openapi.json and the
// console.
func (g *Gateway) Handler() http.Handler { return g.handler }

// Serve serves the gateway on lis until ctx ends; then open streams end at
// once and other requests get up to ShutdownTimeout to finish.
func (g *Gateway) Serve(ctx context.Context, lis net.Listener) error {
	reqCtx, cancelRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRequests()
	srv := &http.Server{
		Handler:           g.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
	}
	g.cfg.Log.Info("web console and HTTP API listening", "url", "http://"+lis.Addr().String()+"/")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case err := <-errc:
		return fmt.Errorf("gateway: %w", err)
	case <-ctx.Done():
	}
	cancelRequests()
	sctx, cancel := context.WithTimeout(context.Background(), g.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("gateway: %w", err)
	}
	return nil
}

// routingError answers a request no rule matches: 404, or 405 for a path
// served with another method, with the API's JSON error body.
func routingError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	if httpStatus != http.StatusMethodNotAllowed {
		runtime.DefaultRoutingErrorHandler(ctx, mux, m, w, r, httpStatus)
		return
	}
	body, err := m.Marshal(status.Newf(codes.Unimplemented, "method %s is not allowed on %s", r.Method, r.URL.Path).Proto())
	if err != nil {
		http.Error(w, "method not allowed", httpStatus)
		return
	}
	w.Header().Set("Content-Type", m.ContentType(nil))
	w.WriteHeader(httpStatus)
	_, _ = w.Write(body)
}

// securityHeaders sets what every response carries: a Content-Security-
// Policy that allows this origin's scripts, styles, images and fetches and
// nothing else, and no framing, sniffing or referrers.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

func noStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// loopbackOnly refuses callers from other machines (see
// Config.LoopbackOnly) with the gRPC servers' refusal.
func (g *Gateway) loopbackOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			g.writeError(w, r, status.New(codes.Unauthenticated,
				"this server has no admin token and accepts loopback callers only; set HUBHOOKS_ADMIN_TOKEN on the server and send \"Authorization: Bearer <token>\""))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// limitBody refuses bodies larger than MaxBodyBytes with 400 and the limit.
func (g *Gateway) limitBody(next http.Handler) http.Handler {
	limit := g.cfg.MaxBodyBytes
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			g.writeError(w, r, status.New(codes.InvalidArgument, tooLarge(limit)))
			return
		}
		r.Body = &limitedBody{r: r.Body, left: limit, limit: limit}
		next.ServeHTTP(w, r)
	})
}

func tooLarge(limit int64) string {
	return fmt.Sprintf("request body is larger than %d bytes, the most a request may carry", limit)
}

// limitedBody is http.MaxBytesReader with the reason in its error, which
// the generated handlers return as InvalidArgument (400).
type limitedBody struct {
	r           io.ReadCloser
	left, limit int64
	err         error
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	// Read one byte more than allowed, to tell a body at the limit from a
	// larger one.
	if int64(len(p))-1 > l.left {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	if int64(n) <= l.left {
		l.left -= int64(n)
		l.err = err
		return n, err
	}
	n, l.left = int(l.left), 0
	l.err = errors.New(tooLarge(l.limit))
	return n, l.err
}

func (l *limitedBody) Close() error { return l.r.Close() }

// writeError writes st as the API's JSON error body with its HTTP status.
func (g *Gateway) writeError(w http.ResponseWriter, r *http.Request, st *status.Status) {
	_, outbound := runtime.MarshalerForRequest(g.mux, r)
	runtime.DefaultHTTPErrorHandler(r.Context(), g.mux, outbound, w, r, st.Err())
}

// writeDeadlines bounds each write of a response by WriteTimeout, so a
// client that stops reading (a stream's, typically) is dropped instead of
// holding a request, and with it a gRPC stream, forever.
func (g *Gateway) writeDeadlines(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dw := &deadlineWriter{ResponseWriter: w, rc: http.NewResponseController(w), d: g.cfg.WriteTimeout}
		defer func() { _ = dw.rc.SetWriteDeadline(time.Time{}) }()
		next.ServeHTTP(dw, r)
	})
}

type deadlineWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	_ = d.rc.SetWriteDeadline(time.Now().Add(d.d))
	return d.ResponseWriter.Write(p)
}

func (d *deadlineWriter) Flush() {
	_ = d.rc.SetWriteDeadline(time.Now().Add(d.d))
	_ = d.rc.Flush()
}

func (d *deadlineWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }

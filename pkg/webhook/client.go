package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/propagation"

	"github.com/hubhooks/hubhooks/pkg/urlguard"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// Version is the hubhooks version named in the default User-Agent. Release
// builds set it with -ldflags "-X github.com/hubhooks/hubhooks/pkg/webhook.Version=v1.2.3".
var Version = "dev"

// Client defaults.
const (
	DefaultTimeout         = 15 * time.Second
	DefaultMaxResponseBody = 64 << 10
)

// Errors reported in Result.Err (match with errors.Is).
var (
	// ErrNoSecret: the request has no signing secret.
	ErrNoSecret = errors.New("no webhook signing secret")
	// ErrTimeout: the receiver did not answer within the client timeout.
	ErrTimeout = errors.New("webhook request timed out")
	// errPanic: a bug inside Send, turned into a failed attempt.
	errPanic = errors.New("webhook client panic")
)

// maxDrain bounds how much of an over-long response body is read (and
// discarded) so the connection can be reused; beyond it the connection is closed.
const maxDrain = 256 << 10

// Client is the HTTP implementation of Sender. It is safe for concurrent use
// and reuses connections across requests. Redirects are never followed.
type Client struct {
	hc        *http.Client
	timeout   time.Duration
	maxBody   int64
	guard     *urlguard.Guard
	userAgent string
	signer    signer
	urls      urlCache
}

var _ Sender = (*Client)(nil)

type clientOptions struct {
	timeout         time.Duration
	maxBody         int64
	guard           *urlguard.Guard
	userAgent       string
	maxConnsPerHost int
	transport       http.RoundTripper
	traced          bool
}

// WithTracing gives every request an OpenTelemetry client span (otelhttp)
// under the span of the context Send is given. No trace context is sent to
// receivers: trace ids stay inside the operator's systems.
func WithTracing() ClientOption {
	return func(o *clientOptions) error {
		o.traced = true
		return nil
	}
}

// ClientOption configures a Client.
type ClientOption func(*clientOptions) error

// WithTimeout bounds each request, from dial to the last byte of the
// response body read (default 15s).
func WithTimeout(d time.Duration) ClientOption {
	return func(o *clientOptions) error {
		if d <= 0 {
			return fmt.Errorf("webhook client: timeout must be positive, got %s", d)
		}
		o.timeout = d
		return nil
	}
}

// WithMaxResponseBody caps how much of a response body is kept (default 64 KiB).
func WithMaxResponseBody(n int64) ClientOption {
	return func(o *clientOptions) error {
		if n < 0 {
			return fmt.Errorf("webhook client: max response body must not be negative, got %d", n)
		}
		o.maxBody = n
		return nil
	}
}

// WithGuard checks every URL with guard.CheckURL before sending and every
// dialled address with guard.Control, so a name resolving to an internal
// address is refused at dial time. Without it nothing is refused.
func WithGuard(g *urlguard.Guard) ClientOption {
	return func(o *clientOptions) error {
		if g == nil {
			return errors.New("webhook client: nil guard")
		}
		o.guard = g
		return nil
	}
}

// WithUserAgent replaces the default User-Agent "hubhooks/<Version>".
func WithUserAgent(ua string) ClientOption {
	return func(o *clientOptions) error {
		if strings.TrimSpace(ua) == "" {
			return errors.New("webhook client: empty user agent")
		}
		o.userAgent = ua
		return nil
	}
}

// WithMaxConnsPerHost bounds connections (idle and active) per host; 0 means
// no limit (the default: the deliverer bounds concurrency per URL itself).
func WithMaxConnsPerHost(n int) ClientOption {
	return func(o *clientOptions) error {
		if n < 0 {
			return fmt.Errorf("webhook client: max conns per host must not be negative, got %d", n)
		}
		o.maxConnsPerHost = n
		return nil
	}
}

// WithTransport replaces the HTTP transport (for tests). The guard's
// dial-time check only applies to the client's own transport; CheckURL still
// runs before every request.
func WithTransport(rt http.RoundTripper) ClientOption {
	return func(o *clientOptions) error {
		if rt == nil {
			return errors.New("webhook client: nil transport")
		}
		o.transport = rt
		return nil
	}
}

// NewClient returns a Client.
func NewClient(opts ...ClientOption) (*Client, error) {
	o := clientOptions{timeout: DefaultTimeout, maxBody: DefaultMaxResponseBody}
	var errs []error
	for _, opt := range opts {
		if opt == nil {
			errs = append(errs, errors.New("webhook client: nil option"))
			continue
		}
		if err := opt(&o); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if o.userAgent == "" {
		o.userAgent = "hubhooks/" + Version
	}
	rt := o.transport
	if rt == nil {
		dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
		if o.guard != nil {
			dialer.Control = o.guard.Control
		}
		rt = &http.Transport{
			// No proxy: a proxy would be dialled instead of the receiver and
			// defeat the dial-time guard.
			Proxy:                  nil,
			DialContext:            dialer.DialContext,
			ForceAttemptHTTP2:      true,
			MaxIdleConns:           1024,
			MaxIdleConnsPerHost:    32,
			MaxConnsPerHost:        o.maxConnsPerHost,
			IdleConnTimeout:        90 * time.Second,
			TLSHandshakeTimeout:    10 * time.Second,
			ExpectContinueTimeout:  time.Second,
			MaxResponseHeaderBytes: 64 << 10,
		}
	}
	if o.traced {
		rt = otelhttp.NewTransport(rt, otelhttp.WithPropagators(propagation.NewCompositeTextMapPropagator()),
			otelhttp.WithSpanNameFormatter(func(string, *http.Request) string { return "POST webhook" }))
	}
	return &Client{
		hc: &http.Client{
			Transport:     rt,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		timeout:   o.timeout,
		maxBody:   o.maxBody,
		guard:     o.guard,
		userAgent: o.userAgent,
	}, nil
}

// Timeout is the longest one Send waits for the receiver (WithTimeout).
func (c *Client) Timeout() time.Duration { return c.timeout }

// Send POSTs one webhook. It never panics and always returns a Result: a
// failure before any answer is in Result.Err and Result.Response.Error.
func (c *Client) Send(ctx context.Context, req Request) (res Result) {
	start := time.Now()
	ts := req.Timestamp
	if ts.IsZero() {
		ts = start
	}
	tsText := strconv.FormatInt(ts.Unix(), 10)
	// The request as recorded (secret masked); wireHeader builds what is
	// sent.
	headers := make(map[string]string, 6)
	headers["Content-Type"] = "application/json"
	headers["User-Agent"] = c.userAgent
	headers[HeaderID] = req.WebhookID
	headers[HeaderTimestamp] = tsText
	res.Request = &hubhooksv1.HttpRequest{Url: req.URL, Method: http.MethodPost, Headers: headers}
	if !req.OmitRecordedBody {
		res.Request.Body = string(req.Body)
	}
	res.Response = &hubhooksv1.HttpResponse{}
	defer c.finish(&res, start)

	if len(req.Secrets) == 0 {
		res.Err = ErrNoSecret
		return res
	}
	headers[HeaderSecret] = MaskSecret
	sig, err := c.signer.header(req.Secrets, req.WebhookID, ts.Unix(), req.Body)
	if err != nil {
		res.Err = fmt.Errorf("sign webhook: %w", err)
		return res
	}
	headers[HeaderSignature] = sig
	target, err := c.target(req.URL)
	if err != nil {
		res.Err = err
		return res
	}

	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	hreq, err := newPost(ctx, target, req.Body)
	if err != nil {
		res.Err = err
		return res
	}
	hreq.Header = wireHeader(c.userAgent, req.WebhookID, tsText, sig, req.Secrets[0])

	resp, err := c.hc.Do(hreq)
	if err != nil {
		res.Err = classify(ctx, err, c.timeout)
		return res
	}
	defer func() {
		// Drain a bounded remainder so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
		_ = resp.Body.Close()
	}()
	res.StatusCode = resp.StatusCode
	res.Response.StatusCode = int32(resp.StatusCode)
	res.Response.Headers = flattenHeaders(resp.Header)
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		res.RetryAfter = ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	body, err := readBody(resp, c.maxBody)
	if int64(len(body)) > c.maxBody {
		body = body[:c.maxBody]
		res.Response.BodyTruncated = true
	}
	// Kept as text: invalid UTF-8 (a binary answer, or a character cut by
	// the cap) becomes U+FFFD, so the record can always be encoded.
	res.Response.Body = validUTF8(string(body))
	if err != nil && !res.Response.BodyTruncated {
		// The status arrived; a broken body is recorded but does not turn a
		// 2xx into a failure.
		res.Response.Error = "read response body: " + classify(ctx, err, c.timeout).Error()
	}
	return res
}

// target returns raw parsed and, with a guard, checked by guard.CheckURL.
// Each distinct URL is parsed and checked once (c.urls), as a hub's URLs are
// sent to again and again: the guard's check depends on the URL alone (the
// addresses a name resolves to are checked when dialled), and refusals are
// not remembered.
func (c *Client) target(raw string) (*url.URL, error) {
	if u := c.urls.get(raw); u != nil {
		return u, nil
	}
	var u *url.URL
	var err error
	if c.guard != nil {
		u, err = c.guard.CheckURL(raw)
	} else if u, err = url.Parse(raw); err != nil {
		err = fmt.Errorf("build request: %w", err)
	}
	if err != nil {
		return nil, err
	}
	c.urls.put(raw, u)
	return u, nil
}

// maxCachedURLs bounds urlCache: past it the cache starts again empty.
const maxCachedURLs = 10000

// urlCache remembers parsed URLs that passed their check. The zero value is
// empty and ready; it is safe for concurrent use.
type urlCache struct {
	m sync.Map // string -> *url.URL, never modified once stored
	n atomic.Int64
}

func (c *urlCache) get(raw string) *url.URL {
	if v, ok := c.m.Load(raw); ok {
		return v.(*url.URL)
	}
	return nil
}

func (c *urlCache) put(raw string, u *url.URL) {
	if c.n.Add(1) > maxCachedURLs {
		c.m.Clear()
		c.n.Store(1)
	}
	c.m.Store(raw, u)
}

// newPost is a POST of body to a copy of target, a URL parsed once for all
// the requests to it (Client.target), rather than parsed again from text.
func newPost(ctx context.Context, target *url.URL, body []byte) (*http.Request, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	u := *target
	u.Host = strings.TrimSuffix(u.Host, ":") // as NewRequest does
	hreq.URL, hreq.Host = &u, u.Host
	return hreq, nil
}

// wireHeader is the header of a webhook POST. Its keys are in the
// canonical form net/http sends (nothing is canonicalized per request) and
// its six values share one backing array (one allocation, not six).
func wireHeader(userAgent, webhookID, timestamp, signature, secret string) http.Header {
	vals := [6]string{"application/json", userAgent, webhookID, timestamp, signature, secret}
	return http.Header{
		"Content-Type":        vals[0:1:1],
		"User-Agent":          vals[1:2:2],
		canonicalID:           vals[2:3:3],
		canonicalTimestamp:    vals[3:4:4],
		canonicalSignature:    vals[4:5:5],
		canonicalSecretHeader: vals[5:6:6],
	}
}

// Canonical forms of the webhook headers, as net/http sends them.
var (
	canonicalID           = http.CanonicalHeaderKey(HeaderID)
	canonicalTimestamp    = http.CanonicalHeaderKey(HeaderTimestamp)
	canonicalSignature    = http.CanonicalHeaderKey(HeaderSignature)
	canonicalSecretHeader = http.CanonicalHeaderKey(HeaderSecret)
)

// finish completes res on every return of Send, and turns a panic into a
// failed attempt.
func (c *Client) finish(res *Result, start time.Time) {
	if p := recover(); p != nil {
		res.Err = fmt.Errorf("%w: %v", errPanic, p)
		res.StatusCode = 0
	}
	res.Duration = time.Since(start)
	res.Response.DurationMs = res.Duration.Milliseconds()
	if res.Err != nil {
		res.Response.Error = res.Err.Error()
	}
}

// readBody reads at most max+1 bytes of the response body, sized from
// Content-Length when the receiver sent one (most answers are tiny or empty).
func readBody(resp *http.Response, max int64) ([]byte, error) {
	limit := max + 1
	if n := resp.ContentLength; n >= 0 && n < limit {
		if n == 0 {
			return nil, nil
		}
		buf := make([]byte, n)
		m, err := io.ReadFull(resp.Body, buf)
		return buf[:m], err
	}
	return io.ReadAll(io.LimitReader(resp.Body, limit))
}

func classify(ctx context.Context, err error, timeout time.Duration) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w after %s: %w", ErrTimeout, timeout, err)
	}
	return err
}

func flattenHeaders(h http.Header) map[string]string {
	if len(h) == 0 {
		return nil
	}
	out := make(map[string]string, len(h))
	for k, v := range h {
		// A receiver may send any bytes; the record keeps valid UTF-8
		// (protobuf strings must be), with U+FFFD for the rest.
		out[validUTF8(k)] = validUTF8(strings.Join(v, ", "))
	}
	return out
}

// validUTF8 returns s with each invalid byte sequence replaced by U+FFFD.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// ParseRetryAfter parses a Retry-After value: delay seconds or an HTTP date
// (relative to now). It returns 0 for an empty, malformed or past value.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		const maxSeconds = int64(1<<63-1) / int64(time.Second)
		if n > maxSeconds {
			n = maxSeconds
		}
		return time.Duration(n) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	if d := t.Sub(now); d > 0 {
		return d
	}
	return 0
}

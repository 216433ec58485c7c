package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"time"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/sink"
)

// hub is one hub configured for a run.
type hub struct {
	id string
	// urls are its healthy callback URLs, each a receiver port of its own.
	urls []string
	// hanging are its URLs that accept connections and never answer.
	hanging []string
}

// hubSpec asks addHubs for hubs of one shape.
type hubSpec struct {
	n       int // hubs
	urls    int // healthy URLs each (new receiver ports)
	hanging int // never-answering URLs each
}

// addHubs configures sp.n hubs with sp.urls new receiver URLs each.
func (s *system) addHubs(ctx context.Context, sp hubSpec) ([]hub, error) {
	urls, err := s.b.listen(sp.n * sp.urls)
	if err != nil {
		return nil, err
	}
	return s.configureHubs(ctx, sp, urls)
}

// configureHubs configures sp.n hubs bench-<run>-<i>, each with sp.urls of
// urls (in order) and sp.hanging never-answering URLs, triggers on, over
// gRPC. It retries each call for up to 30 s while the service is
// unavailable.
func (s *system) configureHubs(ctx context.Context, sp hubSpec, urls []string) ([]hub, error) {
	if len(urls) != sp.n*sp.urls {
		return nil, fmt.Errorf("configure hubs: %d URLs for %d hubs of %d", len(urls), sp.n, sp.urls)
	}
	var hang string
	var err error
	if sp.hanging > 0 {
		if hang, err = listenHanging(ctx); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second+time.Duration(sp.n)*time.Second)
	defer cancel()
	hubs := make([]hub, sp.n)
	for i := range hubs {
		h := &hubs[i]
		h.id = fmt.Sprintf("bench-%s-%d", s.b.runID, s.hubs)
		s.hubs++
		h.urls = urls[i*sp.urls : (i+1)*sp.urls]
		for j := range sp.hanging {
			h.hanging = append(h.hanging, fmt.Sprintf("http://%s/hang-%d-%d", hang, i, j))
		}
		for _, u := range append(h.urls[:len(h.urls):len(h.urls)], h.hanging...) {
			if err := retryCall(ctx, "AddCallbackUrl "+u, func(ctx context.Context) error {
				_, err := s.config.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: h.id, Url: u})
				return err
			}); err != nil {
				return nil, err
			}
		}
		if err := retryCall(ctx, "SetEventsEnabled", func(ctx context.Context) error {
			_, err := s.config.SetEventsEnabled(ctx, &hubhooksv1.SetEventsEnabledRequest{HubId: h.id, Enabled: true})
			return err
		}); err != nil {
			return nil, err
		}
	}
	return hubs, nil
}

// retryCall calls call (each try bounded by 5 s) until it succeeds or ctx
// ends.
func retryCall(ctx context.Context, what string, call func(context.Context) error) error {
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := call(cctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// classWarm is the traffic class of warm-up events.
const classWarm = "w"

// warmUp makes sure every hub delivers before anything is measured: it
// publishes one event to each hub whose healthy URLs have not all received
// a warm-up webhook, and waits up to 3 s, until all have (the config
// reached the expander's and deliverer's caches, connections are open), for
// at most a minute plus 100 ms per hub.
func (s *system) warmUp(ctx context.Context, hubs []hub) error {
	warm := s.b.rx.AddClass(classWarm)
	deadline := time.Now().Add(time.Minute + time.Duration(len(hubs))*100*time.Millisecond)
	pending := hubs
	var seq int64
	for len(pending) > 0 {
		for _, h := range pending {
			m, err := s.b.factory.msg(classWarm, seq, h.id)
			if err != nil {
				return err
			}
			seq++
			if _, err := s.js.PublishMsgAsync(m); err != nil {
				s.b.logf("warm-up publish: %v", err)
			}
		}
		retry := time.Now().Add(3 * time.Second)
		for len(pending) > 0 && time.Now().Before(retry) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			pending = notWarm(warm, pending)
			time.Sleep(5 * time.Millisecond)
		}
		if len(pending) > 0 && time.Now().After(deadline) {
			return fmt.Errorf("warm-up: hub %s (and %d more): no delivery in time: is the pipeline delivering?", pending[0].id, len(pending)-1)
		}
	}
	loggerCaughtUp(ctx, s.metricsURLs(), 15*time.Second)
	return nil
}

// notWarm returns the hubs some healthy URL of which has received no
// webhook of class c.
func notWarm(c *sink.Class, hubs []hub) []hub {
	var out []hub
	for _, h := range hubs {
		for _, u := range h.urls {
			if c.ReceivedAt(destination(u)) == 0 {
				out = append(out, h)
				break
			}
		}
	}
	return out
}

// destination is the sink's name of a receiver URL: host and path.
func destination(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	return p.Host + p.Path
}

// listenHanging accepts connections on a free loopback port and never
// answers: requests read, no response, until ctx ends.
func listenHanging(ctx context.Context) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go func() {
		<-ctx.Done()
		_ = ln.Close()
	}()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_, _ = io.Copy(io.Discard, conn)
			}()
		}
	}()
	return ln.Addr().String(), nil
}

// loggerCaughtUp waits until the logger's consumer on the attempts stream
// has nothing pending (streamBacklog), so Redis holds every entry; false on
// timeout or when the metrics do not say.
func loggerCaughtUp(ctx context.Context, metricsURLs []string, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if n, err := streamBacklog(ctx, metricsURLs, eventbus.StreamAttempts); err == nil && n == 0 {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
}

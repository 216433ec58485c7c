package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hubhooks/hubhooks/pkg/webhook"
)

// receiver prints one line per webhook and answers a fixed status.
type receiver struct {
	secret string
	status int
	quiet  bool
	out    io.Writer
	now    func() time.Time

	mu                      sync.Mutex // serialises output lines
	total, sigOK, sigFailed atomic.Int64
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	rc.total.Add(1)
	var ev webhook.Event
	parseErr := json.Unmarshal(body, &ev)
	sig := ""
	if rc.secret != "" {
		if err := webhook.Verify(rc.secret, r.Header, body, 5*time.Minute, rc.now()); err != nil {
			rc.sigFailed.Add(1)
			sig = " signature=failed(" + err.Error() + ")"
		} else {
			rc.sigOK.Add(1)
			sig = " signature=ok"
		}
	}
	if !rc.quiet {
		line := fmt.Sprintf("%s %s %s type=%s webhook-id=%s domain_event=%s hub=%s%s",
			rc.now().Format("15:04:05.000"), r.Method, r.URL.Path, ev.Type, r.Header.Get(webhook.HeaderID), ev.DomainEvent.ID, ev.HubID, sig)
		if parseErr != nil {
			line += fmt.Sprintf(" body-not-a-webhook-event(%d bytes)", len(body))
		}
		rc.mu.Lock()
		fmt.Fprintln(rc.out, line)
		rc.mu.Unlock()
	}
	w.WriteHeader(rc.status)
}

func (rc *receiver) summary() string {
	s := fmt.Sprintf("received %d webhooks", rc.total.Load())
	if rc.secret != "" {
		s += fmt.Sprintf(", signature ok %d, failed %d", rc.sigOK.Load(), rc.sigFailed.Load())
	}
	return s
}

func runReceive(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hubbench receive", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:9999", "listen address")
	secret := fs.String("secret", "", "whsec_ secret: verify every signature with webhook.Verify and print ok/failed")
	status := fs.Int("status", 200, "HTTP status to answer (e.g. 500 to watch retries, 410 to stop them)")
	quiet := fs.Bool("quiet", false, "print no line per webhook, only a count every 10s and at exit")
	forDur := fs.Duration("for", 0, "stop after this long (0: run until interrupted)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: hubbench receive [-addr 127.0.0.1:9999] [-secret whsec_...] [-status 200] [-quiet] [-for 0]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("receive: unexpected arguments %v", fs.Args())
	}
	if *status < 100 || *status > 599 {
		return fmt.Errorf("receive: -status %d is not an HTTP status", *status)
	}
	if *secret != "" {
		if _, err := webhook.ParseSecret(*secret); err != nil {
			return fmt.Errorf("receive: -secret: %w", err)
		}
	}
	rc := &receiver{secret: *secret, status: *status, quiet: *quiet, out: stdout, now: time.Now}
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("receive: %w", err)
	}
	if *forDur > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *forDur)
		defer cancel()
	}
	srv := &http.Server{Handler: rc, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stderr, "hubbench receive: listening on http://%s (any path), answering %d\n", lis.Addr(), *status)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-errc:
			return err
		case <-tick.C:
			if *quiet {
				fmt.Fprintln(stderr, "hubbench receive:", rc.summary())
			}
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := srv.Shutdown(sctx)
			fmt.Fprintln(stderr, "hubbench receive:", rc.summary())
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			return err
		}
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hubhooks/hubhooks/pkg/urlguard"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/ceiling"
)

// The POST ceiling runs in a child process, "hubbench post": a bare client
// (the deliverer's own webhook.Client, signing every request) and nothing
// else, so that its CPU per POST is the cost a delivery cannot go below,
// measured the way hubd's is (a process of its own beside the receiver).

// runPost is the child: it posts the body in -body-file to -urls for
// -warmup (not counted), then for -duration, and prints the counted
// round's ceiling.Result as JSON, with the CPU this process spent in it.
func runPost(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hubbench post", flag.ContinueOnError)
	fs.SetOutput(stderr)
	urls := fs.String("urls", "", "comma-separated receiver URLs, posted to round-robin")
	bodyFile := fs.String("body-file", "", "file holding the exact body to post")
	concurrency := fs.Int("concurrency", 64, "concurrent senders")
	d := fs.Duration("duration", 5*time.Second, "counted round")
	warm := fs.Duration("warmup", 3*time.Second, "uncounted round before it")
	idPrefix := fs.String("id-prefix", "msg_c", "prefix of each request's webhook-id")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("post: unexpected arguments %v", fs.Args())
	}
	body, err := os.ReadFile(*bodyFile)
	if err != nil {
		return fmt.Errorf("post: %w", err)
	}
	// The same client the deliverer builds (assembly.Sender): the URL guard
	// on, loopback allowed as for the run.
	guard, err := urlguard.New(urlguard.WithAllowedCIDRs("127.0.0.0/8"))
	if err != nil {
		return err
	}
	client, err := webhook.NewClient(webhook.WithGuard(guard))
	if err != nil {
		return err
	}
	cfg := ceiling.HTTPConfig{
		Sender: client, URLs: strings.Split(*urls, ","), Body: body, Secret: webhook.NewSecret(),
		Concurrency: *concurrency, Duration: *warm, IDPrefix: *idPrefix + "w",
	}
	if *warm > 0 {
		if _, err := ceiling.HTTP(ctx, cfg); err != nil {
			return err
		}
	}
	cfg.Duration, cfg.IDPrefix = *d, *idPrefix
	cpu0, err := selfCPU()
	if err != nil {
		return err
	}
	res, err := ceiling.HTTP(ctx, cfg)
	if err != nil {
		return err
	}
	cpu1, err := selfCPU()
	if err != nil {
		return err
	}
	res.CPUSeconds = (cpu1 - cpu0).Seconds()
	return json.NewEncoder(stdout).Encode(res)
}

// selfCPU is the user+system CPU this process has used.
func selfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// bareClient runs the POST ceiling as a child process of this tool.
type bareClient struct {
	urls        []string
	bodyFile    string
	concurrency int
	runID       string
	rounds      int
}

// newBareClient writes body to a temp file for the child; close removes it.
func newBareClient(urls []string, body []byte, concurrency int, runID string) (*bareClient, error) {
	f, err := os.CreateTemp("", "hubbench-body-")
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(body); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return nil, err
	}
	return &bareClient{urls: urls, bodyFile: f.Name(), concurrency: concurrency, runID: runID}, nil
}

func (b *bareClient) close() { _ = os.Remove(b.bodyFile) }

// post measures one round of d after the child's uncounted warm-up.
func (b *bareClient) post(ctx context.Context, d time.Duration) (ceiling.Result, error) {
	exe, err := os.Executable()
	if err != nil {
		return ceiling.Result{}, err
	}
	b.rounds++
	cmd := exec.CommandContext(ctx, filepath.Clean(exe), "post",
		"-urls", strings.Join(b.urls, ","), "-body-file", b.bodyFile,
		"-concurrency", fmt.Sprint(b.concurrency), "-duration", d.String(), "-warmup", ceilingWarmUp(d).String(),
		"-id-prefix", fmt.Sprintf("msg_c%s_%d_", b.runID, b.rounds))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return ceiling.Result{}, fmt.Errorf("bare client: %w: %s", err, strings.TrimSpace(errb.String()))
	}
	var res ceiling.Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return ceiling.Result{}, fmt.Errorf("bare client: decode its result: %w", err)
	}
	if res.Ops == 0 {
		return res, errors.New("bare client: no POST succeeded")
	}
	return res, nil
}

// ceilingWarmUp is how long the POST ceiling runs, uncounted, before its
// measurement: 3 s, or the ceiling's own duration if shorter. A fresh
// process runs its first POSTs slower (connections opening, the receiver's
// maps and the heap growing).
func ceilingWarmUp(d time.Duration) time.Duration { return min(3*time.Second, d) }

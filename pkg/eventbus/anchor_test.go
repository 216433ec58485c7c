package eventbus

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hubhooks/hubhooks/pkg/natstest"
	"github.com/hubhooks/hubhooks/pkg/poll"
)

// TestAnchorKeepsTheLastBlock runs a work queue the way a moderate rate
// does, one message stored and acked at a time. Without an anchor the
// server's file store makes a block file each time the queue empties (the
// control: if a NATS server stops doing so, the anchor may go); with the
// anchor kept, it makes none. One anchor stays, however often it is
// published, and the consumer never sees it.
func TestAnchorKeepsTheLastBlock(t *testing.T) {
	srv, _, js := natstest.Start(t)
	ctx := context.Background()
	if err := Ensure(ctx, js, AttemptsStreamConfig(Options{})); err != nil {
		t.Fatal(err)
	}
	cfg := ConsumerConfig(ConsumerLogger, 30*time.Second, 100)
	cfg.FilterSubject = AttemptSubject("*")
	cons, err := EnsureConsumer(ctx, js, StreamAttempts, cfg)
	if err != nil {
		t.Fatal(err)
	}
	blocks := func() int {
		t.Helper()
		dirs, _ := filepath.Glob(filepath.Join(srv.StoreDir(), "*", "streams", StreamAttempts, "msgs"))
		if len(dirs) != 1 {
			t.Fatalf("the stream's block directory: found %v", dirs)
		}
		files, err := os.ReadDir(dirs[0])
		if err != nil {
			t.Fatal(err)
		}
		newest := 0
		for _, f := range files {
			if n, err := strconv.Atoi(strings.TrimSuffix(f.Name(), ".blk")); err == nil && strings.HasSuffix(f.Name(), ".blk") {
				newest = max(newest, n)
			}
		}
		return newest
	}
	// cycles stores and acks n messages one at a time; it returns how many
	// block files the store made meanwhile.
	cycles := func(n int) int {
		t.Helper()
		before := blocks()
		for i := range n {
			if _, err := js.Publish(ctx, AttemptSubject("hub1"), []byte(strconv.Itoa(i))); err != nil {
				t.Fatal(err)
			}
			b, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			got := 0
			for m := range b.Messages() {
				if m.Subject() != AttemptSubject("hub1") {
					t.Fatalf("the consumer got %s", m.Subject())
				}
				if err := m.DoubleAck(ctx); err != nil {
					t.Fatal(err)
				}
				got++
			}
			if got != 1 {
				t.Fatalf("fetched %d messages, want 1 (%v)", got, b.Error())
			}
		}
		return blocks() - before
	}

	if made := cycles(50); made < 40 {
		t.Fatalf("without an anchor the store made %d block files in 50 cycles, want about one a cycle: has the NATS server stopped replacing an emptied last block?", made)
	}

	actx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		KeepAnchor(actx, js, StreamAttempts, slog.New(slog.DiscardHandler))
	}()
	defer func() { stop(); <-done }()
	st, err := js.Stream(ctx, StreamAttempts)
	if err != nil {
		t.Fatal(err)
	}
	anchors := func() uint64 {
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(AnchorSubject(StreamAttempts)))
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Subjects[AnchorSubject(StreamAttempts)]
	}
	poll.Until(t, 5*time.Second, "the anchor stored", func() bool { return anchors() == 1 })

	if made := cycles(50); made > 2 {
		t.Fatalf("with the anchor the store made %d block files in 50 cycles, want none (or one the anchor had not followed yet)", made)
	}
	time.Sleep(3 * AnchorInterval)
	if n := anchors(); n != 1 {
		t.Fatalf("%d anchors stored after several intervals, want 1", n)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumPending != 0 || info.NumAckPending != 0 {
		t.Fatalf("consumer pending %d, ack pending %d; want 0 and 0 (the anchor is not its)", info.NumPending, info.NumAckPending)
	}
}

package ceiling

import (
	"context"
	"testing"
	"time"

	"github.com/hubhooks/hubhooks/pkg/urlguard"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/sink"
)

func TestHTTP(t *testing.T) {
	s := sink.New(0, "c")
	urls, err := s.Listen(2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	g, err := urlguard.New(urlguard.WithAllowedCIDRs("127.0.0.0/8"))
	if err != nil {
		t.Fatal(err)
	}
	client, err := webhook.NewClient(webhook.WithGuard(g))
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"id":"msg_1","domain_event":{"id":"c-0-0"}}`)
	res, err := HTTP(context.Background(), HTTPConfig{
		Sender: client, URLs: urls, Body: body, Secret: webhook.NewSecret(), Concurrency: 4,
		Duration: 300 * time.Millisecond, IDPrefix: "msg_c",
	})
	if err != nil {
		t.Fatal(err)
	}
	got := s.Class("c").Counts()
	// Requests cut off by the end of the window may reach the sink without
	// their answer being counted: at most one per sender.
	if res.Ops == 0 || res.Errors != 0 || got.Unique < res.Ops || got.Unique > res.Ops+4 || got.Duplicates != 0 {
		t.Errorf("result %+v, sink %+v: want ops > 0, each received once, no errors", res, got)
	}
	if _, err := HTTP(context.Background(), HTTPConfig{}); err == nil {
		t.Errorf("empty config accepted")
	}
}

func TestJetStream(t *testing.T) {
	res, err := JetStream(context.Background(), JetStreamConfig{
		StoreDir: t.TempDir(), MsgBytes: 256, Window: 256, Batch: 128, Duration: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops == 0 || res.Errors != 0 || res.PerSecond <= 0 {
		t.Errorf("result %+v: want messages consumed, no errors", res)
	}
	if _, err := JetStream(context.Background(), JetStreamConfig{}); err == nil {
		t.Errorf("empty config accepted")
	}
}

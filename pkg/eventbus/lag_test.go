package eventbus

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hubhooks/hubhooks/pkg/natstest"
)

func TestLagCollector(t *testing.T) {
	_, _, js := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "LAG", Subjects: []string{"lag.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, "LAG", ConsumerConfig("reader", time.Minute, 10)); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := js.Publish(ctx, "lag.x", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	c, err := NewLagCollector(js, ConsumerRef{Stream: "LAG", Consumer: "reader"}, ConsumerRef{Stream: "LAG", Consumer: "missing"})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	want := `
# HELP hubhooks_consumer_ack_pending_messages Messages the durable consumer delivered that are not acknowledged yet, read from JetStream at scrape time.
# TYPE hubhooks_consumer_ack_pending_messages gauge
hubhooks_consumer_ack_pending_messages{consumer="reader",stream="LAG"} 0
# HELP hubhooks_consumer_info_up 1 when the last scrape read the durable consumer's info from JetStream, 0 when it could not (NATS or the stream unavailable).
# TYPE hubhooks_consumer_info_up gauge
hubhooks_consumer_info_up{consumer="missing",stream="LAG"} 0
hubhooks_consumer_info_up{consumer="reader",stream="LAG"} 1
# HELP hubhooks_consumer_pending_messages Messages of the stream the durable consumer has not delivered yet (its backlog), read from JetStream at scrape time.
# TYPE hubhooks_consumer_pending_messages gauge
hubhooks_consumer_pending_messages{consumer="reader",stream="LAG"} 3
`
	// The server counts a consumer's pending messages a moment after the
	// publishes are acked: poll.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := testutil.GatherAndCompare(reg, strings.NewReader(want))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, bad := range [][]ConsumerRef{nil, {{Stream: "LAG"}}} {
		if _, err := NewLagCollector(js, bad...); err == nil {
			t.Errorf("NewLagCollector(%v) accepted", bad)
		}
	}
}

package publisher_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hubhooks/hubhooks/pkg/cascade"
	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/natsembed"
	"github.com/hubhooks/hubhooks/pkg/publisher"
)

func Example() {
	// An embedded JetStream server stands in for the hub's NATS.
	dir, _ := os.MkdirTemp("", "publisher-example")
	defer os.RemoveAll(dir)
	srv, err := natsembed.Start(natsembed.Config{Listen: "127.0.0.1:0", StoreDir: dir, ServerName: "example"})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	// The expander creates this stream at start-up.
	if err := eventbus.Ensure(ctx, js, eventbus.EventsStreamConfig(cascade.Default().StreamSubjects(), eventbus.Options{})); err != nil {
		log.Fatal(err)
	}

	p, err := publisher.New(js, publisher.WithRetry(5, 100*time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	ev, err := publisher.BillingPlanCreated("hub-42", map[string]any{
		"billingPlan": map[string]any{"id": "plan_1", "name": "Pro"},
	}, publisher.WithID("evt_plan_1_created"), publisher.WithActor("user_7"))
	if err != nil {
		log.Fatal(err)
	}
	ack, err := p.Publish(ctx, ev)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ack.Stream, ack.Duplicate)
	ack, _ = p.Publish(ctx, ev) // the same event again is de-duplicated
	fmt.Println(ack.Stream, ack.Duplicate)
	// Output:
	// HUBHOOKS_EVENTS false
	// HUBHOOKS_EVENTS true
}

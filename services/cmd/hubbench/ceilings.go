package main

import (
	"context"
	"os"
	"time"

	"github.com/hubhooks/hubhooks/pkg/webhook"
	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/ceiling"
	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/sink"
)

// classCeiling is the traffic class of the POST ceiling's webhooks.
const classCeiling = "c"

// ceilings measures the raw POST ceiling (a bare client in a child
// process: the rate and its CPU per POST) and the raw JetStream ceiling
// into b.result, and returns the POST ceiling as a function, to measure
// it again after the run. urls are the receiver URLs the run delivers to.
func (b *bench) ceilings(ctx context.Context, urls []string) (again func(context.Context) (ceiling.Result, error), stop func(), err error) {
	c := b.c
	f := b.factory
	data, err := f.event("x", "x", 0, time.Now()).GetData().GetFields()[f.entity].MarshalJSON()
	if err != nil {
		return nil, nil, err
	}
	ev := webhook.Event{
		ID: "msg_ceiling", Type: f.subject, HubID: "bench-" + b.runID, CreatedAt: time.Now().UTC(), Data: data,
		DomainEvent: webhook.DomainEventRef{ID: sink.EventID(classCeiling, 0, time.Unix(0, 0)), Type: f.subject, OccurredAt: time.Now().UTC(), Actor: "hubbench"},
	}
	body, err := ev.Marshal()
	if err != nil {
		return nil, nil, err
	}
	b.rx.AddClass(classCeiling)
	bc, err := newBareClient(urls, body, c.postConcurrency, b.runID)
	if err != nil {
		return nil, nil, err
	}
	b.logf("ceiling: raw HTTP POSTs from a bare client process for %s after %s of warm-up (%d senders, %d URLs, %d B body)",
		c.ceilingDuration, ceilingWarmUp(c.ceilingDuration), c.postConcurrency, len(urls), len(body))
	again = func(ctx context.Context) (ceiling.Result, error) { return bc.post(ctx, c.ceilingDuration) }
	h, err := again(ctx)
	if err != nil {
		bc.close()
		return nil, nil, err
	}
	b.result.HTTPCeiling = &h

	probe, err := f.msg(classCeiling, 0, "bench")
	if err != nil {
		bc.close()
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "hubbench-js-")
	if err != nil {
		bc.close()
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	b.logf("ceiling: raw JetStream publish+consume for %s (file store, window %d, %d B messages)", c.ceilingDuration, c.window, len(probe.Data))
	j, err := ceiling.JetStream(ctx, ceiling.JetStreamConfig{StoreDir: dir, MsgBytes: len(probe.Data), Window: c.window, Batch: 256, Duration: c.ceilingDuration})
	if err != nil {
		bc.close()
		return nil, nil, err
	}
	b.result.JetStreamCeiling = &j
	return again, bc.close, nil
}

// ceilingAfter measures the POST ceiling again once the system under test
// has stopped (the machine's speed drifts; the ratio uses the mean).
func (b *bench) ceilingAfter(ctx context.Context, again func(context.Context) (ceiling.Result, error)) {
	if again == nil {
		return
	}
	b.logf("ceiling: raw HTTP POSTs again for %s", b.c.ceilingDuration)
	if h, err := again(ctx); err != nil {
		b.result.Notes = append(b.result.Notes, "POST ceiling after the run: "+err.Error())
	} else {
		b.result.HTTPCeilingAfter = &h
	}
}

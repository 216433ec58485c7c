package eventbus

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// An anchor is one message in a work-queue stream that no consumer takes,
// kept in the stream's newest block. Without it, each time a work queue
// empties (after every ack, at a moderate rate) the NATS server's file store
// replaces the stream's last block: it creates a block file and writes a
// tombstone in it, holding the stream's lock, which every publish to the
// stream then waits for. With the anchor there, the last block never
// empties.
//
// The anchor is published again every AnchorInterval with Nats-Rollup: sub,
// which removes the one before it: so it follows the last block as the
// stream grows, and there is one however many replicas keep it.
const AnchorInterval = 250 * time.Millisecond

// Anchor subjects: one per work-queue stream that empties at moderate rates,
// outside every consumer's filter.
const (
	anchorDeliveries = "hubhooks.anchor.deliveries"
	anchorAttempts   = "hubhooks.anchor.attempts"
)

// AnchorSubject is the subject of stream's anchor ("" for a stream without one).
func AnchorSubject(stream string) string {
	switch stream {
	case StreamDeliveries:
		return anchorDeliveries
	case StreamAttempts:
		return anchorAttempts
	}
	return ""
}

// KeepAnchor publishes stream's anchor every AnchorInterval until ctx ends.
// A failed publish costs only the CPU the anchor saves, so it is logged
// (when a run of failures begins and ends) and tried again.
func KeepAnchor(ctx context.Context, js jetstream.JetStream, stream string, log *slog.Logger) {
	subject := AnchorSubject(stream)
	if subject == "" {
		panic(fmt.Sprintf("eventbus: stream %s has no anchor", stream))
	}
	t := time.NewTicker(AnchorInterval)
	defer t.Stop()
	failing := false
	for {
		msg := nats.NewMsg(subject)
		msg.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := js.PublishMsg(pctx, msg)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && !failing:
			failing = true
			log.Warn("publish the stream's anchor failed; trying again", "stream", stream, "err", err)
		case err == nil && failing:
			failing = false
			log.Info("publish the stream's anchor works again", "stream", stream)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

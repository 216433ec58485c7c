package operations

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/hubid"
	"github.com/hubhooks/hubhooks/pkg/routing"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	eventsv1 "github.com/hubhooks/hubhooks/proto/hubhooks/events/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/expander"
)

// Replay limits.
const (
	// replayBatch is how many domain events are read, checked against the
	// log and published together.
	replayBatch = 64
	// replayFetchWait is the longest one read of the events stream waits.
	replayFetchWait = 2 * time.Second
	// replayInFlight bounds the publishes awaiting JetStream's ack.
	replayInFlight = 64
	// maxReplayFilters bounds event_types and urls.
	maxReplayFilters = 200
)

// replayRequest is a validated ReplayDomainEventsRequest.
type replayRequest struct {
	hub          string
	since, until time.Time
	types        map[string]bool // empty: every type
	urlIDs       map[string]bool // empty: every URL
	dry          bool
}

// take is the replay's filter of (webhook event type, URL) pairs.
func (r *replayRequest) take(typ string, u *hubhooksv1.CallbackUrl) bool {
	return (len(r.types) == 0 || r.types[typ]) && (len(r.urlIDs) == 0 || r.urlIDs[u.GetId()])
}

// parseReplay validates req against the hub's configuration.
func (s *Service) parseReplay(req *hubhooksv1.ReplayDomainEventsRequest, cfg *hubhooksv1.HubConfig, now time.Time) (*replayRequest, error) {
	r := &replayRequest{hub: req.GetHubId(), until: now, types: map[string]bool{}, urlIDs: map[string]bool{}, dry: req.GetDryRun()}
	var errs []error
	switch ts := req.GetSince(); {
	case ts == nil:
		errs = append(errs, errors.New("since is required: replay the events stored from this time on"))
	case ts.CheckValid() != nil:
		errs = append(errs, fmt.Errorf("since: %v", ts.CheckValid()))
	default:
		r.since = ts.AsTime()
	}
	if ts := req.GetUntil(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			errs = append(errs, fmt.Errorf("until: %v", err))
		} else {
			r.until = ts.AsTime()
		}
	}
	if !r.since.IsZero() && r.since.After(r.until) {
		errs = append(errs, fmt.Errorf("since %s is after until %s", r.since.Format(time.RFC3339), r.until.Format(time.RFC3339)))
	}
	if len(req.GetEventTypes()) > maxReplayFilters || len(req.GetUrls()) > maxReplayFilters {
		errs = append(errs, fmt.Errorf("event_types and urls: at most %d each", maxReplayFilters))
	}
	known := map[string]bool{}
	for _, t := range s.rules.EventTypes().GetWebhookEventTypes() {
		known[t] = true
	}
	for _, t := range req.GetEventTypes() {
		if !known[t] {
			errs = append(errs, fmt.Errorf("event_types: %q is not a webhook event type; ListEventTypes lists them", clip(t, 128)))
			continue
		}
		r.types[t] = true
	}
	for _, name := range req.GetUrls() {
		i := slices.IndexFunc(cfg.GetCallbackUrls(), func(u *hubhooksv1.CallbackUrl) bool {
			return u.GetId() == name || u.GetUrl() == name
		})
		if i < 0 {
			errs = append(errs, fmt.Errorf("urls: %q is not a callback URL (or id) of hub %s; GetHubConfig lists them", clip(name, 200), r.hub))
			continue
		}
		r.urlIDs[cfg.GetCallbackUrls()[i].GetId()] = true
	}
	if err := errors.Join(errs...); err != nil {
		return nil, invalidError{err}
	}
	return r, nil
}

// subjects are the domain subjects whose rules emit a type r takes: the
// stream is read with them as filter.
func (s *Service) subjects(r *replayRequest) []string {
	var out []string
	for _, rule := range s.rules.EventTypes().GetRules() {
		for _, e := range rule.GetEmits() {
			if len(r.types) == 0 || r.types[e.GetType()] {
				out = append(out, rule.GetDomainSubject())
				break
			}
		}
	}
	return out
}

// replay is ReplayDomainEvents.
func (s *Service) replay(ctx context.Context, req *hubhooksv1.ReplayDomainEventsRequest, send func(*hubhooksv1.ReplayDomainEventsProgress) error) error {
	if err := hubid.Validate(req.GetHubId()); err != nil {
		return invalidError{err}
	}
	cfg, err := s.configs.GetHubConfig(ctx, &hubhooksv1.GetHubConfigRequest{HubId: req.GetHubId()})
	if err != nil {
		return err
	}
	r, err := s.parseReplay(req, cfg, time.Now())
	if err != nil {
		return err
	}
	if !r.dry {
		if _, detail := routing.HubReason(cfg, time.Time{}); detail != "" {
			return preconditionError{detail + ": a replay would be cancelled at once; switch them on first"}
		}
		if err := s.Ready(ctx); err != nil {
			return err
		}
	}
	for id := range r.urlIDs {
		for _, u := range cfg.GetCallbackUrls() {
			if u.GetId() == id && u.GetDisabled() {
				return preconditionError{fmt.Sprintf("callback URL %s is disabled (%s); enable it first", u.GetUrl(), u.GetDisabledReason())}
			}
		}
	}
	rp := &replayRun{s: s, r: r, cfg: cfg, send: send, pace: s.newPacer(r.hub),
		progress: &hubhooksv1.ReplayDomainEventsProgress{DryRun: r.dry}}
	subjects := s.subjects(r)
	if len(subjects) == 0 || len(cfg.GetCallbackUrls()) == 0 {
		rp.progress.Done = true
		return send(rp.progress)
	}
	if err := rp.run(ctx, subjects); err != nil {
		return err
	}
	rp.progress.Done = true
	p := rp.progress
	s.log.Info("replay finished", "hub_id", r.hub, "since", r.since, "until", r.until, "dry_run", r.dry,
		"scanned", p.GetDomainEventsScanned(), "matched", p.GetDomainEventsMatched(), "deliveries", p.GetDeliveries(), "already_replayed", p.GetAlreadyReplayed())
	if !r.dry {
		s.publishOps(&hubhooksv1.OperationalEvent{
			Id: webhook.RandomID("replay_"), HubId: r.hub, Type: hubhooksv1.OperationalEventType_OPERATIONAL_EVENT_TYPE_REPLAY_FINISHED,
			OccurredAt: timestamppb.Now(), Deliveries: p.GetDeliveries(),
			Reason: fmt.Sprintf("replayed the events stored from %s to %s: %d deliveries, %d already replayed",
				r.since.UTC().Format(time.RFC3339), r.until.UTC().Format(time.RFC3339), p.GetDeliveries(), p.GetAlreadyReplayed()),
		})
	}
	return send(p)
}

// replayRun is the state of one ReplayDomainEvents call.
type replayRun struct {
	s        *Service
	r        *replayRequest
	cfg      *hubhooksv1.HubConfig
	send     func(*hubhooksv1.ReplayDomainEventsProgress) error
	pace     *pacer
	progress *hubhooksv1.ReplayDomainEventsProgress
	reported time.Time
	pending  []jetstream.PubAckFuture
}

// run reads the events stream from since with an ordered consumer filtered
// on subjects, until an event stored after until or the end of the stream
// as it was when the replay started.
func (rp *replayRun) run(ctx context.Context, subjects []string) error {
	stream, err := rp.s.js.Stream(ctx, eventbus.StreamEvents)
	if err != nil {
		return fmt.Errorf("open the events stream: %w", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("read the events stream: %w", err)
	}
	if first := info.State.FirstTime; info.State.Msgs > 0 && rp.r.since.Before(first) {
		rp.progress.OldestAvailable = timestamppb.New(first)
	}
	if info.State.Msgs == 0 || (!info.State.LastTime.IsZero() && info.State.LastTime.Before(rp.r.since)) {
		return nil
	}
	lastSeq := info.State.LastSeq
	since := rp.r.since
	cons, err := rp.s.js.OrderedConsumer(ctx, eventbus.StreamEvents, jetstream.OrderedConsumerConfig{
		FilterSubjects: subjects,
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &since,
	})
	if err != nil {
		return fmt.Errorf("read the events stream: %w", err)
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("read the events stream: %w", err)
	}
	rp.progress.DomainEventsTotal = int64(ci.NumPending)
	if ci.NumPending == 0 {
		return nil
	}
	for {
		batch, err := cons.Fetch(replayBatch, jetstream.FetchMaxWait(replayFetchWait))
		if err != nil {
			return fmt.Errorf("read the events stream: %w", err)
		}
		var msgs []jetstream.Msg
		end := false
		for m := range batch.Messages() {
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			if md.Timestamp.After(rp.r.until) || md.Sequence.Stream > lastSeq {
				end = true
				break
			}
			msgs = append(msgs, m)
			if md.NumPending == 0 || md.Sequence.Stream == lastSeq {
				end = true
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read the events stream: %w", err)
		}
		if err := rp.step(ctx, msgs); err != nil {
			return err
		}
		if !end && len(msgs) == 0 {
			// Nothing came: the rest of the range may have aged out of
			// the stream while the replay ran.
			ci, err := cons.Info(ctx)
			end = err == nil && ci.NumPending == 0
		}
		if end {
			return rp.flush(ctx)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// step replays the events of one read: decode the hub's, expand them,
// drop the deliveries the log already has, publish the rest.
func (rp *replayRun) step(ctx context.Context, msgs []jetstream.Msg) error {
	var fanouts []*deliveryv1.DeliveryFanout
	for _, m := range msgs {
		rp.progress.DomainEventsScanned++
		if md, err := m.Metadata(); err == nil {
			rp.progress.Position = timestamppb.New(md.Timestamp)
		}
		ev, err := expander.DecodeEvent(m, rp.s.rules, rp.s.cfg.MaxEventBytes)
		if err != nil {
			if hubOf(m) == rp.r.hub {
				rp.progress.Invalid++
			}
			continue
		}
		if ev.GetHubId() != rp.r.hub {
			continue
		}
		fs, _, err := expander.Expansion{Event: ev, Subject: m.Subject(), Config: rp.cfg, Replay: true, Take: rp.r.take, Limits: rp.s.cfg.ExpansionLimits}.Fanouts(rp.s.rules)
		if err != nil {
			rp.progress.Invalid++
			continue
		}
		if len(fs) > 0 {
			rp.progress.DomainEventsMatched++
		}
		fanouts = append(fanouts, fs...)
	}
	if len(fanouts) > 0 {
		todo, err := rp.notReplayed(ctx, fanouts)
		if err != nil {
			return err
		}
		for _, f := range todo {
			rp.progress.WebhookEvents++
			if !rp.r.dry {
				if err := rp.publish(ctx, f); err != nil {
					return err
				}
			}
			rp.progress.Deliveries += int64(len(f.GetTargets()))
			if err := rp.report(); err != nil {
				return err
			}
		}
	}
	return rp.report()
}

// notReplayed drops from fanouts the targets the log holds an entry of
// (an earlier replay made them), and the fan-outs left with none.
func (rp *replayRun) notReplayed(ctx context.Context, fanouts []*deliveryv1.DeliveryFanout) ([]*deliveryv1.DeliveryFanout, error) {
	var ids []string
	for _, f := range fanouts {
		for _, t := range f.GetTargets() {
			ids = append(ids, t.GetDeliveryId())
		}
	}
	done, err := rp.s.logs.RecordedAll(ctx, rp.r.hub, ids, make([]int32, len(ids)))
	if err != nil {
		return nil, fmt.Errorf("check earlier replays: %w", err)
	}
	out := fanouts[:0]
	i := 0
	for _, f := range fanouts {
		keep := f.Targets[:0]
		for _, t := range f.GetTargets() {
			if done[i] {
				rp.progress.AlreadyReplayed++
			} else {
				keep = append(keep, t)
			}
			i++
		}
		if f.Targets = keep; len(keep) > 0 {
			out = append(out, f)
		}
	}
	return out, nil
}

// publish sends one replayed fan-out once the pacer lets it, waiting for
// JetStream's acks replayInFlight at a time. Its Nats-Msg-Id names its
// targets (two replays of one webhook event to different URLs are not
// duplicates), and the deliverer checks the log before attempting it.
func (rp *replayRun) publish(ctx context.Context, f *deliveryv1.DeliveryFanout) error {
	if err := rp.pace.wait(ctx, len(f.GetTargets())); err != nil {
		return err
	}
	m, err := eventbus.NewFanoutMsg(f)
	if err != nil {
		return err
	}
	m = bulkMsg(m, rp.r.hub)
	m.Header.Set(jetstream.MsgIDHeader, replayMsgID(f))
	m.Header.Set(eventbus.HeaderRecheck, eventbus.RecheckDone)
	if len(rp.pending) >= replayInFlight {
		if err := rp.await(ctx, rp.pending[0]); err != nil {
			return err
		}
		rp.pending = rp.pending[1:]
	}
	fut, err := rp.s.js.PublishMsgAsync(m, jetstream.WithExpectStream(eventbus.StreamDeliveries))
	if err != nil {
		return fmt.Errorf("publish replayed deliveries: %w", err)
	}
	rp.pending = append(rp.pending, fut)
	rp.s.m.replayed.Add(float64(len(f.GetTargets())))
	return nil
}

// flush waits for every publish in flight.
func (rp *replayRun) flush(ctx context.Context) error {
	for _, f := range rp.pending {
		if err := rp.await(ctx, f); err != nil {
			return err
		}
	}
	rp.pending = nil
	return nil
}

func (rp *replayRun) await(ctx context.Context, f jetstream.PubAckFuture) error {
	select {
	case <-f.Ok():
		return nil
	case err := <-f.Err():
		return fmt.Errorf("publish replayed deliveries: %w", err)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// report sends the progress when progressEvery has passed.
func (rp *replayRun) report() error {
	if time.Since(rp.reported) < progressEvery {
		return nil
	}
	rp.reported = time.Now()
	return rp.send(proto.Clone(rp.progress).(*hubhooksv1.ReplayDomainEventsProgress))
}

// replayMsgID is the de-duplication id of a replayed fan-out: its delivery
// ids, hashed.
func replayMsgID(f *deliveryv1.DeliveryFanout) string {
	var b strings.Builder
	for _, t := range f.GetTargets() {
		b.WriteString(t.GetDeliveryId())
		b.WriteByte(0)
	}
	sum := sha256.Sum256([]byte(b.String()))
	return "rpl." + hex.EncodeToString(sum[:16])
}

// hubOf is the hub_id an event the expander refuses names, if its body
// decodes that far ("" otherwise): only to count the hub's invalid events.
func hubOf(m jetstream.Msg) string {
	ev := &eventsv1.DomainEvent{}
	if proto.Unmarshal(m.Data(), ev) != nil || !utf8.ValidString(ev.GetHubId()) {
		ev.Reset()
		_ = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(m.Data(), ev)
	}
	return ev.GetHubId()
}

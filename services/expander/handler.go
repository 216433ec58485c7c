package expander

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"runtime/debug"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/hubhooks/hubhooks/pkg/cascade"
	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/hubid"
	"github.com/hubhooks/hubhooks/pkg/publisher"
	"github.com/hubhooks/hubhooks/pkg/tracing"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	eventsv1 "github.com/hubhooks/hubhooks/proto/hubhooks/events/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// Reason kinds of dead letters: the Hubhooks-Reason header is
// "<kind>: <detail>" and the dead-letter metric is labelled with the kind.
const (
	// ReasonContentType: a Content-Type other than protobuf or JSON.
	ReasonContentType = "content_type"
	// ReasonOversize: a body larger than Config.MaxEventBytes.
	ReasonOversize = "oversize"
	// ReasonDecode: a body that is not a DomainEvent (protojson: unknown fields too).
	ReasonDecode = "decode"
	// ReasonMissingID: no id.
	ReasonMissingID = "missing_id"
	// ReasonBadID: an id longer than publisher.MaxIDLen or not UTF-8.
	ReasonBadID = "bad_id"
	// ReasonMissingHubID: no hub_id.
	ReasonMissingHubID = "missing_hub_id"
	// ReasonBadHubID: a hub_id hubid.Validate refuses.
	ReasonBadHubID = "bad_hub_id"
	// ReasonUnknownSubject: a subject no cascade rule handles.
	ReasonUnknownSubject = "unknown_subject"
	// ReasonTypeMismatch: a type that is set and differs from the subject.
	ReasonTypeMismatch = "type_mismatch"
	// ReasonBadOccurredAt: an occurred_at out of the valid Timestamp range.
	ReasonBadOccurredAt = "bad_occurred_at"
	// ReasonPayload: data the cascade rules cannot turn into payloads.
	ReasonPayload = "payload"
	// ReasonBadActor: an actor longer than publisher.MaxActorLen or not UTF-8.
	ReasonBadActor = "bad_actor"
	// ReasonTooLarge: an event that would expand into more webhooks or
	// bytes than Config.Limits allows.
	ReasonTooLarge = "expansion_too_large"
	// ReasonPanic: the handler panicked.
	ReasonPanic = "panic"
)

// permanentError is a message that can never be processed: it is
// dead-lettered and acknowledged.
type permanentError struct {
	kind   string
	detail string
	// eventID is the id of the event when its body could be decoded.
	eventID string
}

func (e *permanentError) Error() string { return e.kind + ": " + e.detail }

func permanent(kind, format string, args ...any) *permanentError {
	return &permanentError{kind: kind, detail: fmt.Sprintf(format, args...)}
}

// read turns a message taken from the stream into a pending event,
// reading no more of it than its hub needs: a protobuf event's hub_id is
// peeked (peekHubID) and the event decoded by the worker that expands it,
// so the single reader keeps ahead of a flood. Any other event is decoded
// here; one that cannot be decoded keeps its error, to be dead-lettered in
// turn.
func (s *Service) read(msg jetstream.Msg) *pending {
	now := time.Now()
	p := &pending{msg: msg, size: len(msg.Data()), readAt: now, touched: now}
	if hub, ok := s.peekHubID(msg); ok {
		p.hubID = hub
		return p
	}
	p.ev, p.err = s.decodeSafely(msg)
	p.hubID = p.ev.GetHubId()
	return p
}

// hub is the hub whose queue p waits in: "" for an event without one.
func (p *pending) hub() string { return p.hubID }

// peekHubID returns the hub_id of a protobuf domain event without decoding
// the rest (the last hub_id field wins, as in decoding). ok is false for
// any other content type, an oversize body or one that is not well-formed
// protobuf: such events are decoded at once.
func (s *Service) peekHubID(msg jetstream.Msg) (hub string, ok bool) {
	data := msg.Data()
	if len(data) > s.cfg.MaxEventBytes {
		return "", false
	}
	switch ct := msg.Headers().Get(eventbus.HeaderContentType); {
	case ct == "" && looksLikeJSON(data): // JSON without its header (see DecodeEvent)
		return "", false
	case ct != "" && ct != eventbus.ContentTypeProtobuf && ct != "application/x-protobuf":
		return "", false
	}
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return "", false
		}
		data = data[n:]
		if num == hubIDField && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(data)
			if n < 0 {
				return "", false
			}
			hub, ok, data = string(v), true, data[n:]
			continue
		}
		if n = protowire.ConsumeFieldValue(num, typ, data); n < 0 {
			return "", false
		}
		data = data[n:]
	}
	return hub, ok
}

// hubIDField is DomainEvent.hub_id's field number.
const hubIDField = 2

func (s *Service) decodeSafely(msg jetstream.Msg) (ev *eventsv1.DomainEvent, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.cfg.Log.Error("expander: panic while decoding an event", "subject", msg.Subject(), "panic", r, "stack", string(debug.Stack()))
			ev, err = nil, permanent(ReasonPanic, "%v", r)
		}
	}()
	return s.decode(msg)
}

// process handles one event and settles it: ack on success, skip or dead
// letter; nak with delay on a retryable failure. It never panics.
func (s *Service) process(ctx context.Context, p *pending) {
	msg := p.msg
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	err := s.handleSafely(ctx, p)
	var perm *permanentError
	switch {
	case err == nil:
		if aerr := msg.Ack(); aerr != nil {
			s.cfg.Log.Warn("expander ack", "subject", msg.Subject(), "err", aerr)
		}
	case errors.As(err, &perm):
		s.deadLetter(ctx, msg, p.ev, p.hubID, perm)
	default:
		s.m.retried.Inc()
		s.cfg.Log.Warn("expander: event will be retried", "subject", msg.Subject(), "err", err)
		if nerr := msg.NakWithDelay(s.cfg.RetryDelay); nerr != nil {
			s.cfg.Log.Warn("expander nak", "subject", msg.Subject(), "err", nerr)
		}
	}
	s.m.latency.Observe(time.Since(p.readAt).Seconds())
}

func (s *Service) handleSafely(ctx context.Context, p *pending) (err error) {
	if p.ev == nil && p.err == nil {
		p.ev, p.err = s.decodeSafely(p.msg)
	}
	if p.err != nil {
		return p.err
	}
	// The expansion is a span under the publisher's (its trace context in
	// the message headers); the jobs carry it on (DeliveryJob.trace_parent).
	ctx, span := tracing.Start(tracing.Extract(ctx, p.msg.Headers()), "expand "+p.msg.Subject(), trace.WithSpanKind(trace.SpanKindConsumer))
	defer span.End()
	if span.IsRecording() {
		if md, err := p.msg.Metadata(); err == nil {
			tracing.AddEventAt(span, tracing.EventStored, md.Timestamp)
		}
		tracing.AddEventAt(span, tracing.EventRead, p.readAt)
	}
	defer func() {
		if r := recover(); r != nil {
			s.cfg.Log.Error("expander: panic while handling an event", "subject", p.msg.Subject(), "panic", r, "stack", string(debug.Stack()))
			err = permanent(ReasonPanic, "%v", r)
		}
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
	}()
	// A flood's events: those with a backlog of their hub behind them in
	// the read-ahead, and those read back from the events overflow.
	return s.handle(ctx, p.msg, p.ev, p.overflow || p.behind >= s.cfg.OverflowAfter)
}

// deadLetter copies msg to the dead-letter stream with the reason and acks it
// once the copy is stored; if storing fails the message is retried later.
// ev is the decoded event, nil when it could not be decoded.
func (s *Service) deadLetter(ctx context.Context, msg jetstream.Msg, ev *eventsv1.DomainEvent, hub string, perm *permanentError) {
	// A redelivered bad event is dead-lettered once (its id is its sequence).
	dl := eventbus.DeadLetterOf(eventbus.SubjectDeadLetterEvents, msg, eventbus.StreamEvents, perm.Error())
	id := eventIDOf(msg, ev, perm)
	if hub == "" {
		hub = ev.GetHubId()
	}
	hub = truncate(hub, publisher.MaxIDLen)
	// ListDeadLetters answers them, and filters by hub.
	eventbus.SetDeadLetterIDs(dl, id, hub)
	eventbus.FitDeadLetter(dl, s.js.Conn().MaxPayload())
	where := []any{"subject", msg.Subject(), "event_id", id, "hub_id", hub, "stream_seq", streamSeq(msg), "reason", perm.Error()}
	if _, err := s.js.PublishMsg(ctx, dl); err != nil {
		s.m.retried.Inc()
		s.cfg.Log.Warn("expander: dead letter not stored; will retry", append(where, "err", err)...)
		if nerr := msg.NakWithDelay(s.cfg.RetryDelay); nerr != nil {
			s.cfg.Log.Warn("expander nak", "subject", msg.Subject(), "err", nerr)
		}
		return
	}
	s.m.deadLettered.WithLabelValues(perm.kind).Inc()
	s.cfg.Log.Warn("expander: malformed event dead-lettered (hubctl dlq list shows it)", where...)
	if err := msg.Ack(); err != nil {
		s.cfg.Log.Warn("expander ack", "subject", msg.Subject(), "err", err)
	}
}

// streamSeq is msg's sequence in the events stream, 0 when unknown.
func streamSeq(msg jetstream.Msg) uint64 {
	md, err := msg.Metadata()
	if err != nil {
		return 0
	}
	return md.Sequence.Stream
}

// eventIDOf is the id of the event in msg for a log line: ev's, or the
// one perm found, or, when the body could not be decoded, the Nats-Msg-Id
// the publisher set, or the "id" of a JSON body; "" when none says.
func eventIDOf(msg jetstream.Msg, ev *eventsv1.DomainEvent, perm *permanentError) string {
	for _, id := range []string{ev.GetId(), perm.eventID} {
		if id != "" {
			return truncate(id, publisher.MaxIDLen)
		}
	}
	if id := msg.Headers().Get(jetstream.MsgIDHeader); id != "" {
		return truncate(id, publisher.MaxIDLen)
	}
	var body struct {
		ID any `json:"id"`
	}
	if looksLikeJSON(msg.Data()) && json.Unmarshal(msg.Data(), &body) == nil {
		if id, ok := body.ID.(string); ok {
			return truncate(id, publisher.MaxIDLen)
		}
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// decode validates and decodes a domain event.
func (s *Service) decode(msg jetstream.Msg) (*eventsv1.DomainEvent, error) {
	return DecodeEvent(msg, s.rules, s.cfg.MaxEventBytes)
}

// DecodeEvent validates and decodes the domain event of msg, a message of
// the events stream, as the expander does: an event it refuses (and
// dead-letters) gives an error saying why; OperationsService skips those
// when it replays. maxBytes bounds the body.
func DecodeEvent(msg jetstream.Msg, rules *cascade.Rules, maxBytes int) (*eventsv1.DomainEvent, error) {
	data := msg.Data()
	if len(data) > maxBytes {
		return nil, permanent(ReasonOversize, "%d bytes, at most %d", len(data), maxBytes)
	}
	ct := eventbus.ContentTypeProtobuf
	if h := msg.Headers().Get(eventbus.HeaderContentType); h != "" {
		mt, _, err := mime.ParseMediaType(h)
		if err != nil {
			return nil, permanent(ReasonContentType, "unparsable Content-Type %q", h)
		}
		ct = mt
	} else if looksLikeJSON(data) {
		// A protobuf DomainEvent never starts with '{' (its first byte is a
		// field tag), so a body that does is JSON sent without its header
		// (nats pub without -H Content-Type:application/json).
		ct = eventbus.ContentTypeJSON
	}
	ev := &eventsv1.DomainEvent{}
	switch ct {
	case eventbus.ContentTypeProtobuf, "application/x-protobuf":
		if err := proto.Unmarshal(data, ev); err != nil {
			return nil, permanent(ReasonDecode, "protobuf DomainEvent: %v", err)
		}
	case eventbus.ContentTypeJSON:
		if err := protojson.Unmarshal(data, ev); err != nil {
			return nil, permanent(ReasonDecode, "protojson DomainEvent (fields are id, hubId, type, occurredAt, data, actor): %v", err)
		}
	default:
		return nil, permanent(ReasonContentType, "Content-Type %q; use %s or %s", ct, eventbus.ContentTypeProtobuf, eventbus.ContentTypeJSON)
	}
	if err := validate(rules, msg.Subject(), ev); err != nil {
		err.eventID = ev.GetId()
		return nil, err
	}
	return ev, nil
}

// validate checks a decoded domain event against the publisher contract.
func validate(rules *cascade.Rules, subject string, ev *eventsv1.DomainEvent) *permanentError {
	switch id := ev.GetId(); {
	case id == "":
		return permanent(ReasonMissingID, "id is required")
	case len(id) > publisher.MaxIDLen || !utf8.ValidString(id):
		return permanent(ReasonBadID, "id must be 1 to %d characters of UTF-8 (got %d bytes)", publisher.MaxIDLen, len(id))
	}
	if ev.GetHubId() == "" {
		return permanent(ReasonMissingHubID, "hub_id is required")
	}
	if err := hubid.Validate(ev.GetHubId()); err != nil {
		return permanent(ReasonBadHubID, "%v", err)
	}
	if !rules.Has(subject) {
		return permanent(ReasonUnknownSubject, "no cascade rule for subject %q", subject)
	}
	if t := ev.GetType(); t != "" && t != subject {
		return permanent(ReasonTypeMismatch, "type %q contradicts subject %q", t, subject)
	}
	if ev.OccurredAt != nil {
		if err := ev.GetOccurredAt().CheckValid(); err != nil {
			return permanent(ReasonBadOccurredAt, "%v", err)
		}
	}
	if a := ev.GetActor(); len(a) > publisher.MaxActorLen || !utf8.ValidString(a) {
		return permanent(ReasonBadActor, "actor must be at most %d bytes of UTF-8 (got %d bytes): it is copied into every webhook", publisher.MaxActorLen, len(a))
	}
	return nil
}

// looksLikeJSON reports whether data starts, after white space, with '{'.
func looksLikeJSON(data []byte) bool {
	for _, c := range data {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c == '{'
	}
	return false
}

// handle expands ev, decoded from msg, and returns nil (ack), a
// *permanentError (dead letter) or another error (retry). With flooding
// (the hub has a backlog in the read-ahead), its fan-outs go to the hub's
// overflow shard, served after live traffic (eventbus, overflow.go).
func (s *Service) handle(ctx context.Context, msg jetstream.Msg, ev *eventsv1.DomainEvent, flooding bool) error {
	subject := msg.Subject()
	hub := ev.GetHubId()
	cfg, skip := s.hubConfig(ctx, hub)
	if skip != "" {
		s.m.skipped.WithLabelValues(skip).Inc()
		return nil
	}
	// Deliver only to what was configured when the event reached JetStream:
	// an event that arrived while triggers were off, or before a URL was
	// added, stays undelivered there however late it is expanded.
	var arrived time.Time
	redelivered := false
	if md, err := msg.Metadata(); err == nil {
		arrived = md.Timestamp
		redelivered = md.NumDelivered > 1
	}
	fanouts, skip, err := Expansion{Event: ev, Subject: subject, Arrived: arrived, Config: cfg, Limits: s.cfg.Limits}.Fanouts(s.rules)
	if errors.Is(err, ErrTooLarge) {
		return permanent(ReasonTooLarge, "%v", err)
	}
	if err != nil {
		return permanent(ReasonPayload, "%v", err)
	}
	if skip != "" {
		s.m.skipped.WithLabelValues(skip).Inc()
		return nil
	}
	if tp := tracing.TraceParent(ctx); tp != "" {
		for _, f := range fanouts {
			f.GetJob().TraceParent = tp
		}
	}
	jobs, size := 0, 0
	for _, f := range fanouts {
		jobs += len(f.GetTargets())
		size += f.SizeVT()
	}
	sighting := s.sighting(ctx, msg, ev.GetHubId(), ev.GetId(), flooding)
	span := trace.SpanFromContext(ctx)
	tracing.AddEvent(span, tracing.EventSeenAnswered)
	switch sighting {
	case SeenOtherMessage:
		s.m.skipped.WithLabelValues("seen_before").Inc()
		return nil
	case SeenThisMessage:
		redelivered = true
	}
	s.m.webhooks.Add(float64(len(fanouts)))
	if redelivered {
		err := s.publishAlone(ctx, fanouts)
		if err == nil {
			tracing.AddEvent(span, tracing.EventFanoutsStored)
		}
		return err
	}
	// The fan-outs of events expanded at the same time go out together, one
	// message per subject (see sendFanouts); the event is acked once that
	// message is stored.
	to, sender := eventbus.DeliverySubject(hub), s.fanouts
	if flooding {
		to, sender = eventbus.OverflowDeliverySubject(hub), s.floodFanouts
		s.m.overflowed.Inc()
	}
	if err := sender.Add(to, fanouts, jobs, size); err != nil {
		return fmt.Errorf("publish jobs: %w", err)
	}
	tracing.AddEvent(span, tracing.EventFanoutsStored)
	s.m.expanded.Inc()
	return nil
}

// seenTimeout bounds one question to the seen memory; after a failed one
// the expander does not ask for seenPause.
const (
	seenTimeout = 500 * time.Millisecond
	seenPause   = time.Second
)

// sighting asks the seen memory about the event in msg (see Sighting).
// When the memory does not answer, the event is expanded (Unseen): a
// publisher's repeat then reaches receivers with the same webhook-id, which
// they drop, and the event log keeps one entry per delivery.
func (s *Service) sighting(ctx context.Context, msg jetstream.Msg, hub, id string, flood bool) Sighting {
	md, err := msg.Metadata()
	if err != nil {
		return Unseen // not a JetStream message: nothing to tell copies apart
	}
	if time.Now().UnixNano() < s.seenPausedUntil.Load() {
		s.m.seenErrors.Inc()
		return Unseen
	}
	rctx, cancel := context.WithTimeout(ctx, seenTimeout)
	seen, err := s.seen.Remember(rctx, hub, id, md.Sequence.Stream, flood)
	cancel()
	if err != nil {
		// Redis is slow or away: stop asking for a while, so that an outage
		// costs one timeout a pause, not one per event.
		s.seenPausedUntil.Store(time.Now().Add(seenPause).UnixNano())
		s.m.seenErrors.Inc()
		s.cfg.Log.Warn("expander: cannot tell whether a domain event was seen before; expanding it, and the next ones for a while", "hub_id", hub, "event_id", id, "stream_seq", md.Sequence.Stream, "pause", seenPause, "err", err)
		return Unseen
	}
	if seen == SeenOtherMessage {
		s.cfg.Log.Info("expander: domain event published again; not expanded a second time", "hub_id", hub, "event_id", id, "stream_seq", md.Sequence.Stream)
	}
	return seen
}

// sendFanouts publishes the fan-outs of one hub's events as one message on
// subject (the hub's live or overflow subject) and waits for JetStream's
// ack: a batch (no Nats-Msg-Id), or the fan-out alone with its id when
// there is only one. A batch spares JetStream, the expander and the
// deliverer the work of one message per webhook event. Its fan-outs are
// not de-duplicated by id if their event is expanded again after a crash;
// publishAlone marks those for the deliverer to check against the event
// log instead.
func (s *Service) sendFanouts(subject string, events [][]*deliveryv1.DeliveryFanout) error {
	var fs []*deliveryv1.DeliveryFanout
	jobs := 0
	for _, e := range events {
		fs = append(fs, e...)
		for _, f := range e {
			jobs += len(f.GetTargets())
		}
	}
	var m *nats.Msg
	var err error
	if len(fs) == 1 {
		m, err = eventbus.NewFanoutMsg(fs[0])
	} else {
		m, err = eventbus.NewFanoutBatchMsg(fs[0].GetJob().GetHubId(), fs)
	}
	if err != nil {
		return err
	}
	m.Subject = subject
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.PublishTimeout)
	defer cancel()
	if _, err := s.js.PublishMsg(ctx, m, jetstream.WithExpectStream(eventbus.StreamDeliveries)); err != nil {
		return err
	}
	s.m.messages.Inc()
	s.m.jobs.Add(float64(jobs))
	return nil
}

// publishAlone publishes the fan-outs of an event delivered again, each as
// a message of its own with its Nats-Msg-Id (a copy of an earlier lone
// fan-out is dropped by JetStream) and HeaderRecheck (a copy of one that
// went out in a batch is not: the deliverer asks the event log which of its
// jobs are done before it attempts them).
func (s *Service) publishAlone(ctx context.Context, fanouts []*deliveryv1.DeliveryFanout) error {
	type inFlight struct {
		fut  jetstream.PubAckFuture
		jobs int
	}
	pending := make([]inFlight, 0, min(s.cfg.MaxPendingAcks, len(fanouts)))
	wait := func(f inFlight) error {
		select {
		case <-f.fut.Ok():
			s.m.messages.Inc()
			s.m.jobs.Add(float64(f.jobs))
			return nil
		case err := <-f.fut.Err():
			return fmt.Errorf("publish job: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("publish job: waiting for ack: %w", ctx.Err())
		}
	}
	for _, f := range fanouts {
		m, err := eventbus.NewFanoutMsg(f)
		if err != nil {
			return err
		}
		m.Header.Set(eventbus.HeaderRecheck, eventbus.RecheckInFlight)
		if len(pending) >= s.cfg.MaxPendingAcks {
			if err := wait(pending[0]); err != nil {
				return err
			}
			pending = pending[1:]
		}
		fut, err := s.js.PublishMsgAsync(m, jetstream.WithExpectStream(eventbus.StreamDeliveries))
		if err != nil {
			return fmt.Errorf("publish job: %w", err)
		}
		pending = append(pending, inFlight{fut: fut, jobs: len(f.GetTargets())})
	}
	for _, f := range pending {
		if err := wait(f); err != nil {
			return err
		}
	}
	s.m.expanded.Inc()
	return nil
}

// deliverable reports why a hub config gets no webhooks ("" when it does).
func deliverable(cfg *hubhooksv1.HubConfig, known bool) string {
	switch {
	case !known || cfg == nil:
		return "no_config"
	case !cfg.GetEventsEnabled():
		return "disabled"
	case len(cfg.GetCallbackUrls()) == 0:
		return "no_urls"
	}
	return ""
}

// hubConfig returns the config to expand under, or the reason to skip. A
// cached "not deliverable" answer is re-checked against configsvc at most once
// per hub per RecheckInterval (concurrent events of the hub share the check),
// because the cache may lag a change that was just made.
func (s *Service) hubConfig(ctx context.Context, hub string) (*hubhooksv1.HubConfig, string) {
	cached, known := s.configs.Get(hub)
	why := deliverable(cached, known)
	if why == "" {
		return cached, ""
	}
	v, err, _ := s.recheck.Do(hub, func() (any, error) {
		if !s.dueRecheck(hub) {
			return nil, nil
		}
		fctx, cancel := context.WithTimeout(ctx, s.cfg.FetchTimeout)
		defer cancel()
		return s.configs.Fetch(fctx, hub, cached.GetVersion()+1)
	})
	if err != nil {
		s.m.fetchErrors.Inc()
		s.cfg.Log.Warn("expander: config re-check failed; using the cached config", "hub_id", hub, "err", err)
		return nil, why
	}
	if fresh, _ := v.(*hubhooksv1.HubConfig); fresh != nil {
		// Version 0 is configsvc's answer for a hub never configured.
		if why := deliverable(fresh, fresh.GetVersion() > 0); why != "" {
			return nil, why
		}
		return fresh, ""
	}
	// Not due for a re-check: trust the cache (updated by the last re-check).
	if c2, ok2 := s.configs.Get(hub); deliverable(c2, ok2) == "" {
		return c2, ""
	}
	return nil, why
}

// dueRecheck records and reports whether hub may be re-checked now.
func (s *Service) dueRecheck(hub string) bool {
	now := time.Now()
	s.recheckMu.Lock()
	defer s.recheckMu.Unlock()
	if last, ok := s.lastRecheck[hub]; ok && now.Sub(last) < s.cfg.RecheckInterval {
		return false
	}
	if len(s.lastRecheck) >= 4096 {
		for h, t := range s.lastRecheck {
			if now.Sub(t) >= s.cfg.RecheckInterval {
				delete(s.lastRecheck, h)
			}
		}
	}
	s.lastRecheck[hub] = now
	return true
}

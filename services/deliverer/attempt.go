package deliverer

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/tracing"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// An attempt, on every path: check the job against its hub's config
// (prepare), POST it or fail it fast, decide the outcome and store the
// retry if there is one (conclude), publish the record, then ack the job
// (recordAndSettle). An infrastructure error naks the job so it is tried
// again. attemptOnLane and failFast are the two ways in.

// attemptOnLane makes the attempt of h, which holds a slot of its lane. It
// returns once the POST's outcome is decided (and its retry stored), so the
// lane takes its next job while the record waits for its batch; recording
// and settling go on in the background, and h is released once its message
// is settled.
func (s *Service) attemptOnLane(h *heldJob) {
	job := h.job
	cfg, ok := s.prepare(h.msg, job)
	if !ok {
		s.release(h)
		return
	}
	started := startAttempt(job)
	releaseBrake := func() {}
	if h.overflow && s.brake != nil {
		if releaseBrake, ok = s.brake.acquire(s.stopCtx); !ok {
			_ = h.msg.Nak() // stopping
			s.release(h)
			return
		}
	}
	release, ok := s.slots.acquire(s.stopCtx, job.GetHubId())
	if !ok {
		releaseBrake()
		_ = h.msg.Nak() // stopping: another replica (or the restart) makes it
		s.release(h)
		return
	}
	h.park.begin()
	res := s.post(h, webhook.SigningSecrets(cfg, started))
	release()
	releaseBrake()
	switch s.lanes.answered(h.lane, time.Now(), res.Duration, res.Succeeded()) {
	case 1:
		s.metrics.urlLimitChanges.WithLabelValues("up").Inc()
	case -1:
		s.metrics.urlLimitChanges.WithLabelValues("down").Inc()
	}
	msg, parkedEntry := h.msg, h.park.end()
	if parkedEntry != "" {
		// The message is acknowledged; the retry-store entry stands for it.
		msg = parkedMsg{}
	}
	rec, ok := s.conclude(msg, job, res, started)
	if !ok {
		s.release(h)
		return
	}
	s.runners.run(func() {
		defer s.release(h)
		s.recordAndSettle(msg, job, rec, parkedEntry)
	})
}

// failFast makes the attempt of job fail with err without a POST, because
// its URL is known not to answer (its breaker is open, or its lane is
// stuck), and returns once its message is settled. The attempt is recorded
// and retried like any failed one (see outcome for when).
func (s *Service) failFast(msg jobMsg, job *deliveryv1.DeliveryJob, err error) {
	if _, ok := s.prepare(msg, job); !ok {
		return
	}
	started := startAttempt(job)
	_, span := attemptSpan(s.workCtx, job)
	res := s.notPosted(job, err)
	endAttemptSpan(span, res)
	rec, ok := s.conclude(msg, job, res, started)
	if ok {
		s.recordAndSettle(msg, job, rec, "")
	}
}

// prepare returns the config of job's hub for its attempt. It reports false
// when the job ends here, its message settled: nak'ed when the config cannot
// be had, acked with a "cancelled" record when the config no longer allows
// the job.
func (s *Service) prepare(msg jobMsg, job *deliveryv1.DeliveryJob) (*hubhooksv1.HubConfig, bool) {
	if job.GetAttempt() < 1 {
		job.Attempt = 1
	}
	cfg, err := s.hubConfig(job)
	if err != nil {
		s.metrics.handlingErrors.WithLabelValues("config").Inc()
		s.jobLog(job).Warn("fetch hub config; job retried later", "err", err)
		_ = msg.NakWithDelay(jitter(2*time.Second, 0.5))
		return nil, false
	}
	if reason := cancelReason(cfg, job); reason != "" {
		s.cancelJob(msg, job, reason)
		return nil, false
	}
	s.toConfiguredURL(cfg, job)
	return cfg, true
}

// toConfiguredURL points job at the URL its hub's config holds for its
// url_id (cancelReason found it there). A job's own URL is never trusted:
// a job changed on its way cannot send the hub's body, signature and
// secret anywhere else, and a URL changed since the job was made is
// followed.
func (s *Service) toConfiguredURL(cfg *hubhooksv1.HubConfig, job *deliveryv1.DeliveryJob) {
	for _, u := range cfg.GetCallbackUrls() {
		if u.GetId() == job.GetUrlId() {
			if u.GetUrl() != job.GetUrl() {
				s.metrics.urlReplaced.Inc()
				s.jobLog(job).Info("sending to the URL the hub's config holds for the job's url_id, not the job's own", "url_id", job.GetUrlId())
				job.Url = u.GetUrl()
			}
			return
		}
	}
}

// startAttempt returns the attempt's start, which is the first attempt's
// too when job has none yet.
func startAttempt(job *deliveryv1.DeliveryJob) time.Time {
	now := time.Now()
	if job.GetFirstAttemptAt() == nil {
		job.FirstAttemptAt = timestamppb.New(now)
	}
	return now
}

// hubConfig is the config of job's hub, at least the version the job was
// made under: from the cache, or from configsvc when the cache lags (only
// then is a timeout context made: this runs for every job).
func (s *Service) hubConfig(job *deliveryv1.DeliveryJob) (*hubhooksv1.HubConfig, error) {
	if cfg, ok := s.configs.Get(job.GetHubId()); ok && cfg.GetVersion() >= job.GetConfigVersion() {
		return cfg, nil
	}
	ctx, cancel := context.WithTimeout(s.workCtx, s.cfg.OpTimeout)
	defer cancel()
	return s.configs.Fetch(ctx, job.GetHubId(), job.GetConfigVersion())
}

// post POSTs h's job through the circuit breaker of its URL (lane key),
// which counts the result, and returns the result complete with its
// request and response. An open breaker fails the attempt without a POST.
func (s *Service) post(h *heldJob, secrets []string) (res webhook.Result) {
	job := h.job
	s.metrics.inFlight.Inc()
	defer s.metrics.inFlight.Dec()
	ctx, span := attemptSpan(s.workCtx, job)
	defer func() { endAttemptSpan(span, res) }()
	tracing.AddEventAt(span, tracing.EventJobStored, h.stored)
	tracing.AddEventAt(span, tracing.EventJobTaken, h.fetched)
	done, err := s.breakers.allow(h.lane, job.GetHubId(), job.GetUrlId())
	if err != nil {
		return s.notPosted(job, err)
	}
	res = s.sender.Send(ctx, webhook.Request{
		URL: job.GetUrl(), WebhookID: job.GetWebhookEventId(), Body: job.GetBody(), Secrets: secrets,
		OmitRecordedBody: true, // the body sent is the job's (see AttemptRecorded.request)
	})
	if res.Request == nil {
		res.Request = &hubhooksv1.HttpRequest{Url: job.GetUrl(), Method: http.MethodPost}
	}
	if res.Response == nil {
		res.Response = &hubhooksv1.HttpResponse{StatusCode: int32(res.StatusCode)}
		if res.Err != nil {
			res.Response.Error = res.Err.Error()
		}
	}
	done(breakerFailure(res, s.workCtx.Err() != nil))
	s.metrics.latency.WithLabelValues(latencyResult(res)).Observe(res.Duration.Seconds())
	return res
}

// attemptSpan starts the span of one attempt, a child of the job's trace
// (DeliveryJob.trace_parent); the webhook client's HTTP span goes under it.
// With tracing off it is a no-op span and ctx is returned as it is.
func attemptSpan(ctx context.Context, job *deliveryv1.DeliveryJob) (context.Context, trace.Span) {
	ctx, span := tracing.Start(tracing.WithTraceParent(ctx, job.GetTraceParent()), "deliver attempt")
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String("hubhooks.hub_id", job.GetHubId()),
			attribute.String("hubhooks.delivery_id", job.GetDeliveryId()),
			attribute.String("hubhooks.webhook_event_id", job.GetWebhookEventId()),
			attribute.String("hubhooks.event_type", job.GetEventType()),
			attribute.Int("hubhooks.attempt", int(job.GetAttempt())),
		)
	}
	return ctx, span
}

// endAttemptSpan ends an attempt's span with its outcome.
func endAttemptSpan(span trace.Span, res webhook.Result) {
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("http.response.status_code", res.StatusCode))
		switch {
		case res.Err != nil:
			span.SetStatus(codes.Error, res.Err.Error())
		case res.StatusCode < 200 || res.StatusCode > 299:
			span.SetStatus(codes.Error, http.StatusText(res.StatusCode))
		}
	}
	span.End()
}

// notPosted is the result of an attempt failed fast with err: the request
// that was not sent (secret masked) and err as the response's error.
func (s *Service) notPosted(job *deliveryv1.DeliveryJob, err error) webhook.Result {
	s.metrics.latency.WithLabelValues("circuit_open").Observe(0)
	return webhook.Result{
		Request: &hubhooksv1.HttpRequest{
			Url: job.GetUrl(), Method: http.MethodPost,
			Headers: map[string]string{
				"Content-Type":       "application/json",
				webhook.HeaderID:     job.GetWebhookEventId(),
				webhook.HeaderSecret: webhook.MaskSecret,
			},
		},
		Response: &hubhooksv1.HttpResponse{Error: err.Error()},
		Err:      err,
	}
}

// latencyResult labels a POST's duration: success, http_error or error.
func latencyResult(res webhook.Result) string {
	switch {
	case res.Err != nil:
		return "error"
	case !res.Succeeded():
		return "http_error"
	}
	return "success"
}

// conclude turns the result of job's attempt into its record, storing the
// next attempt in the retry store first when the delivery is retrying. It
// reports false when the job ends here, its message nak'ed: the retry could
// not be stored, or the deliverer stopped hard during the POST (the attempt
// is not recorded; another replica makes it again).
func (s *Service) conclude(msg jobMsg, job *deliveryv1.DeliveryJob, res webhook.Result, started time.Time) (*deliveryv1.AttemptRecorded, bool) {
	if s.workCtx.Err() != nil {
		_ = msg.Nak()
		return nil, false
	}
	status, next := s.outcome(job, res, time.Now())
	rec := &deliveryv1.AttemptRecorded{
		Job:       job,
		Attempt:   job.GetAttempt(),
		Status:    status,
		Request:   res.Request,
		Response:  res.Response,
		StartedAt: timestamppb.New(started),
	}
	if status == hubhooksv1.StatusRetrying {
		rec.NextAttemptAt = timestamppb.New(next)
		if standing, err := s.storeRetry(msg, job, next); err != nil {
			s.metrics.handlingErrors.WithLabelValues("store_retry").Inc()
			s.jobLog(job).Warn("store retry; job retried later", "err", err)
			_ = msg.NakWithDelay(backAfter(jitter(2*time.Second, 0.5), standing))
			return nil, false
		}
	}
	return rec, true
}

// recordAndSettle publishes rec, the record of job's attempt (batched),
// removes the retry-store entry of a parked attempt that ended, and acks
// the job; a publish that still fails after recordPatience naks it.
func (s *Service) recordAndSettle(msg jobMsg, job *deliveryv1.DeliveryJob, rec *deliveryv1.AttemptRecorded, parkedEntry string) {
	status := rec.GetStatus()
	if err := s.storeRecord(msg, job, rec); err != nil {
		s.jobLog(job).Warn("publish attempt record; job retried later", "err", err)
		_ = msg.NakWithDelay(jitter(2*time.Second, 0.5))
		return
	}
	if parkedEntry != "" && status != hubhooksv1.StatusRetrying {
		// Final: the parked entry must not bring the attempt back. (A
		// retry replaced it already.) Should this fail, the attempt is made
		// again later: a duplicate, never a loss.
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.OpTimeout)
		if _, err := s.retries.removeEntry(ctx, job.GetHubId(), job.GetDeliveryId(), parkedEntry); err != nil {
			s.metrics.handlingErrors.WithLabelValues("unpark").Inc()
			s.jobLog(job).Warn("remove the parked entry of a finished attempt (it will be attempted again)", "err", err)
		}
		cancel()
	}
	s.metrics.attempts.WithLabelValues(status.APIName()).Inc()
	if status == hubhooksv1.StatusDead {
		s.metrics.dead.Inc()
	}
	s.observer.attempted(job, rec)
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.jobLog(job).Debug("attempt recorded", "status", status.APIName(),
			"http_status", rec.GetResponse().GetStatusCode(), "duration_ms", rec.GetResponse().GetDurationMs())
	}
	s.ack(msg, job)
}

// recordPatience is how long a record's publish is retried before its job
// is handed back. The attempt is made: a job nak'ed now comes back before
// its record can reach the event log, and is POSTed again. Publishes fail
// for seconds while the attempts stream elects a leader (a NATS node's
// death).
const recordPatience = time.Minute

// storeRecord publishes rec (publishRecord), retried with backoff while it
// fails, for up to recordPatience or until the hard stop, telling
// JetStream that msg is in progress meanwhile (a job failed fast is not
// held, so not heartbeated). A retried record may be stored twice (a
// publish that timed out can still be stored); the logger's writes are
// idempotent.
func (s *Service) storeRecord(msg jobMsg, job *deliveryv1.DeliveryJob, rec *deliveryv1.AttemptRecorded) error {
	giveUp := time.Now().Add(recordPatience)
	wait := 100 * time.Millisecond
	for tries := 1; ; tries++ {
		err := s.publishRecord(rec)
		if err == nil || time.Now().After(giveUp) {
			return err
		}
		if tries == 1 {
			s.jobLog(job).Warn("publish attempt record; retrying", "err", err)
		}
		_ = msg.InProgress()
		select {
		case <-s.workCtx.Done():
			return err
		case <-time.After(jitter(wait, 0.5)):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// ack acknowledges the job without waiting for the server's confirmation:
// everything it stands for is already stored, so a lost ack only means the
// job is attempted again (same webhook-id) after the ack wait.
func (s *Service) ack(msg jobMsg, job *deliveryv1.DeliveryJob) {
	if err := msg.Ack(); err != nil {
		s.metrics.handlingErrors.WithLabelValues("ack").Inc()
		s.jobLog(job).Warn("ack delivery job (it may be delivered again)", "err", err)
	}
}

// jobLog is the logger for messages about job, built only when a message
// is logged (most jobs log none).
func (s *Service) jobLog(job *deliveryv1.DeliveryJob) *slog.Logger {
	return s.log.With("hub", job.GetHubId(), "delivery", job.GetDeliveryId(), "attempt", job.GetAttempt())
}

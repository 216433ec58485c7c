package deliverer

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/urlguard"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// handleJob makes one attempt of job and records it. Order on every path:
// store the retry (if any), publish the record (acked by JetStream), then
// ack the job. An infrastructure error naks the job so it is tried again.
// A non-nil failFast makes the attempt fail with that error without a POST
// (the URL is known not to answer). key is the job's laneKey. park, when
// not nil, lets holdLoop take
// a long POST out of the stream (see parkAttempt).
//
// With a non-nil done, handleJob returns once the POST's outcome is decided
// (and its retry stored): publishing the record and acking the job go on in
// a goroutine of their own, so the caller's lane takes its next job while
// the record waits for its batch; done is called once the job is acked or
// nak'ed, on every path. With nil, handleJob returns when the job is
// settled.
func (s *Service) handleJob(msg settler, job *deliveryv1.DeliveryJob, key string, failFast error, park *parkState, done func()) {
	async := false
	defer func() {
		if !async && done != nil {
			done()
		}
	}()
	if job.GetAttempt() < 1 {
		job.Attempt = 1
	}
	cfg, err := s.hubConfig(job)
	if err != nil {
		s.metrics.handlingErrors.WithLabelValues("config").Inc()
		s.jobLog(job).Warn("fetch hub config; job retried later", "err", err)
		_ = msg.NakWithDelay(jitter(2*time.Second, 0.5))
		return
	}
	if reason := cancelReason(cfg, job); reason != "" {
		rec := cancelRecord(job, reason, time.Now())
		if err := s.publishRecord(rec); err != nil {
			s.jobLog(job).Warn("publish cancelled record; job retried later", "err", err)
			_ = msg.NakWithDelay(jitter(2*time.Second, 0.5))
			return
		}
		s.metrics.cancelled.Inc()
		s.metrics.attempts.WithLabelValues(hubhooksv1.StatusCancelled.APIName()).Inc()
		s.ack(msg, job)
		return
	}

	started := time.Now()
	if job.GetFirstAttemptAt() == nil {
		job.FirstAttemptAt = timestamppb.New(started)
	}
	release := func() {}
	if failFast == nil {
		var ok bool
		if release, ok = s.acquireSlots(job.GetHubId(), key); !ok {
			_ = msg.Nak() // stopping: another replica (or the restart) makes it
			return
		}
	}
	park.begin()
	res := s.attempt(job, key, webhook.SigningSecrets(cfg, started), failFast)
	release()
	parked := park.end()
	if parked != "" {
		// The message is acknowledged; the retry-store entry stands for it.
		msg = settled{}
	}
	if s.workCtx.Err() != nil {
		// Hard stop during the POST: the attempt is not recorded; another
		// replica makes it again.
		_ = msg.Nak()
		return
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
		nextJob := proto.Clone(job).(*deliveryv1.DeliveryJob)
		nextJob.Attempt = job.GetAttempt() + 1
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.OpTimeout)
		err := s.retries.store(ctx, nextJob, next)
		cancel()
		if err != nil {
			s.metrics.handlingErrors.WithLabelValues("store_retry").Inc()
			s.jobLog(job).Warn("store retry; job retried later", "err", err)
			_ = msg.NakWithDelay(jitter(2*time.Second, 0.5))
			return
		}
		s.metrics.retries.Inc()
		if time.Until(next) < s.cfg.PollInterval {
			s.wakeScheduler()
		}
	}
	if rec.GetRequest().GetBody() == string(job.GetBody()) {
		// The job carries the body already; the logger keeps it once (a
		// Sender that copied it anyway).
		rec.Request.Body = ""
	}
	if done == nil {
		s.recordAttempt(msg, job, rec, parked, res)
		return
	}
	async = true
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer done()
		s.recordAttempt(msg, job, rec, parked, res)
	}()
}

// recordAttempt publishes the record of an attempt (batched), removes the
// retry-store entry of a parked attempt that ended, and acks the job; a
// failed publish naks it.
func (s *Service) recordAttempt(msg settler, job *deliveryv1.DeliveryJob, rec *deliveryv1.AttemptRecorded, parked string, res webhook.Result) {
	status := rec.GetStatus()
	if err := s.publishRecord(rec); err != nil {
		s.jobLog(job).Warn("publish attempt record; job retried later", "err", err)
		_ = msg.NakWithDelay(jitter(2*time.Second, 0.5))
		return
	}
	if parked != "" && status != hubhooksv1.StatusRetrying {
		// Final: the parked entry must not bring the attempt back. (A
		// retry replaced it already.) Should this fail, the attempt is made
		// again later: a duplicate, never a loss.
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.OpTimeout)
		if _, err := s.retries.removeValue(ctx, job.GetHubId(), job.GetDeliveryId(), parked); err != nil {
			s.metrics.handlingErrors.WithLabelValues("unpark").Inc()
			s.jobLog(job).Warn("remove the parked entry of a finished attempt (it will be attempted again)", "err", err)
		}
		cancel()
	}
	s.metrics.attempts.WithLabelValues(status.APIName()).Inc()
	if status == hubhooksv1.StatusDead {
		s.metrics.dead.Inc()
	}
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.jobLog(job).Debug("attempt recorded", "status", status.APIName(), "http_status", res.StatusCode, "duration", res.Duration)
	}
	s.ack(msg, job)
}

// hubConfig is the config of job's hub, at least the version the job was
// made under: from the cache, or from configsvc when the cache lags (the
// timeout context is only made then: it was 2 % of the deliverer's CPU).
func (s *Service) hubConfig(job *deliveryv1.DeliveryJob) (*hubhooksv1.HubConfig, error) {
	if cfg, ok := s.configs.Get(job.GetHubId()); ok && cfg.GetVersion() >= job.GetConfigVersion() {
		return cfg, nil
	}
	ctx, cancel := context.WithTimeout(s.workCtx, s.cfg.OpTimeout)
	defer cancel()
	return s.configs.Fetch(ctx, job.GetHubId(), job.GetConfigVersion())
}

// slowAnswer is how long an error answer may take before the breaker counts
// it as a failure of the endpoint.
const slowAnswer = 5 * time.Second

// attempt POSTs through the circuit breaker of the URL (lane key).
func (s *Service) attempt(job *deliveryv1.DeliveryJob, key string, secrets []string, failFast error) webhook.Result {
	s.metrics.inFlight.Inc()
	defer s.metrics.inFlight.Dec()
	var done func(error)
	if failFast == nil {
		var err error
		if done, err = s.breaker.allow(key, job.GetHubId(), job.GetUrlId()); err != nil {
			failFast = err
		}
	}
	if failFast != nil {
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
			Response: &hubhooksv1.HttpResponse{Error: failFast.Error()},
			Err:      failFast,
		}
	}
	res := s.sender.Send(s.workCtx, webhook.Request{
		URL: job.GetUrl(), WebhookID: job.GetWebhookEventId(), Body: job.GetBody(), Secrets: secrets,
		OmitRecordedBody: true, // the record carries the job, body included
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
	// The breaker protects the deliverer's capacity, so it counts what costs
	// capacity: timeouts, connection errors, and error answers that were
	// slow. An endpoint that answers an error promptly just follows the retry
	// schedule: it holds no worker, and a flaky endpoint keeps its attempts.
	var berr error
	switch {
	case s.workCtx.Err() != nil:
		berr = errShutdown
	case res.Succeeded():
	case res.Err != nil:
		berr = res.Err
	case res.Duration >= slowAnswer:
		berr = errors.New("slow " + http.StatusText(res.StatusCode))
	}
	done(berr)
	result := "success"
	if res.Err != nil {
		result = "error"
	} else if !res.Succeeded() {
		result = "http_error"
	}
	s.metrics.latency.WithLabelValues(result).Observe(res.Duration.Seconds())
	return res
}

// outcome decides the delivery's status after an attempt and, for
// "retrying", when the next attempt is due.
func (s *Service) outcome(job *deliveryv1.DeliveryJob, res webhook.Result, now time.Time) (hubhooksv1.DeliveryStatus, time.Time) {
	attempt := int(job.GetAttempt())
	switch {
	case res.Succeeded():
		return hubhooksv1.StatusSucceeded, time.Time{}
	case job.GetTest(), res.Gone(),
		errors.Is(res.Err, urlguard.ErrBlocked), errors.Is(res.Err, urlguard.ErrInvalidURL):
		return hubhooksv1.StatusFailed, time.Time{}
	case attempt < len(s.cfg.Schedule):
		delay := jitter(s.cfg.Schedule[attempt], s.cfg.Jitter)
		if (res.StatusCode == http.StatusTooManyRequests || res.StatusCode == http.StatusServiceUnavailable) && res.RetryAfter > 0 {
			delay = max(delay, min(res.RetryAfter, s.cfg.MaxRetryAfter))
		}
		if errors.Is(res.Err, ErrCircuitOpen) || errors.Is(res.Err, ErrEndpointStuck) {
			// Failed fast: the URL cannot be tried before its breaker probes
			// again, so the next attempt waits at least the cool-down and a
			// short schedule is not burnt in seconds.
			// Never earlier than the cool-down (jitter only adds), so the
			// next attempt finds the breaker ready to probe.
			cooldown := s.cfg.BreakerCooldown
			delay = max(delay, jitter(cooldown, s.cfg.Jitter)+time.Duration(float64(cooldown)*s.cfg.Jitter))
		}
		return hubhooksv1.StatusRetrying, now.Add(delay)
	default:
		return hubhooksv1.StatusDead, time.Time{}
	}
}

func cancelRecord(job *deliveryv1.DeliveryJob, reason string, now time.Time) *deliveryv1.AttemptRecorded {
	attempt := job.GetAttempt()
	if attempt < 1 {
		attempt = 1
	}
	return &deliveryv1.AttemptRecorded{
		Job:       job,
		Attempt:   attempt,
		Status:    hubhooksv1.StatusCancelled,
		Request:   &hubhooksv1.HttpRequest{Url: job.GetUrl(), Method: http.MethodPost},
		Response:  &hubhooksv1.HttpResponse{Error: "cancelled: " + reason},
		StartedAt: timestamppb.New(now),
	}
}

// ack acknowledges the job without waiting for the server's confirmation:
// everything it stands for is already stored, so a lost ack only means the
// job is attempted again (same webhook-id) after the ack wait.
func (s *Service) ack(msg settler, job *deliveryv1.DeliveryJob) {
	if err := msg.Ack(); err != nil {
		s.metrics.handlingErrors.WithLabelValues("ack").Inc()
		s.jobLog(job).Warn("ack delivery job (it may be delivered again)", "err", err)
	}
}

// jobLog is the logger for messages about job. It is built only when a
// message is logged: slog.Logger.With on every job was 5% of handle's CPU.
func (s *Service) jobLog(job *deliveryv1.DeliveryJob) *slog.Logger {
	return s.log.With("hub", job.GetHubId(), "delivery", job.GetDeliveryId(), "attempt", job.GetAttempt())
}

func (s *Service) wakeScheduler() {
	select {
	case s.wakeCh <- struct{}{}:
	default:
	}
}

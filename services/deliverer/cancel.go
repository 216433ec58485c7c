package deliverer

import (
	"net/http"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/routing"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// Cancellation: a delivery ends "cancelled" when its hub's config no longer
// allows it (the URL removed, the triggers switched off, the hub deleted).
// A job is checked when it is attempted (cancelJob); pending retries are
// moved to the retry store's cancel outbox when a config change disallows
// them (cancelLoop, in cancelloop.go), and the scheduler publishes their
// records.

// cancelReason says why cfg no longer allows job, or "" when it does. Test
// jobs ignore the triggers toggle, as SendTestEvent does.
func cancelReason(cfg *hubhooksv1.HubConfig, job *deliveryv1.DeliveryJob) string {
	if cfg == nil {
		return "hub configuration deleted"
	}
	if !cfg.GetEventsEnabled() && !job.GetTest() {
		return "event triggers disabled"
	}
	if on, arrived := cfg.GetEventsEnabledAt(), job.GetEventArrivedAt(); on != nil && arrived != nil &&
		!job.GetTest() && job.GetRedeliveryOf() == "" && arrived.AsTime().Before(on.AsTime()) {
		// Expanded under a config that had not yet seen the triggers go off
		// (the caches lag by milliseconds): they were off at some point after
		// the event arrived, which cancels it like any pending delivery.
		return "event triggers were switched off after the event arrived"
	}
	for _, u := range cfg.GetCallbackUrls() {
		if u.GetId() == job.GetUrlId() {
			if job.GetTest() {
				return "" // a test reaches a disabled or filtering URL too
			}
			_, detail := routing.URLReason(u, job.GetEventType(), time.Time{})
			return detail
		}
	}
	return "callback URL removed"
}

// keptURLIDs are the URL ids whose retries cfg still allows (the enabled
// URLs). A URL that takes only some types keeps its id: the retries of the
// other types are found by cancelRetries' second pass (filtersTypes).
func keptURLIDs(cfg *hubhooksv1.HubConfig) []string {
	if cfg == nil || !cfg.GetEventsEnabled() {
		return nil
	}
	ids := make([]string, 0, len(cfg.GetCallbackUrls()))
	for _, u := range cfg.GetCallbackUrls() {
		if !u.GetDisabled() {
			ids = append(ids, u.GetId())
		}
	}
	return ids
}

// needsCancel reports whether a config change disallows some retries.
func needsCancel(old, cur *hubhooksv1.HubConfig) bool {
	if old == nil {
		return false
	}
	if cur == nil || (old.GetEventsEnabled() && !cur.GetEventsEnabled()) {
		return true
	}
	if !cur.GetEventsEnabled() {
		return false
	}
	have := map[string]bool{}
	for _, u := range cur.GetCallbackUrls() {
		have[u.GetId()] = !u.GetDisabled()
	}
	now := map[string]*hubhooksv1.CallbackUrl{}
	for _, u := range cur.GetCallbackUrls() {
		now[u.GetId()] = u
	}
	for _, u := range old.GetCallbackUrls() {
		if u.GetDisabled() {
			continue
		}
		if !have[u.GetId()] {
			return true // removed or disabled
		}
		if takesFewer(u, now[u.GetId()]) {
			return true
		}
	}
	return false
}

// takesFewer reports whether URL cur takes some webhook event type that old
// took: a filter set where there was none, or a type taken out of it.
func takesFewer(old, cur *hubhooksv1.CallbackUrl) bool {
	if len(cur.GetEventTypes()) == 0 {
		return false
	}
	if len(old.GetEventTypes()) == 0 {
		return true
	}
	for _, t := range old.GetEventTypes() {
		if !routing.Accepts(cur, t) {
			return true
		}
	}
	return false
}

// filtersTypes reports whether an enabled URL of cfg takes only some types.
func filtersTypes(cfg *hubhooksv1.HubConfig) bool {
	for _, u := range cfg.GetCallbackUrls() {
		if !u.GetDisabled() && len(u.GetEventTypes()) > 0 {
			return true
		}
	}
	return false
}

// cancelRecord is the record of job cancelled for reason at now.
func cancelRecord(job *deliveryv1.DeliveryJob, reason string, now time.Time) *deliveryv1.AttemptRecorded {
	return &deliveryv1.AttemptRecorded{
		Job:       job,
		Attempt:   max(job.GetAttempt(), 1),
		Status:    hubhooksv1.StatusCancelled,
		Request:   &hubhooksv1.HttpRequest{Url: job.GetUrl(), Method: http.MethodPost},
		Response:  &hubhooksv1.HttpResponse{Error: "cancelled: " + reason},
		StartedAt: timestamppb.New(now),
	}
}

// cancelJob ends job, which its hub's config no longer allows, with a
// "cancelled" record, and acks it; a failed publish naks it.
func (s *Service) cancelJob(msg jobMsg, job *deliveryv1.DeliveryJob, reason string) {
	if err := s.publishRecord(cancelRecord(job, reason, time.Now())); err != nil {
		s.jobLog(job).Warn("publish cancelled record; job retried later", "err", err)
		_ = msg.NakWithDelay(jitter(2*time.Second, 0.5))
		return
	}
	s.countCancelled()
	s.ack(msg, job)
}

func (s *Service) countCancelled() {
	s.metrics.cancelled.Inc()
	s.metrics.attempts.WithLabelValues(hubhooksv1.StatusCancelled.APIName()).Inc()
}

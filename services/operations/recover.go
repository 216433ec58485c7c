package operations

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/hubid"
	"github.com/hubhooks/hubhooks/pkg/routing"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/logger/logstore"
)

// progressEvery is how often bulk operations report progress.
const progressEvery = 500 * time.Millisecond

// recoverPage is how many log entries one step of a recovery reads.
const recoverPage = 200

// maxURLLen bounds the url filter.
const maxURLLen = 4096

// recoverDeliveries is RecoverDeliveries: page through the hub's dead, then
// failed, entries created since Since-RecoverLookback, keep those updated
// (that is, that ended) in [since, until], and deliver each again under
// its recovery id unless that delivery exists. send reports progress.
func (s *Service) recoverDeliveries(ctx context.Context, req *hubhooksv1.RecoverDeliveriesRequest, send func(*hubhooksv1.RecoverDeliveriesProgress) error) error {
	hub := req.GetHubId()
	now := time.Now()
	var errs []error
	if err := hubid.Validate(hub); err != nil {
		errs = append(errs, err)
	}
	since, until := now, now
	switch ts := req.GetSince(); {
	case ts == nil:
		errs = append(errs, errors.New("since is required: recover what became dead or failed from this time on"))
	case ts.CheckValid() != nil:
		errs = append(errs, fmt.Errorf("since: %v", ts.CheckValid()))
	default:
		since = ts.AsTime()
	}
	if ts := req.GetUntil(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			errs = append(errs, fmt.Errorf("until: %v", err))
		} else {
			until = ts.AsTime()
		}
	}
	if since.After(until) {
		errs = append(errs, fmt.Errorf("since %s is after until %s", since.Format(time.RFC3339), until.Format(time.RFC3339)))
	}
	if len(req.GetUrl()) > maxURLLen {
		errs = append(errs, fmt.Errorf("url: %d bytes, at most %d", len(req.GetUrl()), maxURLLen))
	}
	if err := errors.Join(errs...); err != nil {
		return invalidError{err}
	}
	cfg, err := s.configs.GetHubConfig(ctx, &hubhooksv1.GetHubConfigRequest{HubId: hub})
	if err != nil {
		return err
	}
	if !req.GetDryRun() {
		if _, detail := routing.HubReason(cfg, time.Time{}); detail != "" {
			return preconditionError{detail + ": a recovery would be cancelled at once; switch them on first"}
		}
		if err := s.Ready(ctx); err != nil {
			return err
		}
	}
	r := &recovery{
		s: s, hub: hub, cfg: cfg, since: since, dry: req.GetDryRun(), send: send,
		progress: &hubhooksv1.RecoverDeliveriesProgress{DryRun: req.GetDryRun()},
		pace:     s.newPacer(hub),
	}
	for _, st := range []string{hubhooksv1.StatusDead.APIName(), hubhooksv1.StatusFailed.APIName()} {
		q := logstore.Query{HubID: hub, Status: st, URL: req.GetUrl(), Since: since.Add(-s.cfg.RecoverLookback), Until: until, PageSize: recoverPage}
		for {
			page, err := s.logs.List(ctx, q)
			if err != nil {
				return fmt.Errorf("list %s deliveries: %w", st, err)
			}
			if err := r.step(ctx, page.Logs); err != nil {
				return err
			}
			if page.NextPageToken == "" {
				break
			}
			q.PageToken = page.NextPageToken
		}
	}
	r.progress.Done = true
	s.log.Info("recovery finished", "hub_id", hub, "since", since, "until", until, "url", req.GetUrl(), "dry_run", r.dry,
		"matched", r.progress.Matched, "redelivered", r.progress.Redelivered, "already_recovered", r.progress.AlreadyRecovered, "skipped", r.progress.Skipped)
	if !r.dry {
		s.publishOps(&hubhooksv1.OperationalEvent{
			Id: webhook.RandomID("recovery_"), HubId: hub, Type: hubhooksv1.OperationalEventType_OPERATIONAL_EVENT_TYPE_RECOVERY_FINISHED,
			OccurredAt: timestamppb.Now(), Url: req.GetUrl(), Deliveries: r.progress.GetRedelivered(),
			Reason: fmt.Sprintf("recovered what became dead or failed from %s to %s: %d deliveries, %d already recovered",
				since.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339), r.progress.GetRedelivered(), r.progress.GetAlreadyRecovered()),
		})
	}
	return send(r.progress)
}

// recovery is the state of one RecoverDeliveries call.
type recovery struct {
	s        *Service
	hub      string
	cfg      *hubhooksv1.HubConfig
	since    time.Time
	dry      bool
	send     func(*hubhooksv1.RecoverDeliveriesProgress) error
	progress *hubhooksv1.RecoverDeliveriesProgress
	pace     *pacer
	reported time.Time
}

// step recovers the entries of one page.
func (r *recovery) step(ctx context.Context, logs []*hubhooksv1.EventLog) error {
	var todo []*hubhooksv1.EventLog
	for _, l := range logs {
		r.progress.Scanned++
		if l.GetTest() || l.GetUpdatedAt().AsTime().Before(r.since) {
			continue
		}
		r.progress.Matched++
		if !r.urlTakes(l) {
			r.progress.Skipped++
			r.s.m.recovered.WithLabelValues("skipped").Inc()
			continue
		}
		todo = append(todo, l)
	}
	if len(todo) > 0 {
		ids, attempts := make([]string, len(todo)), make([]int32, len(todo))
		for i, l := range todo {
			ids[i] = webhook.RecoveryID(l.GetId())
		}
		// Any entry of the recovery (attempt 0: pending is enough) means
		// it was published before: redeliver writes the entry after.
		done, err := r.s.logs.RecordedAll(ctx, r.hub, ids, attempts)
		if err != nil {
			return fmt.Errorf("check earlier recoveries: %w", err)
		}
		for i, l := range todo {
			if done[i] {
				r.progress.AlreadyRecovered++
				r.s.m.recovered.WithLabelValues("already_recovered").Inc()
				continue
			}
			if !r.dry {
				if err := r.pace.wait(ctx, 1); err != nil {
					return err
				}
				if err := r.s.redeliver(ctx, r.hub, l.GetId(), ids[i]); err != nil {
					return err
				}
				r.s.m.recovered.WithLabelValues("redelivered").Inc()
			}
			r.progress.Redelivered++
			if err := r.report(); err != nil {
				return err
			}
		}
	}
	return r.report()
}

// urlTakes reports whether the hub still has the entry's URL enabled and
// taking its type.
func (r *recovery) urlTakes(l *hubhooksv1.EventLog) bool {
	for _, u := range r.cfg.GetCallbackUrls() {
		if u.GetId() == l.GetUrlId() {
			return routing.Accepts(u, l.GetEventType())
		}
	}
	return false
}

// report sends the progress when progressEvery has passed.
func (r *recovery) report() error {
	if time.Since(r.reported) < progressEvery {
		return nil
	}
	r.reported = time.Now()
	return r.send(proto.Clone(r.progress).(*hubhooksv1.RecoverDeliveriesProgress))
}

// redeliver makes delivery newID, a new delivery of entry oldID's webhook
// event to the same URL: the job (marked for the deliverer to check the log
// first), then its pending entry, so that it shows in the log at once. An
// entry therefore means the job was published; a crash in between leaves
// the entry to the job's first attempt. A pending entry written after that
// attempt's record does not undo it (records apply by attempt number).
func (s *Service) redeliver(ctx context.Context, hub, oldID, newID string) error {
	old, err := s.logs.Get(ctx, hub, oldID)
	if err != nil {
		return fmt.Errorf("read delivery %s: %w", oldID, err)
	}
	now := time.Now()
	job := proto.Clone(old.Job).(*deliveryv1.DeliveryJob)
	job.DeliveryId = newID
	job.RedeliveryOf = oldID
	job.Attempt = 1
	job.Deferrals = 0
	job.CreatedAt = timestamppb.New(now)
	job.ConfigVersion = 0
	job.FirstAttemptAt = nil
	m, err := eventbus.NewJobMsg(job)
	if err != nil {
		return err
	}
	m.Header.Set(eventbus.HeaderRecheck, eventbus.RecheckDone)
	if _, err := s.js.PublishMsg(ctx, bulkMsg(m, hub), jetstream.WithExpectStream(eventbus.StreamDeliveries)); err != nil {
		return fmt.Errorf("publish delivery %s: %w", newID, err)
	}
	pending := &deliveryv1.AttemptRecorded{Job: job, Status: hubhooksv1.StatusPending, StartedAt: timestamppb.New(now)}
	if _, err := s.logs.Write(ctx, []*deliveryv1.AttemptRecorded{pending}); err != nil {
		return fmt.Errorf("store pending delivery %s (it was sent; its first attempt will log it): %w", newID, err)
	}
	return nil
}

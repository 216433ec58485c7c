package logger

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/hubid"
	"github.com/hubhooks/hubhooks/pkg/tracing"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/logger/logstore"
)

// Longest filter values accepted by ListEventLogs.
const (
	maxFilterLen = 256
	maxURLLen    = 2048
)

// server implements EventLogService on the Service's store.
type server struct {
	hubhooksv1.UnimplementedEventLogServiceServer
	svc *Service
}

// ListEventLogs lists a hub's entries newest first. page_size 0 means 50;
// above 500 is clamped to 500. A page may hold fewer entries than asked (even
// none) with a next_page_token when filtering by status or by several fields
// stopped at the scan limit: keep following the token until it is empty.
func (g *server) ListEventLogs(ctx context.Context, req *hubhooksv1.ListEventLogsRequest) (*hubhooksv1.ListEventLogsResponse, error) {
	q, err := listQuery(req)
	if err != nil {
		return nil, err
	}
	page, err := g.svc.store.List(ctx, q)
	if err != nil {
		return nil, g.toStatus(ctx, "list event logs", err)
	}
	return &hubhooksv1.ListEventLogsResponse{EventLogs: page.Logs, NextPageToken: page.NextPageToken}, nil
}

// listQuery validates req and turns it into a store query, or returns
// InvalidArgument with every problem. TailEventLogs uses it for its filters.
func listQuery(req *hubhooksv1.ListEventLogsRequest) (logstore.Query, error) {
	var errs []error
	if err := hubid.Validate(req.GetHubId()); err != nil {
		errs = append(errs, err)
	}
	if st := req.GetStatus(); st != "" {
		if _, ok := hubhooksv1.ParseDeliveryStatus(st); !ok {
			errs = append(errs, fmt.Errorf("status %q: use one of %s", st, strings.Join(hubhooksv1.DeliveryStatusAPINames(), ", ")))
		}
	}
	if c := req.GetResponseClass(); c != "" && !logstore.ValidResponseClass(c) {
		errs = append(errs, fmt.Errorf("response_class %q: use 2xx, 3xx, 4xx, 5xx or none", truncate(c, 40)))
	}
	errs = appendLen(errs, "event_type", req.GetEventType(), maxFilterLen)
	errs = appendLen(errs, "event_id", req.GetEventId(), maxFilterLen)
	errs = appendLen(errs, "domain_event_id", req.GetDomainEventId(), maxFilterLen)
	errs = appendLen(errs, "url", req.GetUrl(), maxURLLen)
	var since, until time.Time
	if ts := req.GetSince(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			errs = append(errs, fmt.Errorf("since: %w", err))
		} else {
			since = ts.AsTime()
		}
	}
	if ts := req.GetUntil(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			errs = append(errs, fmt.Errorf("until: %w", err))
		} else {
			until = ts.AsTime()
		}
	}
	if !since.IsZero() && !until.IsZero() && since.After(until) {
		errs = append(errs, fmt.Errorf("since %s is after until %s", since.Format(time.RFC3339Nano), until.Format(time.RFC3339Nano)))
	}
	size := int(req.GetPageSize())
	switch {
	case size < 0:
		errs = append(errs, fmt.Errorf("page_size %d: must be 0 (default %d) to %d", size, DefaultPageSize, MaxPageSize))
	case size == 0:
		size = DefaultPageSize
	case size > MaxPageSize:
		size = MaxPageSize
	}
	if len(errs) > 0 {
		return logstore.Query{}, status.Error(codes.InvalidArgument, errors.Join(errs...).Error())
	}
	return logstore.Query{
		HubID: req.GetHubId(), EventType: req.GetEventType(), Status: req.GetStatus(),
		URL: req.GetUrl(), EventID: req.GetEventId(), DomainEventID: req.GetDomainEventId(),
		ResponseClass: req.GetResponseClass(), Test: req.Test, Since: since, Until: until,
		PageSize: size, PageToken: req.GetPageToken(),
	}, nil
}

// GetEventLog returns one entry with every attempt; the secret header is
// masked and the request body is sent once (request_body), not in every
// attempt.
func (g *server) GetEventLog(ctx context.Context, req *hubhooksv1.GetEventLogRequest) (*hubhooksv1.GetEventLogResponse, error) {
	if err := validateRef(req.GetHubId(), req.GetId()); err != nil {
		return nil, err
	}
	e, err := g.svc.store.Get(ctx, req.GetHubId(), req.GetId())
	if err != nil {
		return nil, g.toStatus(ctx, "get event log", err)
	}
	return &hubhooksv1.GetEventLogResponse{EventLog: e.Log, Attempts: e.Attempts, RequestBody: string(e.Job.GetBody()), TraceId: tracing.TraceID(e.Job.GetTraceParent())}, nil
}

// Redeliver makes a new delivery of an entry's webhook event to the same
// URL: a new job (new delivery id, redelivery_of = the old id, same webhook
// event id, body, URL and type, attempt 1) stored as a pending entry first
// and then published on the deliveries stream. Test entries may be
// redelivered too; the new entry stays flagged test.
func (g *server) Redeliver(ctx context.Context, req *hubhooksv1.RedeliverRequest) (*hubhooksv1.RedeliverResponse, error) {
	if err := validateRef(req.GetHubId(), req.GetId()); err != nil {
		return nil, err
	}
	old, err := g.svc.store.Get(ctx, req.GetHubId(), req.GetId())
	if err != nil {
		return nil, g.toStatus(ctx, "redeliver", err)
	}
	now := time.Now()
	job := proto.Clone(old.Job).(*deliveryv1.DeliveryJob)
	job.DeliveryId = webhook.RandomID("dlv_")
	job.RedeliveryOf = old.Log.GetId()
	job.Attempt = 1
	job.CreatedAt = timestamppb.New(now)
	job.ConfigVersion = 0
	job.FirstAttemptAt = nil
	pending := &deliveryv1.AttemptRecorded{Job: job, Status: hubhooksv1.StatusPending, StartedAt: timestamppb.New(now)}
	if _, err := g.svc.store.Write(ctx, []*deliveryv1.AttemptRecorded{pending}); err != nil {
		return nil, g.toStatus(ctx, "redeliver: store pending entry", err)
	}
	g.svc.announce([]*deliveryv1.AttemptRecorded{pending})
	if err := g.publish(ctx, job); err != nil {
		g.svc.log.Error("redeliver: publish job failed", "hub_id", job.GetHubId(), "delivery_id", job.GetDeliveryId(), "err", err)
		// Close the pending entry so it does not stay pending forever.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_, _ = g.svc.store.Write(cctx, []*deliveryv1.AttemptRecorded{{
			Job: job, Attempt: 1, Status: hubhooksv1.StatusCancelled, StartedAt: timestamppb.Now(),
			Response: &hubhooksv1.HttpResponse{Error: "redelivery could not be queued: " + err.Error()},
		}})
		if ctx.Err() != nil {
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		return nil, status.Error(codes.Unavailable, "redeliver: the delivery queue is unavailable; try again")
	}
	g.svc.m.redelivered.Inc()
	e, err := g.svc.store.Get(ctx, job.GetHubId(), job.GetDeliveryId())
	if err != nil {
		return nil, g.toStatus(ctx, "redeliver: read new entry", err)
	}
	return &hubhooksv1.RedeliverResponse{EventLog: e.Log}, nil
}

// PurgeEventLogs removes the hub's entries created before req.before, or all
// of them. The admin token is required (the interceptor checks it).
func (g *server) PurgeEventLogs(ctx context.Context, req *hubhooksv1.PurgeEventLogsRequest) (*hubhooksv1.PurgeEventLogsResponse, error) {
	var errs []error
	if err := hubid.Validate(req.GetHubId()); err != nil {
		errs = append(errs, err)
	}
	var before time.Time
	if ts := req.GetBefore(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			errs = append(errs, fmt.Errorf("before: %w", err))
		} else if before = ts.AsTime(); before.IsZero() || before.Unix() <= 0 {
			errs = append(errs, errors.New("before: leave it unset to purge every entry, or give a time after 1970"))
		}
	}
	if len(errs) > 0 {
		return nil, status.Error(codes.InvalidArgument, errors.Join(errs...).Error())
	}
	n, err := g.svc.store.Purge(ctx, req.GetHubId(), before)
	if err != nil {
		return nil, g.toStatus(ctx, "purge event logs", err)
	}
	g.svc.log.Info("event log purged", "hub_id", req.GetHubId(), "before", before, "entries", n)
	return &hubhooksv1.PurgeEventLogsResponse{Purged: int64(n)}, nil
}

// publish sends job to the deliveries stream and waits for the stream's ack.
func (g *server) publish(ctx context.Context, job *deliveryv1.DeliveryJob) error {
	if !g.svc.deliveriesReady.Load() {
		ectx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := g.svc.ensureStreams(ectx)
		cancel()
		if err != nil {
			return err
		}
	}
	msg, err := eventbus.NewJobMsg(job)
	if err != nil {
		return err
	}
	if _, err := g.svc.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("publish delivery job: %w", err)
	}
	return nil
}

func validateRef(hub, id string) error {
	var errs []error
	if err := hubid.Validate(hub); err != nil {
		errs = append(errs, err)
	}
	switch {
	case id == "":
		errs = append(errs, errors.New("id is required (the event log entry id, e.g. dlv_...)"))
	case !logstore.ValidID(id):
		errs = append(errs, fmt.Errorf("id %q: want 1-%d characters of A-Za-z0-9-_", truncate(id, 80), logstore.MaxIDLen))
	}
	if len(errs) > 0 {
		return status.Error(codes.InvalidArgument, errors.Join(errs...).Error())
	}
	return nil
}

func appendLen(errs []error, name, v string, limit int) []error {
	if len(v) > limit {
		errs = append(errs, fmt.Errorf("%s: %d bytes, at most %d", name, len(v), limit))
	}
	return errs
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// toStatus maps store errors to gRPC codes.
func (g *server) toStatus(ctx context.Context, op string, err error) error {
	switch {
	case errors.Is(err, logstore.ErrNotFound):
		return status.Error(codes.NotFound, "event log entry not found for this hub")
	case errors.Is(err, logstore.ErrBadPageToken):
		return status.Error(codes.InvalidArgument, "page_token: not a token from a previous ListEventLogs; start again without one")
	case ctx.Err() != nil:
		return status.FromContextError(ctx.Err()).Err()
	}
	g.svc.log.Error(op+" failed", "err", err)
	return status.Errorf(codes.Unavailable, "%s: event log storage unavailable; try again", op)
}

package deliverer

import (
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/routing"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/internal/urlhealth"
)

// What the deliverer tells operators: each URL's run of failures
// (urlhealth, from which OperationsService disables a URL failing too
// long) and operational events (a circuit opened or closed, a delivery
// dead) on the hub's ops subject. Both are best effort: the delivery they
// describe is settled whatever happens to them.

// observer reports attempt outcomes and breaker changes.
type observer struct {
	js      jetstream.JetStream
	health  *urlhealth.Tracker
	timeout time.Duration
	failed  func(stage string) // counts a failure to report
}

func newObserver(js jetstream.JetStream, health *urlhealth.Tracker, timeout time.Duration, failed func(string)) *observer {
	return &observer{js: js, health: health, timeout: timeout, failed: failed}
}

// attempted notes the outcome of job's attempt (rec): the URL's health,
// and a DELIVERY_DEAD event for a delivery that just died. Test jobs, and
// the deliveries of operational events themselves (no event about events),
// are left out.
func (o *observer) attempted(job *deliveryv1.DeliveryJob, rec *deliveryv1.AttemptRecorded) {
	if job.GetTest() || rec.GetStatus() == hubhooksv1.StatusCancelled {
		return
	}
	ok := rec.GetStatus() == hubhooksv1.StatusSucceeded
	if err := o.health.Note(job.GetHubId(), job.GetUrlId(), ok, time.Now(), o.timeout); err != nil {
		o.failed("url_health")
	}
	if rec.GetStatus() != hubhooksv1.StatusDead || strings.HasPrefix(job.GetEventType(), routing.OperationalPrefix) {
		return
	}
	reason := rec.GetResponse().GetError()
	if reason == "" {
		reason = fmt.Sprintf("HTTP %d", rec.GetResponse().GetStatusCode())
	}
	o.publish(&hubhooksv1.OperationalEvent{
		Id: "dead." + job.GetDeliveryId(), HubId: job.GetHubId(), Type: hubhooksv1.OperationalEventType_OPERATIONAL_EVENT_TYPE_DELIVERY_DEAD,
		OccurredAt: timestamppb.Now(), UrlId: job.GetUrlId(), Url: job.GetUrl(), Reason: "last attempt: " + reason,
		DeliveryId: job.GetDeliveryId(), EventType: job.GetEventType(),
	})
}

// circuitChanged publishes CIRCUIT_OPENED or CIRCUIT_CLOSED for a URL.
func (o *observer) circuitChanged(hub, urlID, url string, opened bool) {
	t, what := hubhooksv1.OperationalEventType_OPERATIONAL_EVENT_TYPE_CIRCUIT_CLOSED, "closed"
	reason := "a probe succeeded: attempts go through again"
	if opened {
		t, what = hubhooksv1.OperationalEventType_OPERATIONAL_EVENT_TYPE_CIRCUIT_OPENED, "opened"
		reason = "consecutive timeouts or connection errors: attempts fail fast for the cool-down"
	}
	now := time.Now()
	o.publish(&hubhooksv1.OperationalEvent{
		Id:    fmt.Sprintf("circuit.%s.%s.%d", what, urlID, now.UnixNano()),
		HubId: hub, Type: t, OccurredAt: timestamppb.New(now), UrlId: urlID, Url: url, Reason: reason,
	})
}

// publish sends ev without waiting for JetStream's ack (PublishMsgAsync):
// it runs on the paths of attempts and breakers.
func (o *observer) publish(ev *hubhooksv1.OperationalEvent) {
	m, err := eventbus.NewOpsMsg(ev)
	if err == nil {
		_, err = o.js.PublishMsgAsync(m)
	}
	if err != nil {
		o.failed("ops_event")
	}
}

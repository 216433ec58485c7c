package operations_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/poll"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/internal/settings"
)

// recoverAll runs a recovery to its end and returns its progress messages.
func (e *env) recoverAll(ctx context.Context, t *testing.T, req *hubhooksv1.RecoverDeliveriesRequest) ([]*hubhooksv1.RecoverDeliveriesProgress, error) {
	t.Helper()
	stream, err := e.ops.RecoverDeliveries(ctx, req)
	if err != nil {
		return nil, err
	}
	var out []*hubhooksv1.RecoverDeliveriesProgress
	for {
		p, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, p)
	}
}

// deadDeliveries publishes n USER.UPDATED events (one webhook event each)
// to a hub whose two URLs fail, and waits until all 2n deliveries are dead.
func deadDeliveries(t *testing.T, e *env, n int) (*receiver, *receiver, *hubhooksv1.HubConfig) {
	t.Helper()
	a, b := newReceiver(t, http.StatusServiceUnavailable), newReceiver(t, http.StatusServiceUnavailable)
	cfg := e.hub(t, "acme", a.URL+"/a", b.URL+"/b")
	for i := range n {
		e.publish(t, "acme", fmt.Sprintf("evt-%d", i), "USER.UPDATED", map[string]any{"user": map[string]any{"id": i}})
	}
	poll.Until(t, 30*time.Second, "every delivery dead", func() bool {
		return len(e.logs(t, &hubhooksv1.ListEventLogsRequest{HubId: "acme", Status: "dead"})) == 2*n
	})
	return a, b, cfg
}

func last(ps []*hubhooksv1.RecoverDeliveriesProgress) *hubhooksv1.RecoverDeliveriesProgress {
	if len(ps) == 0 {
		return nil
	}
	return ps[len(ps)-1]
}

func TestRecoverDeliveries(t *testing.T) {
	e := start(t, nil, 0) // one attempt: a failure is dead at once
	ctx := ctxT(t)
	before := time.Now()
	a, b, cfg := deadDeliveries(t, e, 5)
	since := timestamppb.New(before)
	w := e.watch(t, "acme", nil)

	// A dry run counts and sends nothing.
	ps, err := e.recoverAll(ctx, t, &hubhooksv1.RecoverDeliveriesRequest{HubId: "acme", Since: since, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if p := last(ps); !p.GetDone() || !p.GetDryRun() || p.GetMatched() != 10 || p.GetRedelivered() != 10 || p.GetAlreadyRecovered() != 0 {
		t.Fatalf("dry run: %v", p)
	}
	time.Sleep(300 * time.Millisecond) // anything the dry run sent would arrive now
	if n := len(a.events()) + len(b.events()); n != 10 {
		t.Fatalf("dry run sent: receivers got %d webhooks, want the 10 first attempts", n)
	}

	// One URL only; the receiver answers again.
	a.setStatus(http.StatusOK)
	ps, err = e.recoverAll(ctx, t, &hubhooksv1.RecoverDeliveriesRequest{HubId: "acme", Since: since, Url: a.URL + "/a"})
	if err != nil {
		t.Fatal(err)
	}
	if p := last(ps); p.GetMatched() != 5 || p.GetRedelivered() != 5 {
		t.Fatalf("recover one URL: %v", p)
	}
	// It says so on the hub's operational events; the dry run did not.
	poll.Until(t, 10*time.Second, "RECOVERY_FINISHED", func() bool {
		return len(w.of(hubhooksv1.OperationalEventType_OPERATIONAL_EVENT_TYPE_RECOVERY_FINISHED)) > 0
	})
	if evs := w.of(hubhooksv1.OperationalEventType_OPERATIONAL_EVENT_TYPE_RECOVERY_FINISHED); len(evs) != 1 || evs[0].GetDeliveries() != 5 || evs[0].GetUrl() != a.URL+"/a" {
		t.Errorf("RECOVERY_FINISHED events: %v", evs)
	}
	poll.Until(t, 20*time.Second, "5 recoveries succeeded", func() bool {
		return len(e.logs(t, &hubhooksv1.ListEventLogsRequest{HubId: "acme", Status: "succeeded"})) == 5
	})
	// They went through the hub's overflow shard, behind live traffic.
	if n := e.metric(t, "hubhooks_deliverer_overflow_taken_total"); n == 0 {
		t.Error("the recovered deliveries were not taken from overflow")
	}
	for _, l := range e.logs(t, &hubhooksv1.ListEventLogsRequest{HubId: "acme", Status: "succeeded"}) {
		if l.GetRedeliveryOf() == "" || l.GetId() != webhook.RecoveryID(l.GetRedeliveryOf()) || l.GetUrlId() != cfg.GetCallbackUrls()[0].GetId() {
			t.Errorf("recovered entry %s: redelivery_of %q, url %s", l.GetId(), l.GetRedeliveryOf(), l.GetUrlId())
		}
	}
	// The same request again sends nothing.
	ps, err = e.recoverAll(ctx, t, &hubhooksv1.RecoverDeliveriesRequest{HubId: "acme", Since: since, Url: a.URL + "/a"})
	if err != nil {
		t.Fatal(err)
	}
	if p := last(ps); p.GetMatched() != 5 || p.GetRedelivered() != 0 || p.GetAlreadyRecovered() != 5 {
		t.Fatalf("recover again: %v", p)
	}

	// The whole hub: the other URL's five, which die again; then once
	// more: the five recoveries that died are recovered (not their
	// originals again).
	ps, err = e.recoverAll(ctx, t, &hubhooksv1.RecoverDeliveriesRequest{HubId: "acme", Since: since})
	if err != nil {
		t.Fatal(err)
	}
	if p := last(ps); p.GetMatched() != 10 || p.GetRedelivered() != 5 || p.GetAlreadyRecovered() != 5 {
		t.Fatalf("recover the hub: %v", p)
	}
	poll.Until(t, 20*time.Second, "the other URL's recoveries dead", func() bool {
		return len(e.logs(t, &hubhooksv1.ListEventLogsRequest{HubId: "acme", Status: "dead"})) == 15
	})
	b.setStatus(http.StatusOK)
	ps, err = e.recoverAll(ctx, t, &hubhooksv1.RecoverDeliveriesRequest{HubId: "acme", Since: since})
	if err != nil {
		t.Fatal(err)
	}
	if p := last(ps); p.GetMatched() != 15 || p.GetRedelivered() != 5 || p.GetAlreadyRecovered() != 10 {
		t.Fatalf("recover the recoveries: %v", p)
	}
	poll.Until(t, 20*time.Second, "every webhook event received by both URLs", func() bool {
		return len(e.logs(t, &hubhooksv1.ListEventLogsRequest{HubId: "acme", Status: "succeeded"})) == 10
	})
	// Each URL got each webhook event once more than its failed tries:
	// a: 5 failed + 5 recovered; b: 5 failed + 5 failed recoveries + 5.
	if na, nb := len(a.events()), len(b.events()); na != 10 || nb != 15 {
		t.Errorf("receivers got %d and %d webhooks, want 10 and 15", na, nb)
	}
	for _, ev := range a.events() {
		if !strings.HasPrefix(ev.ID, "msg_") {
			t.Errorf("a recovered webhook's id %q: want the original webhook event id", ev.ID)
		}
	}

	// What ended before since is not recovered.
	ps, err = e.recoverAll(ctx, t, &hubhooksv1.RecoverDeliveriesRequest{HubId: "acme", Since: timestamppb.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if p := last(ps); p.GetMatched() != 0 {
		t.Errorf("since now: %v", p)
	}
}

func TestRecoverDeliveriesRefusals(t *testing.T) {
	e := start(t, nil)
	ctx := ctxT(t)
	e.hub(t, "acme", "https://a.example.com/")
	for _, tc := range []struct {
		name string
		req  *hubhooksv1.RecoverDeliveriesRequest
		code codes.Code
		want string
	}{
		{"no since", &hubhooksv1.RecoverDeliveriesRequest{HubId: "acme"}, codes.InvalidArgument, "since is required"},
		{"since after until", &hubhooksv1.RecoverDeliveriesRequest{HubId: "acme", Since: timestamppb.Now(), Until: timestamppb.New(time.Now().Add(-time.Hour))}, codes.InvalidArgument, "after until"},
		{"bad hub", &hubhooksv1.RecoverDeliveriesRequest{HubId: "", Since: timestamppb.Now()}, codes.InvalidArgument, "hub_id"},
	} {
		_, err := e.recoverAll(ctx, t, tc.req)
		if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %s saying %q", tc.name, err, tc.code, tc.want)
		}
	}
	if _, err := e.Config.SetEventsEnabled(ctx, &hubhooksv1.SetEventsEnabledRequest{HubId: "acme"}); err != nil {
		t.Fatal(err)
	}
	_, err := e.recoverAll(ctx, t, &hubhooksv1.RecoverDeliveriesRequest{HubId: "acme", Since: timestamppb.New(time.Now().Add(-time.Hour))})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "switch them on") {
		t.Errorf("triggers off: %v, want FailedPrecondition", err)
	}
}

// A recovery cancelled half-way and run again delivers each webhook event
// once: what the first run sent is not sent again.
func TestRecoveryCancelledAndResumed(t *testing.T) {
	e := start(t, func(s *settings.Settings) { s.BulkRate = 10 }, 0)
	a, b, _ := deadDeliveries(t, e, 15)
	a.setStatus(http.StatusOK)
	b.setStatus(http.StatusOK)
	since := timestamppb.New(time.Now().Add(-time.Hour))
	ctx, cancel := context.WithCancel(ctxT(t))
	stream, err := e.ops.RecoverDeliveries(ctx, &hubhooksv1.RecoverDeliveriesRequest{HubId: "acme", Since: since})
	if err != nil {
		t.Fatal(err)
	}
	for {
		p, err := stream.Recv()
		if err != nil {
			t.Fatalf("progress: %v", err)
		}
		if p.GetRedelivered() >= 3 {
			break
		}
	}
	cancel()
	// The server notices the cancellation and stops sending.
	var sent int
	poll.Until(t, 10*time.Second, "the recovery stops", func() bool {
		n := len(a.events()) + len(b.events())
		stable := n == sent
		sent = n
		time.Sleep(300 * time.Millisecond)
		return stable && len(a.events())+len(b.events()) == n
	})
	if sent-30 >= 30 {
		t.Fatalf("the cancelled recovery sent all %d", sent-30)
	}
	ps, err := e.recoverAll(ctxT(t), t, &hubhooksv1.RecoverDeliveriesRequest{HubId: "acme", Since: since})
	if err != nil {
		t.Fatal(err)
	}
	if p := last(ps); p.GetRedelivered()+p.GetAlreadyRecovered() != 30 || p.GetAlreadyRecovered() == 0 {
		t.Fatalf("resumed: %v", p)
	}
	poll.Until(t, 20*time.Second, "30 recoveries succeeded", func() bool {
		return len(e.logs(t, &hubhooksv1.ListEventLogsRequest{HubId: "acme", Status: "succeeded"})) == 30
	})
	seen := map[string]int{}
	for _, r := range []*receiver{a, b} {
		for i, ev := range r.events() {
			if i >= 15 { // after the first, failed attempts
				seen[r.URL+ev.ID]++
			}
		}
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s recovered %d times", k, n)
		}
	}
	if len(seen) != 30 {
		t.Errorf("%d webhook events recovered, want 30", len(seen))
	}
}

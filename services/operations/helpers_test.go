package operations_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/hubhooks/hubhooks/pkg/webhook"
	eventsv1 "github.com/hubhooks/hubhooks/proto/hubhooks/events/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/hubd/hubdtest"
	"github.com/hubhooks/hubhooks/services/internal/settings"
)

// env is a test hubd with an OperationsService client.
type env struct {
	*hubdtest.Hub
	ops hubhooksv1.OperationsServiceClient
}

func start(t *testing.T, tune func(*settings.Settings), schedule ...time.Duration) *env {
	t.Helper()
	h := hubdtest.Start(t, hubdtest.Options{Schedule: schedule, Tune: tune})
	return &env{Hub: h, ops: hubhooksv1.NewOperationsServiceClient(h.Conn)}
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// hub configures a hub with the given URLs, triggers on, and returns its
// config.
func (e *env) hub(t *testing.T, hub string, urls ...string) *hubhooksv1.HubConfig {
	t.Helper()
	ctx := ctxT(t)
	for _, u := range urls {
		if _, err := e.Config.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: hub, Url: u}); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := e.Config.SetEventsEnabled(ctx, &hubhooksv1.SetEventsEnabledRequest{HubId: hub, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// publish publishes a domain event as a hub domain does.
func (e *env) publish(t *testing.T, hub, id, subject string, data map[string]any) {
	t.Helper()
	st, err := structpb.NewStruct(data)
	if err != nil {
		t.Fatal(err)
	}
	b, err := proto.Marshal(&eventsv1.DomainEvent{Id: id, HubId: hub, Type: subject, Data: st})
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(subject)
	m.Header.Set(jetstream.MsgIDHeader, id)
	m.Header.Set("Content-Type", "application/protobuf")
	m.Data = b
	if _, err := e.JS.PublishMsg(ctxT(t), m); err != nil {
		t.Fatalf("publish %s: %v", subject, err)
	}
}

// logs lists every entry of hub matching req's filters.
func (e *env) logs(t *testing.T, req *hubhooksv1.ListEventLogsRequest) []*hubhooksv1.EventLog {
	t.Helper()
	var out []*hubhooksv1.EventLog
	req.PageSize = 500
	for {
		resp, err := e.Logs.ListEventLogs(ctxT(t), req)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, resp.GetEventLogs()...)
		if resp.GetNextPageToken() == "" {
			return out
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

// receiver records the webhooks it gets and answers status.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []webhook.Event
	status int
}

func newReceiver(t *testing.T, status int) *receiver {
	t.Helper()
	r := &receiver{status: status}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var ev webhook.Event
		_ = json.Unmarshal(body, &ev)
		r.mu.Lock()
		r.got = append(r.got, ev)
		st := r.status
		r.mu.Unlock()
		w.WriteHeader(st)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) setStatus(s int) {
	r.mu.Lock()
	r.status = s
	r.mu.Unlock()
}

func (r *receiver) events() []webhook.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]webhook.Event(nil), r.got...)
}

// skippedDisabled is how many events the expander skipped because their
// hub's triggers were off.
func (e *env) skippedDisabled(t *testing.T) float64 {
	return e.metric(t, `hubhooks_expander_events_skipped_total{reason="disabled"}`)
}

// metric is the value of series (name and labels) in hubd's /metrics, 0
// when it has none.
func (e *env) metric(t *testing.T, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + e.HTTPAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hubhooks/hubhooks/pkg/cascade"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	eventsv1 "github.com/hubhooks/hubhooks/proto/hubhooks/events/v1"
	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/sink"
)

func TestReceiverPrintsAndVerifies(t *testing.T) {
	secret := webhook.NewSecret()
	now := time.Unix(1_800_000_000, 0)
	var out bytes.Buffer
	rc := &receiver{secret: secret, status: http.StatusAccepted, out: &out, now: func() time.Time { return now }}
	body := []byte(`{"id":"msg_1","type":"USER.UPDATED","hub_id":"acme","data":{},"domain_event":{"id":"evt-1","type":"USER.UPDATED"}}`)
	send := func(sign string) int {
		t.Helper()
		sig, err := webhook.Sign(sign, "msg_1", now, body)
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, "/hooks", bytes.NewReader(body))
		req.Header.Set(webhook.HeaderID, "msg_1")
		req.Header.Set(webhook.HeaderTimestamp, "1800000000")
		req.Header.Set(webhook.HeaderSignature, sig)
		w := httptest.NewRecorder()
		rc.ServeHTTP(w, req)
		return w.Code
	}
	if got := send(secret); got != http.StatusAccepted {
		t.Errorf("status %d, want 202", got)
	}
	if got := send(webhook.NewSecret()); got != http.StatusAccepted {
		t.Errorf("status %d, want 202", got)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got:\n%s", out.String())
	}
	for _, want := range []string{"type=USER.UPDATED", "webhook-id=msg_1", "domain_event=evt-1", "hub=acme", "signature=ok"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("line %q lacks %q", lines[0], want)
		}
	}
	if !strings.Contains(lines[1], "signature=failed") {
		t.Errorf("line %q: want signature=failed", lines[1])
	}
	if s := rc.summary(); s != "received 2 webhooks, signature ok 1, failed 1" {
		t.Errorf("summary %q", s)
	}
}

func TestRunReceiveFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"bad status", []string{"-status", "42"}},
		{"bad secret", []string{"-secret", "nope"}},
		{"extra args", []string{"x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if err := runReceive(context.Background(), append(tt.args, "-addr", "127.0.0.1:0"), &out, &errb); err == nil {
				t.Errorf("accepted %v", tt.args)
			}
		})
	}
	// It stops by itself with -for.
	var out, errb bytes.Buffer
	if err := runReceive(context.Background(), []string{"-addr", "127.0.0.1:0", "-for", "50ms"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errb.String(), "received 0 webhooks") {
		t.Errorf("stderr %q lacks the summary", errb.String())
	}
}

func TestParsePids(t *testing.T) {
	got, err := parsePids("expander=12, 34 ," + "self=" + strconv.Itoa(os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0] != (proc{"expander", 12}) || got[1].pid != 34 || got[2].name != "self" {
		t.Errorf("parsePids = %+v", got)
	}
	for _, bad := range []string{"x=y", "0", "a=-3"} {
		if _, err := parsePids(bad); err == nil {
			t.Errorf("parsePids(%q) accepted", bad)
		}
	}
}

func TestEventFactory(t *testing.T) {
	rules := cascade.Default()
	tests := []struct {
		subject     string
		wantEmitted int
	}{
		{"USER.UPDATED", 1},
		{"API.CREATED", 6},
	}
	for _, tt := range tests {
		t.Run(tt.subject, func(t *testing.T) {
			f, err := newEventFactory(rules, tt.subject, 512)
			if err != nil {
				t.Fatal(err)
			}
			m, err := f.msg(classRun, 7, "hub-1")
			if err != nil {
				t.Fatal(err)
			}
			id := m.Header.Get("Nats-Msg-Id")
			class, seq, sent, ok := sink.ParseEventID(id)
			if !ok || class != classRun || seq != 7 || time.Since(sent) > time.Minute {
				t.Errorf("Nats-Msg-Id %q does not carry the run class, seq and publish time", id)
			}
			if m.Subject != tt.subject {
				t.Errorf("subject %q", m.Subject)
			}
			ev := &eventsv1.DomainEvent{}
			if err := proto.Unmarshal(m.Data, ev); err != nil {
				t.Fatal(err)
			}
			if ev.GetId() != id || ev.GetHubId() != "hub-1" || ev.GetType() != tt.subject {
				t.Errorf("domain event %v does not match the message", ev)
			}
			entity := ev.GetData().GetFields()[f.entity].GetStructValue().GetFields()
			if got := int64(entity["sentAt"].GetNumberValue()); got != sent.UnixNano() {
				// float64 keeps ~15-16 digits: allow sub-microsecond rounding.
				if d := got - sent.UnixNano(); d > 1000 || d < -1000 {
					t.Errorf("data.%s.sentAt = %d, want %d", f.entity, got, sent.UnixNano())
				}
			}
			emitted, err := rules.Expand(tt.subject, ev.GetData())
			if err != nil {
				t.Fatal(err)
			}
			if len(emitted) != tt.wantEmitted {
				t.Errorf("emits %d webhook events, want %d", len(emitted), tt.wantEmitted)
			}
			// The entity payload is about the requested size.
			if n := len(emitted[0].Data); n < 480 || n > 560 {
				t.Errorf("first webhook payload is %d bytes, want about 512", n)
			}
		})
	}
	if _, err := newEventFactory(rules, "NOPE.NOPE", 10); err == nil {
		t.Errorf("unknown subject accepted")
	}
}

func TestBenchConfigValidate(t *testing.T) {
	ok := benchConfig{duration: time.Second, hubs: 1, urls: 5, payload: 512, window: 10, target: "hubd", ceilingDuration: time.Second, drainTimeout: time.Second}
	if err := ok.validate(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	tests := []struct {
		name string
		mod  func(*benchConfig)
	}{
		{"zero duration", func(c *benchConfig) { c.duration = 0 }},
		{"six urls", func(c *benchConfig) { c.urls = 6 }},
		{"external without addresses", func(c *benchConfig) { c.target = "external" }},
		{"unknown target", func(c *benchConfig) { c.target = "x" }},
		{"negative rate", func(c *benchConfig) { c.rate = -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mod(&c)
			if err := c.validate(); err == nil {
				t.Errorf("accepted")
			}
		})
	}
}

func TestInfoField(t *testing.T) {
	info := "# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\n"
	if v, ok := infoField(info, "used_memory"); !ok || v != "1048576" {
		t.Errorf("infoField = %q %v", v, ok)
	}
	if _, ok := infoField(info, "process_id"); ok {
		t.Errorf("found a missing field")
	}
}

func TestParseCounters(t *testing.T) {
	text := `# HELP hubhooks_deliverer_queue_full_total x
# TYPE hubhooks_deliverer_queue_full_total counter
hubhooks_deliverer_queue_full_total 12
hubhooks_deliverer_attempts_total{status="succeeded"} 500
hubhooks_deliverer_attempts_total{status="failed"} 0
hubhooks_deliverer_held 3
go_goroutines 40
`
	got := parseCounters(text)
	want := map[string]float64{"hubhooks_deliverer_queue_full_total": 12, `hubhooks_deliverer_attempts_total{status="succeeded"}`: 500}
	if len(got) != len(want) {
		t.Fatalf("parseCounters = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if !notable("hubhooks_deliverer_queue_full_total") || notable(`hubhooks_deliverer_attempts_total{status="succeeded"}`) {
		t.Errorf("notable picks the wrong counters")
	}
}

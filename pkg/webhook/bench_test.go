package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

func benchEvent() *Event {
	return &Event{
		ID: EventID("hub-1", "evt-1", 0), Type: "USER.UPDATED", HubID: "hub-1",
		CreatedAt:   time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC),
		Data:        json.RawMessage(`{"user":{"id":"u-1","name":"` + strings.Repeat("x", 400) + `"}}`),
		DomainEvent: DomainEventRef{ID: "evt-1", Type: "USER.UPDATED", Actor: "u-2"},
	}
}

// TestSignerMatchesSignatureHeader: the client's cached signer produces
// exactly what the exported SignatureHeader does, for one and two secrets,
// repeatedly (pooled HMACs are reset between uses).
func TestSignerMatchesSignatureHeader(t *testing.T) {
	var s signer
	body := []byte(`{"id":"msg_1"}`)
	ts := time.Unix(1764158400, 0)
	tests := []struct {
		name    string
		secrets []string
	}{
		{"one secret", []string{NewSecret()}},
		{"current and previous", []string{NewSecret(), NewSecret()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := SignatureHeader(tt.secrets, "msg_1", ts, body)
			if err != nil {
				t.Fatal(err)
			}
			for range 3 {
				got, err := s.header(tt.secrets, "msg_1", ts.Unix(), body)
				if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Fatalf("signer = %q, SignatureHeader = %q", got, want)
				}
			}
		})
	}
	if _, err := s.header([]string{"not-a-secret"}, "msg_1", ts.Unix(), body); err == nil {
		t.Fatal("invalid secret accepted")
	}
}

// BenchmarkEventMarshal: building the webhook body (once per webhook event).
func BenchmarkEventMarshal(b *testing.B) {
	e := benchEvent()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Marshal(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIDs: the two deterministic ids derived per delivery.
func BenchmarkIDs(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = DeliveryID(EventID("hub-1", "evt-1", 0), "url_1")
	}
}

// BenchmarkSignatureHeader: the exported signing helper (parses the secret
// and keys a new HMAC each call).
func BenchmarkSignatureHeader(b *testing.B) {
	body, _ := benchEvent().Marshal()
	secrets := []string{NewSecret()}
	ts := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SignatureHeader(secrets, "msg_1", ts, body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClientSigner: the signing the client does per request.
func BenchmarkClientSigner(b *testing.B) {
	body, _ := benchEvent().Marshal()
	secrets := []string{NewSecret()}
	var s signer
	unix := time.Now().Unix()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.header(secrets, "msg_1", unix, body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClientSend: one signed POST to a loopback receiver over a reused
// connection, including the recorded request and response.
func BenchmarkClientSend(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(srv.Close)
	c, err := NewClient()
	if err != nil {
		b.Fatal(err)
	}
	body, _ := benchEvent().Marshal()
	req := Request{URL: srv.URL, WebhookID: "msg_1", Body: body, Secrets: []string{NewSecret()}}
	b.ReportAllocs()
	for b.Loop() {
		if res := c.Send(context.Background(), req); !res.Succeeded() {
			b.Fatalf("send: %v %d", res.Err, res.StatusCode)
		}
	}
}

// BenchmarkSigningSecrets: the secrets of one delivery (current and one
// previous in its grace period).
func BenchmarkSigningSecrets(b *testing.B) {
	now := time.Now()
	cfg := &hubhooksv1.HubConfig{Secret: "whsec_current", PreviousSecrets: []*hubhooksv1.PreviousSecret{
		{Secret: "whsec_previous", ExpiresAt: timestamppb.New(now.Add(time.Hour))},
	}}
	b.ReportAllocs()
	for b.Loop() {
		if len(SigningSecrets(cfg, now)) != 2 {
			b.Fatal("want two secrets")
		}
	}
}

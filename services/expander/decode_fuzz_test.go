package expander

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/hubhooks/hubhooks/pkg/cascade"
	"github.com/hubhooks/hubhooks/pkg/hubid"
	eventsv1 "github.com/hubhooks/hubhooks/proto/hubhooks/events/v1"
)

// fuzzMsg is a jetstream.Msg with a body, a subject and a Content-Type.
type fuzzMsg struct {
	subject string
	data    []byte
	hdr     nats.Header
}

func (m *fuzzMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{Timestamp: time.Unix(1700000000, 0)}, nil
}
func (m *fuzzMsg) Data() []byte                     { return m.data }
func (m *fuzzMsg) Headers() nats.Header             { return m.hdr }
func (m *fuzzMsg) Subject() string                  { return m.subject }
func (m *fuzzMsg) Reply() string                    { return "" }
func (m *fuzzMsg) Ack() error                       { return nil }
func (m *fuzzMsg) DoubleAck(context.Context) error  { return nil }
func (m *fuzzMsg) Nak() error                       { return nil }
func (m *fuzzMsg) NakWithDelay(time.Duration) error { return nil }
func (m *fuzzMsg) InProgress() error                { return nil }
func (m *fuzzMsg) Term() error                      { return nil }
func (m *fuzzMsg) TermWithReason(string) error      { return nil }
func (m *fuzzMsg) String() string                   { return m.subject }
func (m *fuzzMsg) Respond([]byte) error             { return nil }
func (m *fuzzMsg) RespondMsg(*nats.Msg) error       { return nil }
func (m *fuzzMsg) MsgID() string                    { return "" }
func (m *fuzzMsg) Size() int                        { return len(m.data) }

// FuzzDecode feeds arbitrary bodies, subjects and content types to the
// domain-event decoder: it never panics, whatever it accepts is a valid
// event for a known subject that the rules can expand, and the reader's
// peek at its hub agrees.
func FuzzDecode(f *testing.F) {
	data, _ := structpb.NewStruct(map[string]any{"api": map[string]any{"id": "a1"}, "baseUrls": []any{"https://x.example.com"}})
	good := &eventsv1.DomainEvent{Id: "evt-1", HubId: "acme", Type: "API.CREATED", Data: data}
	pb, _ := proto.Marshal(good)
	js, _ := protojson.Marshal(good)
	f.Add("API.CREATED", "application/protobuf", pb)
	f.Add("API.CREATED", "application/json", js)
	f.Add("API.CREATED", "application/json; charset=utf-8", []byte(`{"id":"e","hubId":"h","data":{"api":{"x":[1,2,{"y":null}]}}}`))
	f.Add("USER.CREATED", "", []byte{0x0a, 0x01, 'x', 0x12, 0x01, 'h'})
	f.Add("API.FROBNICATED", "application/protobuf", pb)
	f.Add("API.CREATED", "text/plain", []byte("hello"))
	f.Add("BASE_URL.CREATED", "application/json", []byte(`{"id":"e","hubId":"bad hub","type":"API.CREATED"}`))
	rules := cascade.Default()
	s := &Service{cfg: Config{}.withDefaults(), rules: rules}
	f.Fuzz(func(t *testing.T, subject, contentType string, body []byte) {
		hdr := nats.Header{}
		if contentType != "" {
			hdr.Set("Content-Type", contentType)
		}
		msg := &fuzzMsg{subject: subject, data: body, hdr: hdr}
		ev, err := s.decode(msg)
		// The reader queues a protobuf event under its peeked hub: when
		// the event is valid, that is the hub it names.
		if hub, ok := s.peekHubID(msg); ok && err == nil && hub != ev.GetHubId() {
			t.Fatalf("peeked hub %q, decoded %q", hub, ev.GetHubId())
		}
		if err != nil {
			if _, ok := err.(*permanentError); !ok {
				t.Fatalf("decode error %v is not permanent: it would be retried forever", err)
			}
			return
		}
		if ev.GetId() == "" || hubid.Validate(ev.GetHubId()) != nil || !rules.Has(subject) {
			t.Fatalf("decode accepted an invalid event %v on %q", ev, subject)
		}
		if ev.GetType() != "" && ev.GetType() != subject {
			t.Fatalf("decode accepted type %q on subject %q", ev.GetType(), subject)
		}
		// Expanding what was accepted never panics (an error dead-letters it).
		_, _ = rules.Expand(subject, ev.GetData())
	})
}

// BenchmarkDecode: decoding and validating one protobuf domain event with a
// typical payload (once per domain event).
func BenchmarkDecode(b *testing.B) {
	data, _ := structpb.NewStruct(map[string]any{"user": map[string]any{
		"id": "u-1", "email": "a@example.com", "name": "Ada", "teams": []any{"t1", "t2"},
		"profile": map[string]any{"bio": strings.Repeat("x", 400), "age": 36.0, "active": true},
	}})
	ev := &eventsv1.DomainEvent{Id: "evt-1", HubId: "acme", Type: "USER.UPDATED", Data: data}
	pb, _ := proto.Marshal(ev)
	s := &Service{cfg: Config{}.withDefaults(), rules: cascade.Default()}
	m := &fuzzMsg{subject: "USER.UPDATED", data: pb, hdr: nats.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.decode(m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPeekHubID: what the reader spends per protobuf event to queue it
// under its hub (the decode above is left to the workers).
func BenchmarkPeekHubID(b *testing.B) {
	data, _ := structpb.NewStruct(map[string]any{"user": map[string]any{"id": "u-1", "bio": strings.Repeat("x", 400)}})
	pb, _ := proto.Marshal(&eventsv1.DomainEvent{Id: "evt-1", HubId: "acme", Type: "USER.UPDATED", Data: data})
	s := &Service{cfg: Config{}.withDefaults()}
	m := &fuzzMsg{subject: "USER.UPDATED", data: pb, hdr: nats.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		if hub, ok := s.peekHubID(m); !ok || hub != "acme" {
			b.Fatal(hub, ok)
		}
	}
}

package eventbus

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/natstest"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

func testJob() *deliveryv1.DeliveryJob {
	return &deliveryv1.DeliveryJob{
		DeliveryId: "dlv_abc", HubId: "hub-1", WebhookEventId: "msg_abc", EventType: "USER.UPDATED",
		UrlId: "url_1", Url: "https://example.com/hook", Body: []byte(`{"id":"msg_abc","data":{"x":"` + strings.Repeat("y", 500) + `"}}`),
		CreatedAt: timestamppb.New(time.Unix(1764158400, 0)), DomainEventId: "evt-1", DomainEventType: "USER.UPDATED",
		Attempt: 3, ConfigVersion: 7,
	}
}

func testRecord() *deliveryv1.AttemptRecorded {
	return &deliveryv1.AttemptRecorded{
		Job: testJob(), Attempt: 3, Status: "retrying",
		Request: &hubhooksv1.HttpRequest{Url: "https://example.com/hook", Method: "POST", Headers: map[string]string{
			"Content-Type": "application/json", "webhook-id": "msg_abc", "x-rapidapi-webhook-secret": "whsec_********",
		}},
		Response:  &hubhooksv1.HttpResponse{StatusCode: 500, DurationMs: 3},
		StartedAt: timestamppb.New(time.Unix(1764158401, 0)),
	}
}

func TestMessages(t *testing.T) {
	job, rec := testJob(), testRecord()
	jm, err := NewJobMsg(job)
	if err != nil {
		t.Fatal(err)
	}
	am, err := NewAttemptMsg(rec)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, subject, id string
		subj, msgID, ct   string
	}{
		{"job", "hubhooks.deliveries.hub-1", "dlv_abc.3", jm.Subject, jm.Header.Get(jetstream.MsgIDHeader), jm.Header.Get(HeaderContentType)},
		{"attempt", "hubhooks.attempts.hub-1", "dlv_abc.3.retrying", am.Subject, am.Header.Get(jetstream.MsgIDHeader), am.Header.Get(HeaderContentType)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.subj != tt.subject || tt.msgID != tt.id || tt.ct != ContentTypeProtobuf {
				t.Fatalf("subject %q id %q content type %q; want %q %q %q", tt.subj, tt.msgID, tt.ct, tt.subject, tt.id, ContentTypeProtobuf)
			}
		})
	}
	gotJob, err := DecodeJob(jm.Data)
	if err != nil || !proto.Equal(gotJob, job) {
		t.Fatalf("job round trip: %v", err)
	}
	gotRec, err := DecodeAttempt(am.Data)
	if err != nil || !proto.Equal(gotRec, rec) {
		t.Fatalf("attempt round trip: %v", err)
	}
}

// BenchmarkNewJobMsg: encoding one delivery job (once per delivery).
func BenchmarkNewJobMsg(b *testing.B) {
	job := testJob()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewJobMsg(job); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeJob: decoding one delivery job in the deliverer.
func BenchmarkDecodeJob(b *testing.B) {
	m, _ := NewJobMsg(testJob())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeJob(m.Data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNewAttemptMsg: encoding one attempt record (once per attempt).
func BenchmarkNewAttemptMsg(b *testing.B) {
	rec := testRecord()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewAttemptMsg(rec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeAttempt: decoding one attempt record in the logger.
func BenchmarkDecodeAttempt(b *testing.B) {
	m, _ := NewAttemptMsg(testRecord())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeAttempt(m.Data); err != nil {
			b.Fatal(err)
		}
	}
}

func TestAttemptBatch(t *testing.T) {
	var encoded [][]byte
	var want []*deliveryv1.AttemptRecorded
	for i := range 3 {
		rec := testRecord()
		rec.Attempt = int32(i + 1)
		b, err := EncodeAttempt(rec)
		if err != nil {
			t.Fatal(err)
		}
		encoded = append(encoded, b)
		want = append(want, rec)
	}
	m := NewAttemptBatchMsg("hub-1", encoded)
	if m.Subject != AttemptSubject("hub-1") || !IsAttemptBatch(m.Header) || m.Header.Get(jetstream.MsgIDHeader) != "" {
		t.Fatalf("subject %q headers %v", m.Subject, m.Header)
	}
	got, err := DecodeAttemptBatch(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i := range got {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("record %d differs", i)
		}
	}
	sizes := make([]int, len(want))
	for i, r := range want {
		sizes[i] = r.SizeVT()
	}
	of, err := NewAttemptBatchMsgOf("hub-1", want, sizes)
	if err != nil {
		t.Fatal(err)
	}
	if of.Subject != m.Subject || !IsAttemptBatch(of.Header) || len(of.Data) != len(m.Data) {
		t.Fatalf("NewAttemptBatchMsgOf: subject %q headers %v, %d bytes, want those of NewAttemptBatchMsg (%d bytes)", of.Subject, of.Header, len(of.Data), len(m.Data))
	}
	gotOf, err := DecodeAttemptBatch(of.Data) // map fields encode in any order: compare decoded
	if err != nil || len(gotOf) != len(want) {
		t.Fatalf("decode NewAttemptBatchMsgOf: %d records, %v", len(gotOf), err)
	}
	for i := range gotOf {
		if !proto.Equal(gotOf[i], want[i]) {
			t.Fatalf("NewAttemptBatchMsgOf record %d differs", i)
		}
	}
	single, _ := NewAttemptMsg(want[0])
	if IsAttemptBatch(single.Header) {
		t.Fatal("a single record message taken for a batch")
	}
	bad := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"length beyond the data", append([]byte{0x7f}, encoded[0][:10]...)},
		{"truncated varint", []byte{0x80}},
		{"not a record", append([]byte{3}, 0xff, 0xff, 0xff)},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeAttemptBatch(tt.data); err == nil {
				t.Fatal("decoded")
			}
		})
	}
}

func TestFanoutRoundTrip(t *testing.T) {
	base := testJob()
	base.DeliveryId, base.UrlId, base.Url = "", "", ""
	base.Test, base.RedeliveryOf, base.Deferrals = true, "dlv_old", 2
	base.FirstAttemptAt = timestamppb.New(time.Unix(1764158402, 0))
	base.EventArrivedAt = timestamppb.New(time.Unix(1764158399, 0))
	// Every field of DeliveryJob must be set on base or on a target, so a
	// field added later and not copied by DecodeJobs fails this test.
	targetFields := map[string]bool{"delivery_id": true, "url_id": true, "url": true}
	fields := base.ProtoReflect().Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		f := fields.Get(i)
		if !targetFields[string(f.Name())] && !base.ProtoReflect().Has(f) {
			t.Fatalf("test base job leaves field %s unset: set it so DecodeJobs is checked to copy it", f.Name())
		}
	}
	f := &deliveryv1.DeliveryFanout{Job: base, Targets: []*deliveryv1.FanoutTarget{
		{DeliveryId: "dlv_1", UrlId: "url_1", Url: "https://a.example/hook"},
		{DeliveryId: "dlv_2", UrlId: "url_2", Url: "https://b.example/hook"},
	}}
	m, err := NewFanoutMsg(f)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != DeliverySubject("hub-1") || !IsFanout(m.Header) || m.Header.Get(jetstream.MsgIDHeader) != "fan.msg_abc.3" {
		t.Fatalf("fanout msg: subject %q, headers %v", m.Subject, m.Header)
	}
	jobs, err := DecodeJobs(m.Header, m.Data)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 2 {
		t.Fatalf("got %d jobs, want 2", len(jobs))
	}
	for i, tg := range f.Targets {
		want := proto.Clone(base).(*deliveryv1.DeliveryJob)
		want.DeliveryId, want.UrlId, want.Url = tg.DeliveryId, tg.UrlId, tg.Url
		if !proto.Equal(jobs[i], want) {
			t.Errorf("job %d:\n got %v\nwant %v", i, jobs[i], want)
		}
	}

	// A plain job message decodes to itself.
	jm, _ := NewJobMsg(testJob())
	one, err := DecodeJobs(jm.Header, jm.Data)
	if err != nil || len(one) != 1 || !proto.Equal(one[0], testJob()) {
		t.Fatalf("plain job: %v, %v", one, err)
	}

	// Refused: no targets, undecodable data.
	if _, err := NewFanoutMsg(&deliveryv1.DeliveryFanout{Job: base}); err == nil {
		t.Error("fanout without targets encoded")
	}
	if _, err := DecodeJobs(m.Header, []byte{0xff, 0xff}); err == nil {
		t.Error("garbage fanout decoded")
	}
	empty, _ := proto.Marshal(&deliveryv1.DeliveryFanout{Job: base})
	if _, err := DecodeJobs(m.Header, empty); err == nil {
		t.Error("fanout without targets decoded")
	}
}

// BenchmarkDecodeFanout: decoding one webhook event for 5 URLs (once per 5
// deliveries).
func BenchmarkDecodeFanout(b *testing.B) {
	base := testJob()
	base.DeliveryId, base.UrlId, base.Url = "", "", ""
	f := &deliveryv1.DeliveryFanout{Job: base}
	for i := range 5 {
		f.Targets = append(f.Targets, &deliveryv1.FanoutTarget{DeliveryId: fmt.Sprint("dlv_", i), UrlId: fmt.Sprint("url_", i), Url: "https://example.com/hook"})
	}
	m, err := NewFanoutMsg(f)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeJobs(m.Header, m.Data); err != nil {
			b.Fatal(err)
		}
	}
}

func TestDecodeAttempts(t *testing.T) {
	one, err := NewAttemptMsg(testRecord())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := EncodeAttempt(testRecord())
	batch := NewAttemptBatchMsg("hub-1", [][]byte{b, b})
	for _, tc := range []struct {
		m    []byte
		h    map[string][]string
		want int
	}{{one.Data, one.Header, 1}, {batch.Data, batch.Header, 2}} {
		recs, err := DecodeAttempts(tc.h, tc.m)
		if err != nil || len(recs) != tc.want || !proto.Equal(recs[0], testRecord()) {
			t.Errorf("DecodeAttempts: %d records, %v; want %d", len(recs), err, tc.want)
		}
	}
}

// TestEventsStreamLimits: the domain events stream takes its age and size
// caps from Options on creation and on update, and keeps no size cap by
// default.
func TestEventsStreamLimits(t *testing.T) {
	_, _, js := natstest.Start(t)
	ctx := context.Background()
	subjects := []string{"USER.*"}
	info := func() jetstream.StreamConfig {
		t.Helper()
		st, err := js.Stream(ctx, StreamEvents)
		if err != nil {
			t.Fatal(err)
		}
		return st.CachedInfo().Config
	}
	if err := Ensure(ctx, js, EventsStreamConfig(subjects, Options{})); err != nil {
		t.Fatal(err)
	}
	if c := info(); c.MaxBytes != -1 || c.MaxAge != 72*time.Hour || c.Discard != jetstream.DiscardOld {
		t.Fatalf("default: max bytes %d, max age %s, discard %v; want no cap, 72h, old", c.MaxBytes, c.MaxAge, c.Discard)
	}
	if err := Ensure(ctx, js, EventsStreamConfig(subjects, Options{EventsMaxAge: time.Hour, EventsMaxBytes: 64 << 20})); err != nil {
		t.Fatal(err)
	}
	if c := info(); c.MaxBytes != 64<<20 || c.MaxAge != time.Hour {
		t.Fatalf("after update: max bytes %d, max age %s; want %d, 1h", c.MaxBytes, c.MaxAge, 64<<20)
	}
	if c := EventsStreamConfig(subjects, Options{EventsMaxBytes: -5}); c.MaxBytes != 0 {
		t.Fatalf("negative cap kept as %d", c.MaxBytes)
	}
}

package eventbus

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
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
		Job: testJob(), Attempt: 3, Status: hubhooksv1.StatusRetrying,
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
	gotJob, err := decodeJob(jm.Data)
	if err != nil || !proto.Equal(gotJob, job) {
		t.Fatalf("job round trip: %v", err)
	}
	gotRecs, err := DecodeAttempts(am.Header, am.Data)
	if err != nil || len(gotRecs) != 1 || !proto.Equal(gotRecs[0], rec) {
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
		if _, err := decodeJob(m.Data); err != nil {
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
		if _, err := DecodeAttempts(m.Header, m.Data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAttemptBatch: one batch of the records of 8 webhook events x 5
// URLs (the jobs of each event share one body, as a fan-out's do), encoded
// by the deliverer and decoded by the logger; bytes/record is what each
// record costs the attempts stream.
func BenchmarkAttemptBatch(b *testing.B) {
	const events, urls = 8, 5
	var recs []*deliveryv1.AttemptRecorded
	var sizes []int
	for e := range events {
		body := []byte(`{"event":"` + strconv.Itoa(e) + `","data":"` + strings.Repeat("y", 700) + `"}`)
		for u := range urls {
			r := testRecord()
			r.Job.WebhookEventId = "msg_" + strconv.Itoa(e)
			r.Job.DeliveryId = r.Job.WebhookEventId + "_" + strconv.Itoa(u)
			r.Job.Body = body
			recs = append(recs, r)
			sizes = append(sizes, r.SizeVT())
		}
	}
	var size int
	b.ReportAllocs()
	for b.Loop() {
		m, err := NewAttemptBatchMsg("hub-1", recs, sizes)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := decodeAttemptBatch(m.Data); err != nil {
			b.Fatal(err)
		}
		size = len(m.Data)
	}
	b.ReportMetric(float64(size)/float64(len(recs)), "bytes/record")
}

func TestAttemptBatch(t *testing.T) {
	var encoded [][]byte
	var want []*deliveryv1.AttemptRecorded
	for i := range 3 {
		rec := testRecord()
		rec.Attempt = int32(i + 1)
		b, err := encodeAttempt(rec)
		if err != nil {
			t.Fatal(err)
		}
		encoded = append(encoded, b)
		want = append(want, rec)
	}
	m := rawAttemptBatchMsg("hub-1", encoded)
	if m.Subject != AttemptSubject("hub-1") || !isAttemptBatch(m.Header) || m.Header.Get(jetstream.MsgIDHeader) != "" {
		t.Fatalf("subject %q headers %v", m.Subject, m.Header)
	}
	got, err := decodeAttemptBatch(m.Data)
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
	of, err := NewAttemptBatchMsg("hub-1", want, sizes)
	if err != nil {
		t.Fatal(err)
	}
	// The three records are of one webhook event with one body: the last
	// two leave it out.
	if shared := 2 * len(want[0].GetJob().GetBody()); of.Subject != m.Subject || !isAttemptBatch(of.Header) || len(of.Data) > len(m.Data)-shared {
		t.Fatalf("NewAttemptBatchMsg: subject %q headers %v, %d bytes, want those of the frames alone (%d bytes) less two bodies (%d)", of.Subject, of.Header, len(of.Data), len(m.Data), shared)
	}
	gotOf, err := decodeAttemptBatch(of.Data) // map fields encode in any order: compare decoded
	if err != nil || len(gotOf) != len(want) {
		t.Fatalf("decode NewAttemptBatchMsg: %d records, %v", len(gotOf), err)
	}
	for i := range gotOf {
		if !proto.Equal(gotOf[i], want[i]) {
			t.Fatalf("NewAttemptBatchMsg record %d differs", i)
		}
	}
	single, _ := NewAttemptMsg(want[0])
	if isAttemptBatch(single.Header) {
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
			if _, err := decodeAttemptBatch(tt.data); err == nil {
				t.Fatal("decoded")
			}
		})
	}
}

func TestAttemptBatchSharesBodies(t *testing.T) {
	body1 := []byte(`{"event":"one","data":"` + strings.Repeat("a", 400) + `"}`)
	body2 := []byte(`{"event":"two","data":"` + strings.Repeat("b", 400) + `"}`)
	rec := func(id, event string, body []byte) *deliveryv1.AttemptRecorded {
		r := testRecord()
		r.Job.DeliveryId, r.Job.WebhookEventId, r.Job.Body = id, event, body
		return r
	}
	full := rec("dlv_9", "msg_1", body1) // shared, every field set: withoutBody must copy each one
	full.Job.Test, full.Job.RedeliveryOf, full.Job.Deferrals = true, "dlv_old", 2
	full.Job.FirstAttemptAt = timestamppb.New(time.Unix(1764158402, 0))
	full.Job.EventArrivedAt = timestamppb.New(time.Unix(1764158399, 0))
	full.Job.TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	full.NextAttemptAt = timestamppb.New(time.Unix(1764158500, 0))
	for _, m := range []proto.Message{full, full.Job} {
		fields := m.ProtoReflect().Descriptor().Fields()
		for i := 0; i < fields.Len(); i++ {
			if f := fields.Get(i); f.Name() != "body_shared" && !m.ProtoReflect().Has(f) {
				t.Fatalf("test record leaves %s unset: set it so withoutBody is checked to copy it", f.FullName())
			}
		}
	}
	recs := []*deliveryv1.AttemptRecorded{
		rec("dlv_1", "msg_1", body1),
		rec("dlv_2", "msg_2", body2),
		rec("dlv_3", "msg_1", body1),                                    // shared: the same slice
		rec("dlv_4", "msg_1", append([]byte(nil), body1...)),            // shared: equal bytes
		rec("dlv_5", "msg_1", []byte(`{"event":"one","changed":true}`)), // its own: another body
		rec("dlv_6", "msg_1", body1),                                    // its own: the body changed for msg_1 just before
		rec("dlv_7", "msg_1", nil),                                      // no body: nothing to share
		rec("dlv_8", "msg_2", body2),                                    // shared
		full,                                                            // shared, with dlv_6
	}
	wantShared := map[string]bool{"dlv_3": true, "dlv_4": true, "dlv_8": true, "dlv_9": true}
	before := make([]*deliveryv1.AttemptRecorded, len(recs))
	sizes := make([]int, len(recs))
	for i, r := range recs {
		before[i] = proto.Clone(r).(*deliveryv1.AttemptRecorded)
		sizes[i] = r.SizeVT()
	}
	m, err := NewAttemptBatchMsg("hub-1", recs, sizes)
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get(HeaderContentType) != ContentTypeAttemptBatch {
		t.Fatalf("content type %q", m.Header.Get(HeaderContentType))
	}
	for i := range recs {
		if !proto.Equal(recs[i], before[i]) {
			t.Fatalf("encoding changed record %d", i)
		}
	}
	// The frames as sent: which records left their body out.
	for data, i := m.Data, 0; len(data) > 0; i++ {
		n, k := binary.Uvarint(data)
		r := &deliveryv1.AttemptRecorded{}
		if err := r.UnmarshalVT(data[k : k+int(n)]); err != nil {
			t.Fatal(err)
		}
		id := r.GetJob().GetDeliveryId()
		if r.GetBodyShared() != wantShared[id] || (r.GetBodyShared() && len(r.GetJob().GetBody()) > 0) {
			t.Errorf("record %s sent with body_shared %v and %d body bytes", id, r.GetBodyShared(), len(r.GetJob().GetBody()))
		}
		data = data[k+int(n):]
	}
	got, err := decodeAttemptBatch(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) {
		t.Fatalf("%d records, want %d", len(got), len(recs))
	}
	for i := range got {
		if !proto.Equal(got[i], recs[i]) {
			t.Errorf("record %d:\n got %v\nwant %v", i, got[i], recs[i])
		}
	}

	frame := func(r *deliveryv1.AttemptRecorded) []byte {
		b, err := encodeAttempt(r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	sharedRec := func(id, event string) *deliveryv1.AttemptRecorded {
		r := rec(id, event, nil)
		r.BodyShared = true
		return r
	}
	withOwnBody := sharedRec("dlv_2", "msg_1")
	withOwnBody.Job.Body = body1
	noJob := sharedRec("dlv_2", "msg_1")
	noJob.Job = nil
	// A record whose body cannot be put back keeps body_shared (the logger
	// refuses that record alone); the others decode as sent.
	for name, frames := range map[string][][]byte{
		"shared first":            {frame(sharedRec("dlv_2", "msg_1")), frame(rec("dlv_1", "msg_1", body1))},
		"shared of another event": {frame(rec("dlv_1", "msg_1", body1)), frame(sharedRec("dlv_2", "msg_2"))},
		"shared with a body":      {frame(rec("dlv_1", "msg_1", body1)), frame(withOwnBody)},
		"shared without a job":    {frame(rec("dlv_1", "", body1)), frame(noJob)},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := decodeAttemptBatch(rawAttemptBatchMsg("hub-1", frames).Data)
			if err != nil || len(got) != 2 {
				t.Fatalf("decoded %d records, %v", len(got), err)
			}
			for _, r := range got {
				if bad := r.GetJob().GetDeliveryId() != "dlv_1"; r.GetBodyShared() != bad {
					t.Errorf("record %s: body_shared %v", r.GetJob().GetDeliveryId(), r.GetBodyShared())
				}
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
	base.TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
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
	if m.Subject != DeliverySubject("hub-1") || m.Header.Get(HeaderContentType) != ContentTypeDeliveryFanout || m.Header.Get(jetstream.MsgIDHeader) != "fan.msg_abc.3" {
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

// A fan-out batch decodes to the jobs of each fan-out in order, carries no
// Nats-Msg-Id, and refuses fan-outs of another hub and broken frames.
func TestFanoutBatch(t *testing.T) {
	fanout := func(hub, event string, urls ...string) *deliveryv1.DeliveryFanout {
		base := testJob()
		base.HubId, base.WebhookEventId, base.DeliveryId, base.UrlId, base.Url = hub, event, "", "", ""
		base.Body = []byte(`{"id":"` + event + `"}`)
		f := &deliveryv1.DeliveryFanout{Job: base}
		for _, u := range urls {
			f.Targets = append(f.Targets, &deliveryv1.FanoutTarget{DeliveryId: "dlv_" + event + "_" + u, UrlId: u, Url: "https://" + u + ".example/hook"})
		}
		return f
	}
	fs := []*deliveryv1.DeliveryFanout{fanout("hub-1", "msg_1", "a", "b"), fanout("hub-1", "msg_2", "a"), fanout("hub-1", "msg_3", "a", "b", "c")}
	m, err := NewFanoutBatchMsg("hub-1", fs)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != DeliverySubject("hub-1") || m.Header.Get(HeaderContentType) != ContentTypeFanoutBatch || m.Header.Get(jetstream.MsgIDHeader) != "" {
		t.Fatalf("batch msg: subject %q, headers %v", m.Subject, m.Header)
	}
	jobs, err := DecodeJobs(m.Header, m.Data)
	if err != nil {
		t.Fatal(err)
	}
	var want []*deliveryv1.DeliveryJob
	for _, f := range fs {
		one, err := NewFanoutMsg(f)
		if err != nil {
			t.Fatal(err)
		}
		alone, err := DecodeJobs(one.Header, one.Data)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, alone...)
	}
	if len(jobs) != len(want) {
		t.Fatalf("got %d jobs, want %d", len(jobs), len(want))
	}
	for i := range want {
		if !proto.Equal(jobs[i], want[i]) {
			t.Errorf("job %d:\n got %v\nwant %v", i, jobs[i], want[i])
		}
	}

	if _, err := NewFanoutBatchMsg("hub-1", append(fs, fanout("hub-2", "msg_4", "a"))); err == nil {
		t.Error("batch with a fan-out of another hub encoded")
	}
	if _, err := NewFanoutBatchMsg("hub-1", nil); err == nil {
		t.Error("empty batch encoded")
	}
	frame := func(f *deliveryv1.DeliveryFanout) []byte {
		b, _ := f.MarshalVT()
		return append(binary.AppendUvarint(nil, uint64(len(b))), b...)
	}
	for name, data := range map[string][]byte{
		"empty":             nil,
		"length past end":   append(binary.AppendUvarint(nil, 1000), 1, 2, 3),
		"bad length":        {0xff},
		"garbage fan-out":   {2, 0xff, 0xff},
		"no targets":        frame(fanout("hub-1", "msg_5")),
		"two hubs":          append(frame(fs[0]), frame(fanout("hub-2", "msg_6", "a"))...),
		"one good then bad": append(frame(fs[0]), 5, 1),
	} {
		if got, err := DecodeJobs(m.Header, data); err == nil {
			t.Errorf("%s: decoded %d jobs", name, len(got))
		}
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
	b, _ := encodeAttempt(testRecord())
	batch := rawAttemptBatchMsg("hub-1", [][]byte{b, b})
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

// encodeAttempt is rec encoded, one frame of a batch made by hand.
func encodeAttempt(rec *deliveryv1.AttemptRecorded) ([]byte, error) { return rec.MarshalVT() }

// rawAttemptBatchMsg is an attempt batch of frames encoded by hand (not by
// NewAttemptBatchMsg: no body is shared unless a frame says so).
func rawAttemptBatchMsg(hubID string, frames [][]byte) *nats.Msg {
	var data []byte
	for _, f := range frames {
		data = binary.AppendUvarint(data, uint64(len(f)))
		data = append(data, f...)
	}
	return newMsg(AttemptSubject(hubID), ContentTypeAttemptBatch, data)
}

// isAttemptBatch reports whether headers h mark an attempt batch.
func isAttemptBatch(h nats.Header) bool { return h.Get(HeaderContentType) == ContentTypeAttemptBatch }

func TestHubDeletedMsg(t *testing.T) {
	at := time.Date(2026, 12, 6, 13, 0, 0, 5, time.UTC)
	m, err := NewHubDeletedMsg("hub1", at)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != AttemptSubject("hub1") || !IsHubDeleted(m.Header) || m.Header.Get(jetstream.MsgIDHeader) == "" {
		t.Fatalf("message %s %v", m.Subject, m.Header)
	}
	d, err := DecodeHubDeleted(m.Data)
	if err != nil || d.GetHubId() != "hub1" || !d.GetDeletedAt().AsTime().Equal(at) {
		t.Fatalf("decoded %v, %v", d, err)
	}
	for _, bad := range [][]byte{{0xff}, {}} {
		if _, err := DecodeHubDeleted(bad); err == nil {
			t.Errorf("DecodeHubDeleted(%x) took it", bad)
		}
	}
}

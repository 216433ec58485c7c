package eventbus

import (
	"testing"

	"google.golang.org/protobuf/proto"

	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
)

// FuzzDecodeAttemptBatch: whatever arrives on the attempts stream, the
// logger's batch decoder returns records or an error, never a panic; and the
// records it could restore (body_shared clear), encoded again, decode to
// the same records.
func FuzzDecodeAttemptBatch(f *testing.F) {
	shared := testRecord()
	shared.Job.DeliveryId = "dlv_2"
	recs := []*deliveryv1.AttemptRecorded{testRecord(), shared}
	sizes := []int{recs[0].SizeVT(), recs[1].SizeVT()}
	m, err := NewAttemptBatchMsg("hub-1", recs, sizes)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(m.Data)
	f.Add(m.Data[:len(m.Data)/2])
	f.Add([]byte{0x02, 0x40, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		all, err := decodeAttemptBatch(data)
		if err != nil {
			return
		}
		var got []*deliveryv1.AttemptRecorded
		var sizes []int
		for _, r := range all {
			if !r.GetBodyShared() {
				got = append(got, r)
				sizes = append(sizes, r.SizeVT())
			}
		}
		if len(got) == 0 {
			return
		}
		m, err := NewAttemptBatchMsg("hub-1", got, sizes)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeAttemptBatch(m.Data)
		if err != nil {
			t.Fatalf("re-encoded batch: %v", err)
		}
		if len(again) != len(got) {
			t.Fatalf("%d records, then %d", len(got), len(again))
		}
		for i := range got {
			if !proto.Equal(got[i], again[i]) {
				t.Fatalf("record %d changed in a round trip:\n%v\n%v", i, got[i], again[i])
			}
		}
	})
}

// FuzzDecodeFanoutBatch: whatever arrives on the deliveries stream as a
// fan-out batch, the deliverer's decoder returns jobs or an error, never a
// panic; the jobs it returns are all of one hub, each with the URL of a
// target.
func FuzzDecodeFanoutBatch(f *testing.F) {
	base := testJob()
	base.DeliveryId, base.UrlId, base.Url = "", "", ""
	fan := func(event string) *deliveryv1.DeliveryFanout {
		j := proto.Clone(base).(*deliveryv1.DeliveryJob)
		j.WebhookEventId = event
		return &deliveryv1.DeliveryFanout{Job: j, Targets: []*deliveryv1.FanoutTarget{
			{DeliveryId: "dlv_" + event, UrlId: "url_1", Url: "https://a.example/hook"}}}
	}
	m, err := NewFanoutBatchMsg("hub-1", []*deliveryv1.DeliveryFanout{fan("msg_1"), fan("msg_2")})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(m.Data)
	f.Add(m.Data[:len(m.Data)/2])
	f.Add([]byte{0x03, 0x0a, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		jobs, err := DecodeJobs(m.Header, data)
		if err != nil {
			return
		}
		if len(jobs) == 0 {
			t.Fatal("no jobs and no error")
		}
		for i, j := range jobs {
			if j.GetHubId() != jobs[0].GetHubId() {
				t.Fatalf("job %d of hub %q in a batch of %q", i, j.GetHubId(), jobs[0].GetHubId())
			}
		}
	})
}

// FuzzDecodeEventsOverflowBatch: whatever arrives on an events-overflow
// subject as a batch, the decoder returns events each with a subject, or
// an error, never a panic.
func FuzzDecodeEventsOverflowBatch(f *testing.F) {
	f.Add([]byte{0x0c, 0x0a, 0x04, 'U', '.', 'C', 'R', 0x18, 0x07, 0x20, 0x01, 0x32, 0x00})
	f.Add([]byte{0x05, 0x12, 0x03, 0x0a, 0x01, 'k'})
	f.Add([]byte{0x02, 0x08, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		events, err := EventsOverflowBatch(data)
		if err != nil {
			return
		}
		for i, ev := range events {
			if ev.Subject == "" {
				t.Fatalf("event %d without a subject", i)
			}
		}
	})
}

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
	m, err := NewAttemptBatchMsgOf("hub-1", recs, sizes)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(m.Data)
	f.Add(m.Data[:len(m.Data)/2])
	f.Add([]byte{0x02, 0x40, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		all, err := DecodeAttemptBatch(data)
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
		m, err := NewAttemptBatchMsgOf("hub-1", got, sizes)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeAttemptBatch(m.Data)
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

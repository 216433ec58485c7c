package eventbus

import (
	"testing"

	"google.golang.org/protobuf/proto"

	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
)

// FuzzDecodeAttemptBatch: whatever arrives on the attempts stream, the
// logger's batch decoder returns records with their bodies back (none still
// marked body_shared) or an error, never a panic; and what it returns,
// encoded again, decodes to the same records.
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
		got, err := DecodeAttemptBatch(data)
		if err != nil {
			return
		}
		sizes := make([]int, len(got))
		for i, r := range got {
			if r.GetBodyShared() {
				t.Fatalf("record %d still marked body_shared", i)
			}
			sizes[i] = r.SizeVT()
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

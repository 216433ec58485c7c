package logstore

import (
	"testing"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// TestMetadataKeepsTheJob: an entry keeps every field of a job but those
// that change per attempt, so a field added to DeliveryJob is not lost
// without a decision here.
func TestMetadataKeepsTheJob(t *testing.T) {
	perAttempt := map[protoreflect.Name]bool{"attempt": true, "config_version": true, "first_attempt_at": true, "deferrals": true}
	job := &deliveryv1.DeliveryJob{}
	m := job.ProtoReflect()
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		f := fields.Get(i)
		switch f.Kind() {
		case protoreflect.StringKind:
			m.Set(f, protoreflect.ValueOfString("v"))
		case protoreflect.BytesKind:
			m.Set(f, protoreflect.ValueOfBytes([]byte("b")))
		case protoreflect.BoolKind:
			m.Set(f, protoreflect.ValueOfBool(true))
		case protoreflect.Int32Kind:
			m.Set(f, protoreflect.ValueOfInt32(3))
		case protoreflect.Int64Kind:
			m.Set(f, protoreflect.ValueOfInt64(4))
		case protoreflect.MessageKind:
			m.Set(f, protoreflect.ValueOfMessage(timestamppb.New(time.Unix(1e9, 0)).ProtoReflect()))
		default:
			t.Fatalf("field %s of kind %v: teach this test to fill it", f.Name(), f.Kind())
		}
	}
	meta := metadata(&deliveryv1.AttemptRecorded{Job: job, Status: hubhooksv1.StatusSucceeded, Attempt: 1}).ProtoReflect()
	for i := range fields.Len() {
		f := fields.Get(i)
		switch {
		case perAttempt[f.Name()] && meta.Has(f):
			t.Errorf("metadata keeps %s, which changes per attempt", f.Name())
		case !perAttempt[f.Name()] && !meta.Get(f).Equal(m.Get(f)):
			t.Errorf("metadata lost %s", f.Name())
		}
	}
}

// TestStoredAttemptDoesNotChangeTheRecord: the stored attempt masks the
// secret and leaves out the job's body in a copy; the record keeps both.
func TestStoredAttemptDoesNotChangeTheRecord(t *testing.T) {
	rec := &deliveryv1.AttemptRecorded{
		Job:     &deliveryv1.DeliveryJob{Body: []byte(`{"a":1}`)},
		Attempt: 1, Status: hubhooksv1.StatusSucceeded,
		Request: &hubhooksv1.HttpRequest{Body: `{"a":1}`, Headers: map[string]string{"x-rapidapi-webhook-secret": "whsec_real"}},
	}
	a := storedAttempt(rec)
	if a.Request.Body != "" || a.Request.Headers["x-rapidapi-webhook-secret"] == "whsec_real" {
		t.Fatalf("stored request %v: want no body and the secret masked", a.Request)
	}
	if rec.Request.Body != `{"a":1}` || rec.Request.Headers["x-rapidapi-webhook-secret"] != "whsec_real" {
		t.Fatalf("record's request changed: %v", rec.Request)
	}
}

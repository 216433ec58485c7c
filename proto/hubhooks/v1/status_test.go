package hubhooksv1_test

import (
	"slices"
	"testing"

	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// The API names are the contract's status strings; every status but
// UNSPECIFIED has one, and parsing it gives the status back.
func TestDeliveryStatusAPINames(t *testing.T) {
	want := []string{"pending", "retrying", "succeeded", "failed", "dead", "cancelled"}
	if got := hubhooksv1.DeliveryStatusAPINames(); !slices.Equal(got, want) {
		t.Fatalf("API names %v, want %v", got, want)
	}
	for _, name := range want {
		s, ok := hubhooksv1.ParseDeliveryStatus(name)
		if !ok || s.APIName() != name {
			t.Errorf("%q parses to %v (%v), named %q", name, s, ok, s.APIName())
		}
	}
	for _, bad := range []string{"", "unspecified", "SUCCEEDED", "DELIVERY_STATUS_DEAD"} {
		if s, ok := hubhooksv1.ParseDeliveryStatus(bad); ok {
			t.Errorf("%q parsed to %v", bad, s)
		}
	}
	if n := hubhooksv1.DeliveryStatus_DELIVERY_STATUS_UNSPECIFIED.APIName(); n != "" {
		t.Errorf("UNSPECIFIED named %q", n)
	}
	final := map[hubhooksv1.DeliveryStatus]bool{hubhooksv1.StatusSucceeded: true, hubhooksv1.StatusFailed: true,
		hubhooksv1.StatusDead: true, hubhooksv1.StatusCancelled: true}
	for n := range hubhooksv1.DeliveryStatus_name {
		if s := hubhooksv1.DeliveryStatus(n); s.Final() != final[s] {
			t.Errorf("%v: Final %v", s, s.Final())
		}
	}
}

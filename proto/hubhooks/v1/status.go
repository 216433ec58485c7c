package hubhooksv1

import (
	"maps"
	"slices"
	"strings"
)

// Short names of the delivery statuses.
const (
	StatusPending   = DeliveryStatus_DELIVERY_STATUS_PENDING
	StatusRetrying  = DeliveryStatus_DELIVERY_STATUS_RETRYING
	StatusSucceeded = DeliveryStatus_DELIVERY_STATUS_SUCCEEDED
	StatusFailed    = DeliveryStatus_DELIVERY_STATUS_FAILED
	StatusDead      = DeliveryStatus_DELIVERY_STATUS_DEAD
	StatusCancelled = DeliveryStatus_DELIVERY_STATUS_CANCELLED
)

// statusPrefix starts the name of every DeliveryStatus value.
const statusPrefix = "DELIVERY_STATUS_"

// apiNames and byAPIName map each status but UNSPECIFIED to its API name and
// back, derived from the enum's value names (see DeliveryStatus).
var apiNames, byAPIName = func() (map[DeliveryStatus]string, map[string]DeliveryStatus) {
	names, statuses := map[DeliveryStatus]string{}, map[string]DeliveryStatus{}
	for n, name := range DeliveryStatus_name {
		s := DeliveryStatus(n)
		if s == DeliveryStatus_DELIVERY_STATUS_UNSPECIFIED {
			continue
		}
		api := strings.ToLower(strings.TrimPrefix(name, statusPrefix))
		names[s], statuses[api] = api, s
	}
	return names, statuses
}()

// APIName is how the public API spells s: "pending", "retrying",
// "succeeded", "failed", "dead" or "cancelled"; "" for UNSPECIFIED or a
// value this build does not know.
func (s DeliveryStatus) APIName() string { return apiNames[s] }

// ParseDeliveryStatus returns the status whose API name is name, and false
// when name is none of them.
func ParseDeliveryStatus(name string) (DeliveryStatus, bool) {
	s, ok := byAPIName[name]
	return s, ok
}

// Final reports whether s ends the delivery: no attempt follows.
func (s DeliveryStatus) Final() bool {
	switch s {
	case StatusSucceeded, StatusFailed, StatusDead, StatusCancelled:
		return true
	}
	return false
}

// DeliveryStatusAPINames lists the API names of every status, in the enum's
// order (for messages that tell a caller what is accepted).
func DeliveryStatusAPINames() []string {
	statuses := slices.Sorted(maps.Keys(apiNames))
	out := make([]string, len(statuses))
	for i, s := range statuses {
		out[i] = apiNames[s]
	}
	return out
}

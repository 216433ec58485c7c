package webhook

import (
	"strings"
	"testing"
)

// The ids are idempotency keys (Nats-Msg-Id, webhook-id, log entry ids):
// these values, computed by the first implementation, must never change.
func TestIDsAreStable(t *testing.T) {
	for _, c := range []struct {
		hub, domain         string
		index               int
		eventID, deliveryID string
	}{
		{"hub-1", "evt-1", 0, "msg_o6y2j3m36pjla76c26ptsnalmy", "dlv_l6tqgi6p6bucek2pxgt54f6qry"},
		{"h", "", 5, "msg_x4pgnbuetprdt2bpkkgv5f5zwq", "dlv_mfacptwzezrbj5gp2gznscezfm"},
		{"hub_ÄÖ", "a\x00b", 12, "msg_2fcfhuy3vox5jxlr3234b4sbdy", "dlv_jvnvqdg3ithnrge5xhwnuanwqe"},
	} {
		if got := EventID(c.hub, c.domain, c.index); got != c.eventID {
			t.Errorf("EventID(%q, %q, %d) = %q, want %q", c.hub, c.domain, c.index, got, c.eventID)
		}
		if got := DeliveryID(c.eventID, "url_1"); got != c.deliveryID {
			t.Errorf("DeliveryID(%q, url_1) = %q, want %q", c.eventID, got, c.deliveryID)
		}
	}
	if id := RandomID("url_"); len(id) != 30 || strings.ToLower(id) != id {
		t.Errorf("RandomID = %q, want url_ and 26 lower-case characters", id)
	}
}

// Replay and recovery ids are idempotency keys too: the same replay or
// recovery finds its earlier deliveries by them.
func TestReplayAndRecoveryIDs(t *testing.T) {
	r := ReplayEventID("hub-1", "evt-1", 0)
	if !strings.HasPrefix(r, ReplayIDPrefix) || len(r) != 30 || r == EventID("hub-1", "evt-1", 0) {
		t.Errorf("ReplayEventID = %q: want rpl_ and 26 characters, not the original's id", r)
	}
	if r != ReplayEventID("hub-1", "evt-1", 0) || r == ReplayEventID("hub-1", "evt-1", 1) || r == ReplayEventID("hub-2", "evt-1", 0) {
		t.Error("ReplayEventID is not a function of hub, domain event and position")
	}
	rc := RecoveryID("dlv_l6tqgi6p6bucek2pxgt54f6qry")
	if !strings.HasPrefix(rc, "dlv_") || len(rc) != 30 || rc != RecoveryID("dlv_l6tqgi6p6bucek2pxgt54f6qry") || rc == RecoveryID(rc) {
		t.Errorf("RecoveryID = %q: want a stable dlv_ id, different for a recovery of the recovery", rc)
	}
}

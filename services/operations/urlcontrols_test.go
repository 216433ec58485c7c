package operations_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hubhooks/hubhooks/pkg/poll"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// Taking a type away from a URL cancels its pending retries of that type
// at once, logged as cancelled with the reason; its retries of the types
// it still takes go on.
func TestTypeTakenAwayCancelsPendingRetries(t *testing.T) {
	// The second attempt is a minute away: the retries are pending when
	// the filter changes.
	e := start(t, nil, 0, time.Minute)
	ctx := ctxT(t)
	failing := newReceiver(t, http.StatusInternalServerError)
	cfg := e.hub(t, "acme", failing.URL)
	urlID := cfg.GetCallbackUrls()[0].GetId()
	// APP.UPDATED and USER.UPDATED make one webhook event each.
	e.publish(t, "acme", "evt-app", "APP.UPDATED", map[string]any{"app": map[string]any{"id": 1}})
	e.publish(t, "acme", "evt-user", "USER.UPDATED", map[string]any{"user": map[string]any{"id": 1}})
	poll.Until(t, 20*time.Second, "both retrying", func() bool {
		return len(e.logs(t, &hubhooksv1.ListEventLogsRequest{HubId: "acme", Status: "retrying"})) == 2
	})

	changed := time.Now()
	if _, err := e.Config.ConfigureCallbackUrl(ctx, &hubhooksv1.ConfigureCallbackUrlRequest{
		HubId: "acme", Id: urlID, EventTypes: &hubhooksv1.EventTypeFilter{Types: []string{"USER.UPDATED"}},
	}); err != nil {
		t.Fatal(err)
	}
	var cancelled []*hubhooksv1.EventLog
	poll.Until(t, 10*time.Second, "the APP.UPDATED retry cancelled", func() bool {
		cancelled = e.logs(t, &hubhooksv1.ListEventLogsRequest{HubId: "acme", Status: "cancelled"})
		return len(cancelled) == 1
	})
	t.Logf("cancelled and logged %s after the change", time.Since(changed).Round(time.Millisecond))
	got, err := e.Logs.GetEventLog(ctx, &hubhooksv1.GetEventLogRequest{HubId: "acme", Id: cancelled[0].GetId()})
	if err != nil {
		t.Fatal(err)
	}
	attempts := got.GetAttempts()
	if got.GetEventLog().GetEventType() != "APP.UPDATED" || len(attempts) == 0 ||
		!strings.Contains(attempts[len(attempts)-1].GetResponse().GetError(), "cancelled: the URL receives only [USER.UPDATED]") {
		t.Errorf("cancelled entry: %v", got)
	}
	if l := e.logs(t, &hubhooksv1.ListEventLogsRequest{HubId: "acme", Status: "retrying"}); len(l) != 1 || l[0].GetEventType() != "USER.UPDATED" {
		t.Errorf("still retrying: %v, want the USER.UPDATED delivery", l)
	}
}

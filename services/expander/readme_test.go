package expander_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/hubhooks/hubhooks/pkg/cascade"
	eventsv1 "github.com/hubhooks/hubhooks/proto/hubhooks/events/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/expander"
)

// TestReadmeSampleBodies holds README.md's sample bodies to what the
// expander makes of step 4's domain event: the same cascade, the same
// payloads (the fallback to the whole data included), ids and fields.
func TestReadmeSampleBodies(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok1 := strings.Cut(string(readme), "<!-- sample bodies -->\n```json\n")
	sample, _, ok2 := strings.Cut(rest, "```\n<!-- /sample bodies -->")
	if !ok1 || !ok2 {
		t.Fatal("README.md has no sample bodies between their markers")
	}
	// Step 4's event, as the README publishes it.
	_, rest, _ = strings.Cut(string(readme), "-H Content-Type:application/json -H Nats-Msg-Id:evt-1 \\\n     '")
	published, _, _ := strings.Cut(rest, "'")
	ev := &eventsv1.DomainEvent{}
	if err := protojson.Unmarshal([]byte(published), ev); err != nil {
		t.Fatalf("README's step 4 event %q: %v", published, err)
	}
	cfg := &hubhooksv1.HubConfig{HubId: ev.GetHubId(), EventsEnabled: true, Version: 1,
		CallbackUrls: []*hubhooksv1.CallbackUrl{{Id: "url_1", Url: "http://127.0.0.1:9999/hooks"}}}
	fanouts, skip, err := expander.Expansion{Event: ev, Subject: ev.GetType(), Config: cfg,
		Arrived: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}.Fanouts(cascade.Default())
	if err != nil || skip != "" {
		t.Fatalf("expansion: %v, %q", err, skip)
	}
	var want strings.Builder
	for _, f := range fanouts {
		want.Write(f.GetJob().GetBody())
		want.WriteByte('\n')
	}
	if sample != want.String() {
		t.Fatalf("README.md's sample bodies:\n%s\nwhat step 4's event sends:\n%s", sample, want.String())
	}
}

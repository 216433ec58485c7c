package main

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/poll"
	eventsv1 "github.com/hubhooks/hubhooks/proto/hubhooks/events/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/hubd/hubdtest"
)

func TestDLQListCommand(t *testing.T) {
	h := hubdtest.Start(t, hubdtest.Options{AdminToken: testAdmin})
	c := newCLI(t, "HUBHOOKS_ADDR", h.GRPCAddr, "HUBHOOKS_TOKEN", testAdmin)
	publish(t, h.JS, &eventsv1.DomainEvent{Id: "evt-nohub", Type: "API.CREATED"})
	publish(t, h.JS, &eventsv1.DomainEvent{Id: "evt-acme", HubId: "acme", Type: "API.CREATED", OccurredAt: &timestamppb.Timestamp{Nanos: -1}})

	var out string
	poll.Until(t, 20*time.Second, "two dead letters listed", func() bool {
		out = c.ok("dlq", "list")
		return strings.Count(out, "\n") == 3
	})
	// The expander takes the two events concurrently: either may be
	// dead-lettered first.
	for _, want := range []string{`SEQ +TIME +KIND +SUBJECT +HUB +EVENT ID +REASON`,
		`\n[12] .* events +API\.CREATED +- +evt-nohub +missing_hub_id: hub_id is required\n`,
		`\n[12] .* events +API\.CREATED +acme +evt-acme +bad_occurred_at: `} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("dlq list does not match %q:\n%s", want, out)
		}
	}
	got := jsonOf(t, c.ok("--hub", "acme", "dlq", "list", "--kind", "events", "--since", "1h", "-o", "json"), &hubhooksv1.ListDeadLettersResponse{})
	if dls := got.GetDeadLetters(); len(dls) != 1 || dls[0].GetEventId() != "evt-acme" || dls[0].GetSubject() != "API.CREATED" || len(dls[0].GetBody()) == 0 {
		t.Errorf("dlq list --hub acme -o json: %v", got)
	}
	if out, errOut, code := c.run("dlq", "list", "--limit", "1"); code != 0 || strings.Count(out, "\n") != 2 || !strings.Contains(errOut, "more dead letters") {
		t.Errorf("dlq list --limit 1: exit %d\n%s\n%s", code, out, errOut)
	}
	c.fails(exitUsage, "dlq", "list", "--kind", "deliveries")

	tok := jsonOf(t, c.ok("--hub", "acme", "tokens", "create", "-o", "json"), &hubhooksv1.CreateHubTokenResponse{})
	hubTok := newCLI(t, "HUBHOOKS_ADDR", h.GRPCAddr, "HUBHOOKS_TOKEN", tok.GetToken(), "HUBHOOKS_HUB", "acme")
	if errOut := hubTok.fails(exitAuth, "dlq", "list"); !strings.Contains(errOut, "admin token") {
		t.Errorf("dlq list with a hub token: %q", errOut)
	}
}

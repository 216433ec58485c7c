package operations_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/auth"
	"github.com/hubhooks/hubhooks/pkg/poll"
	eventsv1 "github.com/hubhooks/hubhooks/proto/hubhooks/events/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/hubd/hubdtest"
)

// TestListDeadLetters: malformed domain events published to hubd are
// listed with their reason, event id, hub and sequence; only the admin
// token may list them.
func TestListDeadLetters(t *testing.T) {
	const admin = "admin-token-0123456789"
	h := hubdtest.Start(t, hubdtest.Options{AdminToken: admin})
	ops := hubhooksv1.NewOperationsServiceClient(h.Conn)
	ctx := ctxT(t)
	start := time.Now()

	// A protobuf event whose type contradicts its subject (id and hub
	// readable), then bytes that are no protobuf (the id only in the
	// Nats-Msg-Id the publisher set).
	mismatch, err := proto.Marshal(&eventsv1.DomainEvent{Id: "evt-mismatch", HubId: "hub-dlq", Type: "USER.CREATED"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []struct {
		id   string
		body []byte
	}{{"evt-mismatch", mismatch}, {"evt-garbage", []byte{0xff, 0xff, 0xff}}} {
		m := nats.NewMsg("API.CREATED")
		m.Header.Set(jetstream.MsgIDHeader, ev.id)
		m.Header.Set("Content-Type", "application/protobuf")
		m.Data = ev.body
		if _, err := h.JS.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	var all []*hubhooksv1.DeadLetter
	poll.Until(t, 20*time.Second, "two dead letters", func() bool {
		resp, err := ops.ListDeadLetters(ctx, &hubhooksv1.ListDeadLettersRequest{})
		if err != nil {
			t.Fatal(err)
		}
		all = resp.GetDeadLetters()
		return len(all) == 2
	})
	byID := map[string]*hubhooksv1.DeadLetter{}
	for _, dl := range all {
		byID[dl.GetEventId()] = dl
	}
	mm, garbage := byID["evt-mismatch"], byID["evt-garbage"]
	if mm == nil || garbage == nil {
		t.Fatalf("dead letters %v, want evt-mismatch and evt-garbage", all)
	}
	if mm.GetHubId() != "hub-dlq" || mm.GetKind() != "events" || mm.GetSubject() != "API.CREATED" ||
		mm.GetOriginalStream() != "HUBHOOKS_EVENTS" || mm.GetOriginalSequence() == 0 || mm.GetSequence() == 0 ||
		!bytes.Equal(mm.GetBody(), mismatch) || mm.GetBodySize() != int64(len(mismatch)) || mm.GetBodyTruncated() ||
		mm.GetContentType() != "application/protobuf" || mm.GetTime().AsTime().Before(start.Add(-time.Second)) {
		t.Errorf("type mismatch dead letter = %v", mm)
	}
	if want := `type_mismatch: type "USER.CREATED" contradicts subject "API.CREATED"`; mm.GetReason() != want {
		t.Errorf("reason %q, want %q", mm.GetReason(), want)
	}
	if garbage.GetHubId() != "" || !bytes.HasPrefix([]byte(garbage.GetReason()), []byte("decode: ")) {
		t.Errorf("garbage dead letter = %v", garbage)
	}

	list := func(req *hubhooksv1.ListDeadLettersRequest) *hubhooksv1.ListDeadLettersResponse {
		t.Helper()
		resp, err := ops.ListDeadLetters(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if got := list(&hubhooksv1.ListDeadLettersRequest{HubId: "hub-dlq"}).GetDeadLetters(); len(got) != 1 || got[0].GetEventId() != "evt-mismatch" {
		t.Errorf("hub filter: %v", got)
	}
	if got := list(&hubhooksv1.ListDeadLettersRequest{Kind: "jobs"}).GetDeadLetters(); len(got) != 0 {
		t.Errorf("jobs: %v", got)
	}
	later := all[1].GetSequence()
	if got := list(&hubhooksv1.ListDeadLettersRequest{SinceSequence: later}).GetDeadLetters(); len(got) != 1 || got[0].GetSequence() != later {
		t.Errorf("since_sequence %d: %v", later, got)
	}
	if got := list(&hubhooksv1.ListDeadLettersRequest{Since: all[1].GetTime()}).GetDeadLetters(); len(got) == 0 || got[len(got)-1].GetSequence() != later {
		t.Errorf("since %v: %v", all[1].GetTime().AsTime(), got)
	}
	if got := list(&hubhooksv1.ListDeadLettersRequest{Since: timestamppb.New(time.Now().Add(time.Hour))}).GetDeadLetters(); len(got) != 0 {
		t.Errorf("since an hour ahead: %v", got)
	}
	first := list(&hubhooksv1.ListDeadLettersRequest{PageSize: 1})
	if len(first.GetDeadLetters()) != 1 || first.GetNextPageToken() == "" {
		t.Fatalf("page 1: %v", first)
	}
	second := list(&hubhooksv1.ListDeadLettersRequest{PageSize: 1, PageToken: first.GetNextPageToken()})
	if len(second.GetDeadLetters()) != 1 || second.GetDeadLetters()[0].GetSequence() != later || second.GetNextPageToken() != "" {
		t.Fatalf("page 2: %v", second)
	}
	if _, err := ops.ListDeadLetters(ctx, &hubhooksv1.ListDeadLettersRequest{Kind: "deliveries"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("kind deliveries: %v, want InvalidArgument", err)
	}

	// A hub token is refused, its own hub named or not.
	if _, err := h.Config.SetEventsEnabled(ctx, &hubhooksv1.SetEventsEnabledRequest{HubId: "hub-dlq", Enabled: true}); err != nil {
		t.Fatal(err)
	}
	tok, err := h.Config.CreateHubToken(ctx, &hubhooksv1.CreateHubTokenRequest{HubId: "hub-dlq"})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(h.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.BearerCredentials(tok.GetToken())))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hubOps := hubhooksv1.NewOperationsServiceClient(conn)
	for _, req := range []*hubhooksv1.ListDeadLettersRequest{{HubId: "hub-dlq"}, {}} {
		if _, err := hubOps.ListDeadLetters(ctx, req); status.Code(err) != codes.PermissionDenied {
			t.Errorf("hub token, hub_id %q: %v, want PermissionDenied", req.GetHubId(), err)
		}
	}
}

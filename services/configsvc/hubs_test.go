package configsvc_test

import (
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"

	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

func TestListHubsPagesInOrder(t *testing.T) {
	e := newEnv(t)
	s := e.startServer(t, "")
	ctx := ctxT(t)
	for i := range 7 {
		if _, err := s.client.SetEventsEnabled(ctx, &hubhooksv1.SetEventsEnabledRequest{HubId: fmt.Sprintf("team-%d", 6-i), Enabled: i%2 == 0}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.client.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: "other", Url: "http://127.0.0.1:9/x"}); err != nil {
		t.Fatal(err)
	}
	var got []string
	token, pages := "", 0
	for {
		resp, err := s.client.ListHubs(ctx, &hubhooksv1.ListHubsRequest{Prefix: "team-", PageSize: 3, PageToken: token})
		if err != nil {
			t.Fatalf("ListHubs: %v", err)
		}
		for _, h := range resp.GetHubs() {
			got = append(got, h.GetHubId())
		}
		pages++
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	want := "[team-0 team-1 team-2 team-3 team-4 team-5 team-6]"
	if fmt.Sprint(got) != want || pages != 3 {
		t.Fatalf("ListHubs pages: %v in %d pages, want %s in 3", got, pages, want)
	}
	all, err := s.client.ListHubs(ctx, &hubhooksv1.ListHubsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(all.GetHubs()); n != 8 || all.GetHubs()[0].GetHubId() != "other" || all.GetHubs()[0].GetCallbackUrlCount() != 1 {
		t.Fatalf("ListHubs without prefix: %v", all.GetHubs())
	}
	_, err = s.client.ListHubs(ctx, &hubhooksv1.ListHubsRequest{PageToken: "nope"})
	wantCode(t, err, codes.InvalidArgument)
	_, err = s.client.ListHubs(ctx, &hubhooksv1.ListHubsRequest{PageSize: -1})
	wantCode(t, err, codes.InvalidArgument)
}

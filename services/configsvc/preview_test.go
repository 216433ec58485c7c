package configsvc_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/hubhooks/hubhooks/pkg/webhook"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// The preview is the request a test event sends: signed with the hub's
// secret (masked in the headers), the sample or the given body, nothing sent.
func TestPreviewTestEvent(t *testing.T) {
	e := newEnv(t)
	s := e.startServer(t, "")
	ctx := ctxT(t)
	cfg, err := s.client.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: "acme", Url: "http://127.0.0.1:9/hooks"})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.client.PreviewTestEvent(ctx, &hubhooksv1.SendTestEventRequest{HubId: "acme", EventType: "BILLINGPLAN.CREATED", Url: "http://127.0.0.1:9/hooks"})
	if err != nil {
		t.Fatalf("PreviewTestEvent: %v", err)
	}
	req := resp.GetRequest()
	if req.GetMethod() != "POST" || req.GetUrl() != "http://127.0.0.1:9/hooks" || req.GetHeaders()[webhook.HeaderSecret] != webhook.MaskSecret {
		t.Fatalf("preview = %s %s, secret header %q", req.GetMethod(), req.GetUrl(), req.GetHeaders()[webhook.HeaderSecret])
	}
	var body struct {
		Type string `json:"type"`
		Test bool   `json:"test"`
	}
	if err := json.Unmarshal([]byte(req.GetBody()), &body); err != nil || body.Type != "BILLINGPLAN.CREATED" {
		t.Fatalf("preview body %s (%v)", req.GetBody(), err)
	}
	h := http.Header{}
	for k, v := range req.GetHeaders() {
		h.Set(k, v)
	}
	ts, _ := strconv.ParseInt(h.Get(webhook.HeaderTimestamp), 10, 64)
	if err := webhook.Verify(cfg.GetSecret(), h, []byte(req.GetBody()), time.Hour, time.Unix(ts, 0)); err != nil {
		t.Fatalf("preview signature does not verify with the hub's secret: %v", err)
	}

	custom, err := s.client.PreviewTestEvent(ctx, &hubhooksv1.SendTestEventRequest{HubId: "acme", EventType: "API.CREATED", Url: "http://127.0.0.1:9/hooks", Body: `{"id":"api_mine"}`})
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Data map[string]any `json:"data"`
	}
	if err := json.Unmarshal([]byte(custom.GetRequest().GetBody()), &got); err != nil || got.Data["id"] != "api_mine" {
		t.Fatalf("preview with a body: %s", custom.GetRequest().GetBody())
	}
	_, err = s.client.PreviewTestEvent(ctx, &hubhooksv1.SendTestEventRequest{HubId: "acme", EventType: "API.CREATED", Url: "http://127.0.0.1:9/other"})
	wantCode(t, err, codes.NotFound)
	_, err = s.client.PreviewTestEvent(ctx, &hubhooksv1.SendTestEventRequest{HubId: "acme", EventType: "API.CREATED", Url: "http://127.0.0.1:9/hooks", Body: `[1]`})
	wantCode(t, err, codes.InvalidArgument)
}

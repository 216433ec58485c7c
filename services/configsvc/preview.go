package configsvc

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/hubhooks/hubhooks/pkg/webhook"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// previewTestEvent is PreviewTestEvent: the request SendTestEvent would
// POST for req, built the same way, sent nowhere. Its webhook id, timestamp
// and signature are those of this preview: a send makes them anew.
func (s *Service) previewTestEvent(ctx context.Context, req *hubhooksv1.SendTestEventRequest) (*hubhooksv1.PreviewTestEventResponse, error) {
	te, err := s.prepareTestEvent(ctx, req)
	if err != nil {
		return nil, err
	}
	secrets := webhook.SigningSecrets(te.cfg, te.now)
	if len(secrets) == 0 {
		return nil, invalidf("hub %s has no secret yet: add a callback URL or generate a secret first", req.GetHubId())
	}
	sig, err := webhook.SignatureHeader(secrets, te.evt.ID, te.now, te.body)
	if err != nil {
		return nil, fmt.Errorf("sign preview: %w", err)
	}
	return &hubhooksv1.PreviewTestEventResponse{Request: &hubhooksv1.HttpRequest{
		Url:    te.target.GetUrl(),
		Method: http.MethodPost,
		Body:   string(te.body),
		Headers: map[string]string{
			"Content-Type":          "application/json",
			"User-Agent":            "hubhooks/" + webhook.Version,
			webhook.HeaderID:        te.evt.ID,
			webhook.HeaderTimestamp: strconv.FormatInt(te.now.Unix(), 10),
			webhook.HeaderSignature: sig,
			webhook.HeaderSecret:    webhook.MaskSecret,
		},
	}}, nil
}

func (g *grpcServer) PreviewTestEvent(ctx context.Context, req *hubhooksv1.SendTestEventRequest) (*hubhooksv1.PreviewTestEventResponse, error) {
	resp, err := g.svc.previewTestEvent(ctx, req)
	return resp, grpcError(err)
}

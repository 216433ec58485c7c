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
	r, err := previewRequest(te)
	if err != nil {
		return nil, err
	}
	return &hubhooksv1.PreviewTestEventResponse{Request: r}, nil
}

// previewTestDomainEvent is PreviewTestDomainEvent: the requests
// SendTestDomainEvent would POST for req, in cascade order, sent nowhere.
func (s *Service) previewTestDomainEvent(ctx context.Context, req *hubhooksv1.SendTestDomainEventRequest) (*hubhooksv1.PreviewTestDomainEventResponse, error) {
	_, events, err := s.prepareTestDomainEvent(ctx, req)
	if err != nil {
		return nil, err
	}
	resp := &hubhooksv1.PreviewTestDomainEventResponse{}
	for _, te := range events {
		r, err := previewRequest(te)
		if err != nil {
			return nil, err
		}
		resp.Requests = append(resp.Requests, r)
	}
	return resp, nil
}

// previewRequest is the request a send of te would POST, signed with the
// hub's secrets, the secret header masked.
func previewRequest(te *testEvent) (*hubhooksv1.HttpRequest, error) {
	secrets := webhook.SigningSecrets(te.cfg, te.now)
	if len(secrets) == 0 {
		return nil, invalidf("hub %s has no secret yet: add a callback URL or generate a secret first", te.evt.HubID)
	}
	sig, err := webhook.SignatureHeader(secrets, te.evt.ID, te.now, te.body)
	if err != nil {
		return nil, fmt.Errorf("sign preview: %w", err)
	}
	return &hubhooksv1.HttpRequest{
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
	}, nil
}

func (g *grpcServer) PreviewTestEvent(ctx context.Context, req *hubhooksv1.SendTestEventRequest) (*hubhooksv1.PreviewTestEventResponse, error) {
	resp, err := g.svc.previewTestEvent(ctx, req)
	return resp, grpcError(err)
}

func (g *grpcServer) PreviewTestDomainEvent(ctx context.Context, req *hubhooksv1.SendTestDomainEventRequest) (*hubhooksv1.PreviewTestDomainEventResponse, error) {
	resp, err := g.svc.previewTestDomainEvent(ctx, req)
	return resp, grpcError(err)
}

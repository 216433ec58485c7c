package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// completeFrom is a shell completion that asks the server: fetch lists the
// candidates. Completion runs without the commands' pre-run, so the
// settings are resolved here; any failure completes nothing.
func (a *app) completeFrom(fetch func(ctx context.Context) ([]string, error)) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		if a.set == nil {
			s, err := resolve(cmd, &a.flags, a.getenv)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			a.set = s
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		vals, err := fetch(ctx)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return vals, cobra.ShellCompDirectiveNoFileComp
	}
}

// webhookTypes lists every webhook event type.
func (a *app) webhookTypes(ctx context.Context) ([]string, error) {
	cc, err := a.configClient()
	if err != nil {
		return nil, err
	}
	resp, err := cc.ListEventTypes(ctx, &hubhooksv1.ListEventTypesRequest{})
	if err != nil {
		return nil, err
	}
	return resp.GetWebhookEventTypes(), nil
}

// domainTypes lists every domain event type (the rules' subjects).
func (a *app) domainTypes(ctx context.Context) ([]string, error) {
	cc, err := a.configClient()
	if err != nil {
		return nil, err
	}
	resp, err := cc.ListEventTypes(ctx, &hubhooksv1.ListEventTypesRequest{})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range resp.GetRules() {
		out = append(out, r.GetDomainSubject()+"\t"+r.GetName())
	}
	return out, nil
}

// urlIDs lists the hub's callback URL ids, each described by its URL.
func (a *app) urlIDs(ctx context.Context) ([]string, error) {
	cfg, err := a.hubConfig(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, u := range cfg.GetCallbackUrls() {
		out = append(out, u.GetId()+"\t"+u.GetUrl())
	}
	return out, nil
}

// urls lists the hub's callback URLs.
func (a *app) urls(ctx context.Context) ([]string, error) {
	cfg, err := a.hubConfig(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, u := range cfg.GetCallbackUrls() {
		out = append(out, u.GetUrl())
	}
	return out, nil
}

// hubIDs lists the configured hubs (the admin token's view; a hub token
// completes nothing).
func (a *app) hubIDs(ctx context.Context) ([]string, error) {
	cc, err := a.configClient()
	if err != nil {
		return nil, err
	}
	resp, err := cc.ListHubs(ctx, &hubhooksv1.ListHubsRequest{PageSize: 500})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, h := range resp.GetHubs() {
		out = append(out, h.GetHubId())
	}
	return out, nil
}

func (a *app) hubConfig(ctx context.Context) (*hubhooksv1.HubConfig, error) {
	hub, err := a.hub()
	if err != nil {
		return nil, err
	}
	cc, err := a.configClient()
	if err != nil {
		return nil, err
	}
	return cc.GetHubConfig(ctx, &hubhooksv1.GetHubConfigRequest{HubId: hub})
}

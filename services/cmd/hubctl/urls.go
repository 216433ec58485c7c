package main

import (
	"context"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hubhooks/hubhooks/pkg/urlguard"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

func (a *app) urlsCmd() *cobra.Command {
	c := group(&cobra.Command{
		Use:     "urls",
		Aliases: []string{"url"},
		Short:   "List, add, change and remove the hub's callback URLs",
		Long: `A hub has up to five callback URLs. Each gets every webhook of the hub unless
it is disabled or takes only some webhook event types ('hubctl urls set
--types'). A URL is named by itself or by its id (url_...), as 'hubctl urls
list' shows. Changes reach the delivery path within a second; disabling a URL
or taking types away cancels its pending retries of what it no longer takes.`,
	})
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the hub's callback URLs",
		Example: "  hubctl --hub acme urls list",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.getConfig(cmd)
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return printJSON(a.stdout, cfg)
			}
			return a.printURLs(cfg)
		},
	}
	var addOpts urlOptions
	add := &cobra.Command{
		Use:   "add <url>",
		Short: "Add a callback URL",
		Long: `Add an absolute http(s) URL. At most five per hub; the same endpoint twice is
refused; addresses on private networks are refused unless the server allows
them (HUBHOOKS_ALLOWED_CIDRS). --types limits the webhook event types it
receives (default: every type).`,
		Example: "  hubctl --hub acme urls add https://example.com/hooks\n  hubctl --hub acme urls add https://example.com/plans --types BILLINGPLAN.CREATED,BILLINGPLAN.UPDATED --description 'plan sync'",
		Args:    exactArgs(1, "one URL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withHub(a, cmd, a.configClient, func(ctx context.Context, cc hubhooksv1.ConfigServiceClient, hub string) error {
				cfg, err := cc.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: hub, Url: args[0], EventTypes: addOpts.types, Description: addOpts.description})
				if err != nil {
					return err
				}
				if a.jsonOut() {
					return printJSON(a.stdout, cfg)
				}
				return a.printURLs(cfg)
			})
		},
	}
	remove := &cobra.Command{
		Use:     "remove <url or id>",
		Aliases: []string{"rm"},
		Short:   "Remove a callback URL; its pending retries are cancelled",
		Example: "  hubctl --hub acme urls remove https://example.com/hooks\n  hubctl --hub acme urls remove url_2bX9...",
		Args:    exactArgs(1, "the URL or its id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withHub(a, cmd, a.configClient, func(ctx context.Context, cc hubhooksv1.ConfigServiceClient, hub string) error {
				req := &hubhooksv1.RemoveCallbackUrlRequest{HubId: hub}
				req.Id, req.Url = urlName(args[0])
				cfg, err := cc.RemoveCallbackUrl(ctx, req)
				if err != nil {
					return err
				}
				if a.jsonOut() {
					return printJSON(a.stdout, cfg)
				}
				return a.printURLs(cfg)
			})
		},
	}
	add.Flags().StringSliceVar(&addOpts.types, "types", nil, "webhook event types the URL receives, comma-separated (default: every type)")
	add.Flags().StringVar(&addOpts.description, "description", "", "what the URL is for")
	_ = add.RegisterFlagCompletionFunc("types", a.completeFrom(a.webhookTypes))
	remove.ValidArgsFunction = a.completeFrom(a.urlIDs)

	var setOpts urlOptions
	var allTypes, opsEvents bool
	set := &cobra.Command{
		Use:   "set <url or id>",
		Short: "Change which webhook event types a URL receives, or its description",
		Example: `  hubctl --hub acme urls set url_2bX9... --types API.CREATED,API.UPDATED
  hubctl --hub acme urls set url_2bX9... --all-types
  hubctl --hub acme urls set https://example.com/hooks --description 'CRM sync'
  hubctl --hub acme urls set https://example.com/ops --operational-events`,
		Args: exactArgs(1, "the URL or its id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := urlRequest(args[0])
			switch {
			case allTypes && cmd.Flags().Changed("types"):
				return usagef("--types and --all-types: choose one")
			case allTypes:
				req.EventTypes = &hubhooksv1.EventTypeFilter{}
			case cmd.Flags().Changed("types"):
				if len(setOpts.types) == 0 {
					return usagef("--types needs at least one type; --all-types receives every type")
				}
				req.EventTypes = &hubhooksv1.EventTypeFilter{Types: setOpts.types}
			}
			if cmd.Flags().Changed("description") {
				req.Description = &setOpts.description
			}
			if cmd.Flags().Changed("operational-events") {
				req.OperationalEvents = &opsEvents
			}
			if req.EventTypes == nil && req.Description == nil && req.OperationalEvents == nil {
				return usagef("nothing to change: pass --types, --all-types, --description or --operational-events")
			}
			return a.configureURL(cmd, req)
		},
	}
	set.Flags().StringSliceVar(&setOpts.types, "types", nil, "webhook event types the URL receives, comma-separated")
	set.Flags().BoolVar(&allTypes, "all-types", false, "receive every webhook event type")
	set.Flags().StringVar(&setOpts.description, "description", "", "what the URL is for")
	set.Flags().BoolVar(&opsEvents, "operational-events", false, "receive the hub's operational events as webhooks (one URL per hub; =false stops)")
	_ = set.RegisterFlagCompletionFunc("types", a.completeFrom(a.webhookTypes))
	set.ValidArgsFunction = a.completeFrom(a.urlIDs)

	var reason string
	disable := &cobra.Command{
		Use:   "disable <url or id>",
		Short: "Stop every delivery to a URL until it is enabled again",
		Long: `Disable a URL: nothing is sent to it until 'hubctl urls enable', and its pending
retries are cancelled (logged as cancelled). hubhooks disables a URL by itself
when it has failed every attempt for the auto-disable period; the reason
shows in 'hubctl urls list'.`,
		Example: "  hubctl --hub acme urls disable url_2bX9... --reason 'receiver migrating'",
		Args:    exactArgs(1, "the URL or its id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := urlRequest(args[0])
			req.Enabled, req.DisabledReason = new(bool), reason
			return a.configureURL(cmd, req)
		},
	}
	disable.Flags().StringVar(&reason, "reason", "", "why (shown with the URL)")
	disable.ValidArgsFunction = a.completeFrom(a.urlIDs)
	enable := &cobra.Command{
		Use:     "enable <url or id>",
		Short:   "Deliver to a disabled URL again",
		Example: "  hubctl --hub acme urls enable url_2bX9...",
		Args:    exactArgs(1, "the URL or its id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := urlRequest(args[0])
			on := true
			req.Enabled = &on
			return a.configureURL(cmd, req)
		},
	}
	enable.ValidArgsFunction = a.completeFrom(a.urlIDs)
	c.AddCommand(list, add, remove, a.urlUpdateCmd(), set, disable, enable)
	return c
}

func (a *app) urlUpdateCmd() *cobra.Command {
	c := &cobra.Command{
		Use:     "update <url or id> <new url>",
		Aliases: []string{"edit"},
		Short:   "Change a URL's address, keeping its id, settings and deliveries",
		Long: `Move a callback URL to a new address. The URL keeps its id, description, event
types and enabled state; the new address is checked as 'urls add' checks one.
Deliveries to it that are pending or retrying go to the new address from
their next attempt on; the log shows each attempt with the address it went
to.`,
		Example: "  hubctl --hub acme urls update url_2bX9... https://new.example.com/hooks\n  hubctl --hub acme urls update https://old.example.com/hooks https://new.example.com/hooks",
		Args:    exactArgs(2, "the URL or its id, and the new URL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withHub(a, cmd, a.configClient, func(ctx context.Context, cc hubhooksv1.ConfigServiceClient, hub string) error {
				id, old := urlName(args[0])
				if id == "" {
					cfg, err := cc.GetHubConfig(ctx, &hubhooksv1.GetHubConfigRequest{HubId: hub})
					if err != nil {
						return err
					}
					if id = urlIDOf(cfg, old); id == "" {
						return notFoundf("hub %s has no callback URL %s ('hubctl urls list' shows them; name it by id)", hub, old)
					}
				}
				cfg, err := cc.UpdateCallbackUrl(ctx, &hubhooksv1.UpdateCallbackUrlRequest{HubId: hub, Id: id, Url: args[1]})
				if err != nil {
					return err
				}
				if a.jsonOut() {
					return printJSON(a.stdout, cfg)
				}
				return a.printURLs(cfg)
			})
		},
	}
	c.ValidArgsFunction = a.completeFrom(a.urlIDs)
	return c
}

// urlIDOf is the id of the hub's URL s, however it is spelled (the server
// stores URLs in urlguard's normal form); "" when there is none.
func urlIDOf(cfg *hubhooksv1.HubConfig, s string) string {
	want := s
	if u, err := url.Parse(s); err == nil {
		want = urlguard.Normalize(u)
	}
	for _, c := range cfg.GetCallbackUrls() {
		if c.GetUrl() == s || c.GetUrl() == want {
			return c.GetId()
		}
	}
	return ""
}

// urlOptions are the per-URL settings of add and set.
type urlOptions struct {
	types       []string
	description string
}

// urlName splits a command-line name of a URL into the id or the URL.
func urlName(s string) (id, url string) {
	if strings.HasPrefix(s, "url_") && !strings.Contains(s, "/") {
		return s, ""
	}
	return "", s
}

// urlRequest is a ConfigureCallbackUrl request naming the URL s (the hub
// is set by configureURL).
func urlRequest(s string) *hubhooksv1.ConfigureCallbackUrlRequest {
	req := &hubhooksv1.ConfigureCallbackUrlRequest{}
	req.Id, req.Url = urlName(s)
	return req
}

// configureURL sends req for the hub and prints the URLs.
func (a *app) configureURL(cmd *cobra.Command, req *hubhooksv1.ConfigureCallbackUrlRequest) error {
	hub, err := a.hub()
	if err != nil {
		return err
	}
	req.HubId = hub
	cc, err := a.configClient()
	if err != nil {
		return err
	}
	ctx, cancel := a.call(cmd.Context())
	defer cancel()
	cfg, err := cc.ConfigureCallbackUrl(ctx, req)
	if err != nil {
		return err
	}
	if a.jsonOut() {
		return printJSON(a.stdout, cfg)
	}
	return a.printURLs(cfg)
}

// getConfig reads the hub's configuration.
func (a *app) getConfig(cmd *cobra.Command) (*hubhooksv1.HubConfig, error) {
	ctx, cancel := a.call(cmd.Context())
	defer cancel()
	return a.hubConfig(ctx)
}

// printURLs prints the hub's callback URLs as a table.
func (a *app) printURLs(cfg *hubhooksv1.HubConfig) error {
	t := newTable(a.stdout, "ID", "URL", "STATE", "EVENT TYPES", "DESCRIPTION", "ADDED")
	for _, u := range cfg.GetCallbackUrls() {
		state := "enabled"
		if u.GetDisabled() {
			state = "disabled since " + when(u.GetDisabledAt()) + ": " + u.GetDisabledReason()
		}
		types := "all"
		if len(u.GetEventTypes()) > 0 {
			types = strings.Join(u.GetEventTypes(), ",")
		}
		if u.GetOperationalEvents() {
			types += " + operational events"
		}
		t.row(u.GetId(), u.GetUrl(), state, types, orDash(u.GetDescription()), when(u.GetCreatedAt()))
	}
	return t.flush()
}

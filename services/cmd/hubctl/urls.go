package main

import (
	"strings"

	"github.com/spf13/cobra"

	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

func (a *app) urlsCmd() *cobra.Command {
	c := group(&cobra.Command{
		Use:     "urls",
		Aliases: []string{"url"},
		Short:   "List, add and remove the hub's callback URLs",
		Long: `A hub has up to five callback URLs; each gets every webhook of the hub.
A URL is named by itself or by its id (url_...), as 'hubctl urls list' shows.`,
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
	add := &cobra.Command{
		Use:   "add <url>",
		Short: "Add a callback URL",
		Long: `Add an absolute http(s) URL. At most five per hub; the same endpoint twice is
refused; addresses on private networks are refused unless the server allows
them (HUBHOOKS_ALLOWED_CIDRS).`,
		Example: "  hubctl --hub acme urls add https://example.com/hooks",
		Args:    exactArgs(1, "one URL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			hub, err := a.hub()
			if err != nil {
				return err
			}
			cc, err := a.configClient()
			if err != nil {
				return err
			}
			ctx, cancel := a.call(cmd.Context())
			defer cancel()
			cfg, err := cc.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: hub, Url: args[0]})
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return printJSON(a.stdout, cfg)
			}
			return a.printURLs(cfg)
		},
	}
	remove := &cobra.Command{
		Use:     "remove <url or id>",
		Aliases: []string{"rm"},
		Short:   "Remove a callback URL; its pending retries are cancelled",
		Example: "  hubctl --hub acme urls remove https://example.com/hooks\n  hubctl --hub acme urls remove url_2bX9...",
		Args:    exactArgs(1, "the URL or its id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			hub, err := a.hub()
			if err != nil {
				return err
			}
			cc, err := a.configClient()
			if err != nil {
				return err
			}
			ctx, cancel := a.call(cmd.Context())
			defer cancel()
			req := &hubhooksv1.RemoveCallbackUrlRequest{HubId: hub}
			if isURLID(args[0]) {
				req.Id = args[0]
			} else {
				req.Url = args[0]
			}
			cfg, err := cc.RemoveCallbackUrl(ctx, req)
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return printJSON(a.stdout, cfg)
			}
			return a.printURLs(cfg)
		},
	}
	remove.ValidArgsFunction = a.completeFrom(a.urlIDs)
	c.AddCommand(list, add, remove)
	return c
}

// isURLID tells a URL id (url_...) from a URL.
func isURLID(s string) bool { return strings.HasPrefix(s, "url_") && !strings.Contains(s, "/") }

// getConfig reads the hub's configuration.
func (a *app) getConfig(cmd *cobra.Command) (*hubhooksv1.HubConfig, error) {
	ctx, cancel := a.call(cmd.Context())
	defer cancel()
	return a.hubConfig(ctx)
}

// printURLs prints the hub's callback URLs as a table.
func (a *app) printURLs(cfg *hubhooksv1.HubConfig) error {
	t := newTable(a.stdout, "ID", "URL", "ADDED")
	for _, u := range cfg.GetCallbackUrls() {
		t.row(u.GetId(), u.GetUrl(), when(u.GetCreatedAt()))
	}
	return t.flush()
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

func (a *app) hubCmd() *cobra.Command {
	c := group(&cobra.Command{
		Use:   "hub",
		Short: "Show a hub's webhook configuration, switch its triggers on or off, watch it, delete it",
		Long: `A hub's webhook configuration: the "Enable event triggers" toggle, up to five
callback URLs and the signing secret. Nothing is delivered (or logged) while
the triggers are off or the hub has no URL.`,
	})
	show := &cobra.Command{
		Use:     "show",
		Short:   "Show the hub's configuration",
		Example: "  hubctl --hub acme hub show\n  hubctl --hub acme hub show -o json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withHub(a, cmd, a.configClient, func(ctx context.Context, cc hubhooksv1.ConfigServiceClient, hub string) error {
				cfg, err := cc.GetHubConfig(ctx, &hubhooksv1.GetHubConfigRequest{HubId: hub})
				if err != nil {
					return err
				}
				return a.printHubConfig(cfg)
			})
		},
	}
	toggle := func(use, short string, on bool) *cobra.Command {
		return &cobra.Command{
			Use:   use,
			Short: short,
			Long: short + `. Switching them off cancels the hub's pending retries (logged as
cancelled); events that arrive while they are off are never delivered, unless
replayed ('hubctl replay').`,
			Example: "  hubctl --hub acme hub " + use,
			Args:    noArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return withHub(a, cmd, a.configClient, func(ctx context.Context, cc hubhooksv1.ConfigServiceClient, hub string) error {
					cfg, err := cc.SetEventsEnabled(ctx, &hubhooksv1.SetEventsEnabledRequest{HubId: hub, Enabled: on})
					if err != nil {
						return err
					}
					if !a.jsonOut() && on && len(cfg.GetCallbackUrls()) == 0 {
						fmt.Fprintln(a.stderr, "note: the hub has no callback URL yet; add one with 'hubctl urls add <url>'")
					}
					return a.printHubConfig(cfg)
				})
			},
		}
	}
	var all bool
	watch := &cobra.Command{
		Use:   "watch",
		Short: "Print the hub's configuration and then every change, until interrupted",
		Long: `Print the hub's configuration (or, with --all and the admin token, every hub's)
and then each change as it is made, until Ctrl-C. With -o json, one JSON object
per line.`,
		Example: "  hubctl --hub acme hub watch\n  hubctl hub watch --all -o json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := &hubhooksv1.WatchHubConfigRequest{All: all}
			if !all {
				hub, err := a.hub()
				if err != nil {
					return err
				}
				req.HubId = hub
			}
			cc, err := a.configClient()
			if err != nil {
				return err
			}
			stream, err := cc.WatchHubConfig(cmd.Context(), req)
			if err != nil {
				return err
			}
			for {
				cfg, err := stream.Recv()
				if err != nil {
					if errors.Is(err, io.EOF) || cmd.Context().Err() != nil {
						return nil
					}
					return err
				}
				if a.jsonOut() {
					if err := printJSONLine(a.stdout, cfg); err != nil {
						return err
					}
					continue
				}
				fmt.Fprintf(a.stdout, "%s  hub %s  version %d  triggers %s  urls %d\n",
					when(cfg.GetUpdatedAt()), cfg.GetHubId(), cfg.GetVersion(), onOff(cfg.GetEventsEnabled()), len(cfg.GetCallbackUrls()))
			}
		},
	}
	watch.Flags().BoolVar(&all, "all", false, "watch every hub (admin token)")
	c.AddCommand(show, toggle("enable", "Switch the hub's event triggers on", true), toggle("disable", "Switch the hub's event triggers off", false), watch, a.hubDeleteCmd())
	return c
}

func (a *app) hubDeleteCmd() *cobra.Command {
	var yes bool
	c := &cobra.Command{
		Use:   "delete",
		Short: "Delete everything hubhooks keeps of a hub (admin token)",
		Long: `Delete the hub's configuration (URLs, secrets, the triggers toggle), its hub
tokens, its pending retries and its event log, and stop its deliveries under
way (they end cancelled, unlogged). Other hubs are not touched. The
configuration and tokens are gone when the command returns; the deliverer and
the logger act on it within seconds. The hub id may be configured again
afterwards, as a new hub. It cannot be undone: --yes confirms it; without
--yes, hubctl asks at a terminal and refuses elsewhere. Deleting a hub that
does not exist succeeds.`,
		Example: "  hubctl --hub acme hub delete\n  hubctl --hub acme hub delete --yes -o json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hub, err := a.hub()
			if err != nil {
				return err
			}
			if err := a.confirm(yes, hub, "deleting hub "+hub+" with its URLs, secrets, tokens and event log"); err != nil {
				return err
			}
			cc, err := a.configClient()
			if err != nil {
				return err
			}
			ctx, cancel := a.call(cmd.Context())
			defer cancel()
			resp, err := cc.DeleteHub(ctx, &hubhooksv1.DeleteHubRequest{HubId: hub})
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return printJSON(a.stdout, resp)
			}
			_, err = fmt.Fprintf(a.stdout, "deleted hub %s at %s; %d hub token(s) revoked; its event log goes within seconds\n",
				hub, when(resp.GetDeletedAt()), resp.GetTokensRevoked())
			return err
		},
	}
	c.Flags().BoolVar(&yes, "yes", false, "confirm: the deletion cannot be undone")
	return c
}

func (a *app) hubsCmd() *cobra.Command {
	c := group(&cobra.Command{
		Use:   "hubs",
		Short: "List the configured hubs (admin token)",
	})
	var prefix string
	var limit int
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the configured hubs in id order (admin token)",
		Long: `List the hubs that have a configuration, in hub id order, with their triggers
toggle, number of callback URLs and last change. It needs the admin token.`,
		Example: "  hubctl hubs list\n  hubctl hubs list --prefix acme- --limit 0 -o json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 0 {
				return usagef("--limit %d: 0 (every hub) or more", limit)
			}
			cc, err := a.configClient()
			if err != nil {
				return err
			}
			req := &hubhooksv1.ListHubsRequest{Prefix: prefix}
			out := &hubhooksv1.ListHubsResponse{}
			for {
				req.PageSize = 500
				if limit > 0 {
					req.PageSize = int32(min(500, limit-len(out.Hubs)))
				}
				ctx, cancel := a.call(cmd.Context())
				resp, err := cc.ListHubs(ctx, req)
				cancel()
				if err != nil {
					return err
				}
				out.Hubs = append(out.Hubs, resp.GetHubs()...)
				out.NextPageToken = resp.GetNextPageToken()
				if out.NextPageToken == "" || (limit > 0 && len(out.Hubs) >= limit) {
					break
				}
				req.PageToken = out.NextPageToken
			}
			if a.jsonOut() {
				return printJSON(a.stdout, out)
			}
			t := newTable(a.stdout, "HUB", "TRIGGERS", "URLS", "UPDATED")
			for _, h := range out.GetHubs() {
				t.row(h.GetHubId(), onOff(h.GetEventsEnabled()), strconv.Itoa(int(h.GetCallbackUrlCount())), when(h.GetUpdatedAt()))
			}
			if err := t.flush(); err != nil {
				return err
			}
			if out.NextPageToken != "" {
				fmt.Fprintf(a.stderr, "more hubs: --limit %d, or --limit 0 for every hub\n", limit*2)
			}
			return nil
		},
	}
	list.Flags().StringVar(&prefix, "prefix", "", "only the hubs whose id starts with this")
	list.Flags().IntVar(&limit, "limit", 50, "most hubs to list; 0 lists every one")
	c.AddCommand(list)
	return c
}

// printHubConfig prints a hub's configuration (the secret masked in tables).
func (a *app) printHubConfig(cfg *hubhooksv1.HubConfig) error {
	if a.jsonOut() {
		return printJSON(a.stdout, cfg)
	}
	t := newTable(a.stdout)
	t.row("hub", cfg.GetHubId())
	t.row("triggers", onOff(cfg.GetEventsEnabled()))
	t.row("version", strconv.FormatInt(cfg.GetVersion(), 10))
	t.row("updated", when(cfg.GetUpdatedAt()))
	t.row("secret", orDash(maskSecret(cfg.GetSecret()))+"  ('hubctl secret show' prints it)")
	t.row("urls", strconv.Itoa(len(cfg.GetCallbackUrls())))
	if err := t.flush(); err != nil {
		return err
	}
	if len(cfg.GetCallbackUrls()) > 0 {
		fmt.Fprintln(a.stdout)
		return a.printURLs(cfg)
	}
	return nil
}

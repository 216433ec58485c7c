package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hubhooks/hubhooks/pkg/auth"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

func (a *app) secretCmd() *cobra.Command {
	c := group(&cobra.Command{
		Use:   "secret",
		Short: "Show or rotate the hub's signing secret",
		Long: `Every webhook carries the hub's secret in x-rapidapi-webhook-secret and is
signed with it (webhook-signature, Standard Webhooks). After a rotation the
previous secret keeps signing beside the new one for the grace period
(HUBHOOKS_SECRET_GRACE on the server, 24h by default), so receivers can switch.`,
	})
	show := &cobra.Command{
		Use:     "show",
		Short:   "Print the hub's current secret",
		Example: "  hubctl --hub acme secret show",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.getConfig(cmd)
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return printJSON(a.stdout, &hubhooksv1.GenerateSecretResponse{Secret: cfg.GetSecret()})
			}
			if cfg.GetSecret() == "" {
				fmt.Fprintln(a.stderr, "the hub has no secret yet: it gets one with its first change (or 'hubctl secret rotate')")
				return nil
			}
			fmt.Fprintln(a.stdout, cfg.GetSecret())
			return nil
		},
	}
	rotate := &cobra.Command{
		Use:     "rotate",
		Short:   "Generate a new secret (the \"Generate new\" button)",
		Example: "  hubctl --hub acme secret rotate",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withHub(a, cmd, a.configClient, func(ctx context.Context, cc hubhooksv1.ConfigServiceClient, hub string) error {
				resp, err := cc.GenerateSecret(ctx, &hubhooksv1.GenerateSecretRequest{HubId: hub})
				if err != nil {
					return err
				}
				if a.jsonOut() {
					return printJSON(a.stdout, resp)
				}
				fmt.Fprintln(a.stdout, resp.GetSecret())
				if resp.GetPreviousSecretExpiresAt() != nil {
					fmt.Fprintf(a.stderr, "the previous secret keeps signing until %s\n", when(resp.GetPreviousSecretExpiresAt()))
				}
				return nil
			})
		},
	}
	c.AddCommand(show, rotate)
	return c
}

func (a *app) tokensCmd() *cobra.Command {
	c := group(&cobra.Command{
		Use:     "tokens",
		Aliases: []string{"token"},
		Short:   "Create, list and revoke hub tokens",
		Long: `A hub token acts on one hub only: give it to whoever manages that hub's
webhooks instead of the admin token. Its value is shown once, at creation;
only a hash is stored.`,
	})
	var description string
	create := &cobra.Command{
		Use:     "create",
		Short:   "Create a hub token (printed once)",
		Example: "  hubctl --hub acme tokens create --description 'ci pipeline'",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withHub(a, cmd, a.configClient, func(ctx context.Context, cc hubhooksv1.ConfigServiceClient, hub string) error {
				resp, err := cc.CreateHubToken(ctx, &hubhooksv1.CreateHubTokenRequest{HubId: hub, Description: description})
				if err != nil {
					return err
				}
				if a.jsonOut() {
					return printJSON(a.stdout, resp)
				}
				fmt.Fprintln(a.stdout, resp.GetToken())
				fmt.Fprintf(a.stderr, "token %s created; this is the only time its value is shown\n", resp.GetInfo().GetId())
				return nil
			})
		},
	}
	create.Flags().StringVar(&description, "description", "", "what the token is for, to tell tokens apart")
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the hub's tokens (never their values)",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withHub(a, cmd, a.configClient, func(ctx context.Context, cc hubhooksv1.ConfigServiceClient, hub string) error {
				resp, err := cc.ListHubTokens(ctx, &hubhooksv1.ListHubTokensRequest{HubId: hub})
				if err != nil {
					return err
				}
				if a.jsonOut() {
					return printJSON(a.stdout, resp)
				}
				t := newTable(a.stdout, "ID", "PREFIX", "CREATED", "DESCRIPTION")
				for _, tok := range resp.GetTokens() {
					t.row(tok.GetId(), tok.GetPrefix()+"…", when(tok.GetCreatedAt()), orDash(tok.GetDescription()))
				}
				return t.flush()
			})
		},
	}
	revoke := &cobra.Command{
		Use:     "revoke <token or id>",
		Short:   "Revoke a hub token by its value or its id",
		Example: "  hubctl --hub acme tokens revoke tok_5c1e...",
		Args:    exactArgs(1, "the token or its id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withHub(a, cmd, a.configClient, func(ctx context.Context, cc hubhooksv1.ConfigServiceClient, hub string) error {
				req := &hubhooksv1.RevokeHubTokenRequest{HubId: hub}
				if strings.HasPrefix(args[0], auth.TokenIDPrefix) {
					req.Id = args[0]
				} else {
					req.Token = args[0]
				}
				resp, err := cc.RevokeHubToken(ctx, req)
				if err != nil {
					return err
				}
				if a.jsonOut() {
					return printJSON(a.stdout, resp)
				}
				fmt.Fprintln(a.stdout, "revoked")
				return nil
			})
		},
	}
	c.AddCommand(create, list, revoke)
	return c
}

package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hubhooks/hubhooks/pkg/webhook"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

func (a *app) settingsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "settings",
		Short: "Show the settings in effect and where each comes from",
		Long: `Show the address, token (masked), hub, output format and TLS settings hubctl
uses, and for each whether it came from a flag, an environment variable, the
config file or the default. Nothing is sent.`,
		Example: "  hubctl settings\n  HUBHOOKS_HUB=acme hubctl settings",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s := a.set
			file := s.File
			if file == "" {
				file = "none (" + defaultConfigFile(a.getenv) + " does not exist)"
			}
			token := "none"
			if s.Token != "" {
				token = maskSecret(s.Token)
			}
			t := newTable(a.stdout, "SETTING", "VALUE", "FROM")
			t.row("addr", s.Addr, s.source["addr"])
			t.row("logs-addr", s.LogsAddr, s.source["logs-addr"])
			t.row("token", token, s.source["token"])
			t.row("hub", orDash(s.Hub), s.source["hub"])
			t.row("output", s.Output, s.source["output"])
			t.row("tls", fmt.Sprint(s.TLS), s.source["tls"])
			t.row("ca-file", orDash(s.CAFile), s.source["ca-file"])
			t.row("timeout", s.Timeout.String(), s.source["timeout"])
			t.row("config file", file, "")
			return t.flush()
		},
	}
}

func (a *app) whoamiCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Say whom the token acts for: the admin (every hub) or one hub",
		Long: `Ask the server whom --token / HUBHOOKS_TOKEN acts for: the admin token acts on
every hub, a hub token on its own hub only. A quick check of the address and
token before a script runs.`,
		Example: "  hubctl whoami\n  hubctl whoami -o json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cc, err := a.configClient()
			if err != nil {
				return err
			}
			ctx, cancel := a.call(cmd.Context())
			defer cancel()
			resp, err := cc.WhoAmI(ctx, &hubhooksv1.WhoAmIRequest{})
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return printJSON(a.stdout, resp)
			}
			if resp.GetAdmin() {
				_, err = fmt.Fprintf(a.stdout, "admin at %s: acts on every hub\n", a.set.Addr)
				return err
			}
			if a.set.Hub != "" && a.set.Hub != resp.GetHubId() {
				fmt.Fprintf(a.stderr, "note: --hub is %s, but this token acts on hub %s only\n", a.set.Hub, resp.GetHubId())
			}
			_, err = fmt.Fprintf(a.stdout, "hub token of %s at %s: acts on that hub only\n", resp.GetHubId(), a.set.Addr)
			return err
		},
	}
}

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print hubctl's version",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(a.stdout, "hubctl", webhook.Version)
			return err
		},
	}
}

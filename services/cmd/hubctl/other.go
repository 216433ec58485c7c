package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hubhooks/hubhooks/pkg/webhook"
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

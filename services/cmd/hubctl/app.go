package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/hubhooks/hubhooks/pkg/auth"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// env is what hubctl takes from its process: standard streams and
// variables. Tests give their own.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// interactive is true when stdin is a terminal: a destructive command
	// may then ask a person to confirm.
	interactive bool
}

// globalFlags are the raw values of the persistent flags; resolve turns
// them into settings.
type globalFlags struct {
	addr, logsAddr, token, hub, output, config, caFile, timeout string
	tls                                                         bool
}

// app is one run of hubctl: its environment, settings and connections.
type app struct {
	env
	flags globalFlags
	set   *settings
	conns map[string]*grpc.ClientConn
	// lastAddr is the address of the last connection made, for the hint
	// of an unreachable server.
	lastAddr string
}

// execute runs hubctl with args and returns the exit status; the reason of
// a failure is printed on stderr.
func execute(ctx context.Context, args []string, e env) int {
	a := &app{env: e, conns: map[string]*grpc.ClientConn{}}
	defer a.close()
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	err := root.ExecuteContext(ctx)
	addr := a.lastAddr
	if addr == "" {
		addr = defaultAddr
	}
	code, msg := exitCode(err, ctx.Err() != nil, addr)
	if msg != "" {
		fmt.Fprintln(e.stderr, "hubctl: "+msg)
	}
	return code
}

func (a *app) close() {
	for _, c := range a.conns {
		_ = c.Close()
	}
}

const rootLong = `hubctl configures hubhooks and looks into what it delivered.

hubhooks POSTs a signed webhook to each callback URL of a hub for every
event of the hub's domains. hubctl talks to its gRPC API: the all-in-one hubd
(127.0.0.1:7000 by default) or the separate services (configsvc for
configuration at --addr, the logger for the event log at --logs-addr).

Settings, highest first: flags, environment variables, the config file,
defaults.
  --addr       HUBHOOKS_ADDR       gRPC address of hubd or configsvc (default 127.0.0.1:7000)
  --logs-addr  HUBHOOKS_LOGS_ADDR  the event log's address (default: --addr)
  --token      HUBHOOKS_TOKEN      bearer token: the admin token or a hub token
  --hub        HUBHOOKS_HUB        the hub to act on
  --output/-o  HUBHOOKS_OUTPUT     table (default) or json (protobuf JSON, proto field names)
  --tls        HUBHOOKS_TLS        use TLS (system roots, or --ca-file)
  --ca-file    HUBHOOKS_TLS_CA     CA certificate that signs the server's
  --timeout                        bound on each call (default 30s; not on streams)
The config file is YAML with the flags' names as keys, at
~/.config/hubhooks/hubctl.yaml (or $XDG_CONFIG_HOME/hubhooks/hubctl.yaml), or
--config / HUBCTL_CONFIG:
  addr: hubhooks.internal:7000
  token: <token>
  hub: acme
'hubctl settings' shows what is in effect and where each value comes from.

` + exitCodesHelp

const rootExample = `  # Point a hub's webhooks at a receiver and switch them on
  hubctl --hub acme urls add https://example.com/hooks
  hubctl --hub acme hub enable

  # What failed in the last hour, and the details of one delivery
  export HUBHOOKS_HUB=acme
  hubctl logs list --status dead --since 1h
  hubctl logs get dlv_3f2a...

  # Send everything that died since the outage again
  hubctl recover --since 2026-12-06T09:00:00Z`

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "hubctl",
		Version:       webhook.Version, // --version, as "hubctl version"
		Short:         "Configure hubhooks webhooks and inspect their deliveries",
		Long:          rootLong,
		Example:       rootExample,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          noArgs,
		RunE:          showHelp,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			s, err := resolve(cmd, &a.flags, a.getenv)
			if err != nil {
				return err
			}
			a.set = s
			if s.File != "" && s.source["token"] == "config file" {
				if w := configFileMode(s.File); w != "" {
					fmt.Fprintln(a.stderr, w)
				}
			}
			return nil
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	f := root.PersistentFlags()
	f.StringVar(&a.flags.addr, "addr", defaultAddr, "gRPC address of hubd or configsvc (HUBHOOKS_ADDR)")
	f.StringVar(&a.flags.logsAddr, "logs-addr", "", "gRPC address of the event log, when not --addr (HUBHOOKS_LOGS_ADDR)")
	f.StringVar(&a.flags.token, "token", "", "bearer token: admin or hub token (HUBHOOKS_TOKEN)")
	f.StringVar(&a.flags.hub, "hub", "", "hub id to act on (HUBHOOKS_HUB)")
	f.StringVarP(&a.flags.output, "output", "o", outputTable, "output format: table or json (HUBHOOKS_OUTPUT)")
	f.BoolVar(&a.flags.tls, "tls", false, "connect with TLS (HUBHOOKS_TLS)")
	f.StringVar(&a.flags.caFile, "ca-file", "", "CA certificate of the server, implies --tls (HUBHOOKS_TLS_CA)")
	f.StringVar(&a.flags.config, "config", "", "config file (HUBCTL_CONFIG; default ~/.config/hubhooks/hubctl.yaml)")
	f.StringVar(&a.flags.timeout, "timeout", defaultTimeout.String(), "bound on each call; streams have none")
	_ = root.RegisterFlagCompletionFunc("hub", a.completeFrom(a.hubIDs))
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{outputTable, outputJSON}, cobra.ShellCompDirectiveNoFileComp))

	root.AddGroup(
		&cobra.Group{ID: "config", Title: "Configure a hub:"},
		&cobra.Group{ID: "log", Title: "Look into deliveries and send them again:"},
		&cobra.Group{ID: "other", Title: "Other commands:"},
	)
	for _, c := range []*cobra.Command{a.hubCmd(), a.hubsCmd(), a.urlsCmd(), a.secretCmd(), a.tokensCmd(), a.eventTypesCmd(), a.testCmd()} {
		c.GroupID = "config"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{a.logsCmd(), a.explainCmd(), a.recoverCmd(), a.replayCmd(), a.opsCmd(), a.dlqCmd()} {
		c.GroupID = "log"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{a.whoamiCmd(), a.settingsCmd(), a.versionCmd()} {
		c.GroupID = "other"
		root.AddCommand(c)
	}
	root.SetHelpCommandGroupID("other")
	root.SetCompletionCommandGroupID("other")
	return root
}

// noArgs refuses arguments with a usage error naming the subcommands.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if cmd.HasSubCommands() {
		return usagef("unknown command %q for %q", args[0], cmd.CommandPath())
	}
	return usagef("%s takes no arguments, got %q", cmd.CommandPath(), args)
}

// exactArgs wants n arguments, named by names for the message.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%s wants %s, got %d argument(s)", cmd.CommandPath(), names, len(args))
		}
		return nil
	}
}

// minArgs wants at least n arguments.
func minArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usagef("%s wants %s", cmd.CommandPath(), names)
		}
		return nil
	}
}

func showHelp(cmd *cobra.Command, _ []string) error { return cmd.Help() }

// group is a command that only holds subcommands.
func group(c *cobra.Command) *cobra.Command {
	c.Args = noArgs
	c.RunE = showHelp
	return c
}

// conn returns the connection to addr, made once.
func (a *app) conn(addr string) (*grpc.ClientConn, error) {
	a.lastAddr = addr
	if c, ok := a.conns[addr]; ok {
		return c, nil
	}
	opts := []grpc.DialOption{grpc.WithPerRPCCredentials(auth.BearerCredentials(a.set.Token))}
	if a.set.TLS {
		creds, err := auth.ClientTLS(a.set.CAFile, "", "", "")
		if err != nil {
			return nil, usageError{err}
		}
		opts = append(opts, grpc.WithTransportCredentials(creds))
	} else {
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	c, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, usagef("address %q: %v", addr, err)
	}
	a.conns[addr] = c
	return c, nil
}

// configClient is ConfigService at --addr.
func (a *app) configClient() (hubhooksv1.ConfigServiceClient, error) {
	c, err := a.conn(a.set.Addr)
	if err != nil {
		return nil, err
	}
	return hubhooksv1.NewConfigServiceClient(c), nil
}

// logsClient is EventLogService at --logs-addr.
func (a *app) logsClient() (hubhooksv1.EventLogServiceClient, error) {
	c, err := a.conn(a.set.LogsAddr)
	if err != nil {
		return nil, err
	}
	return hubhooksv1.NewEventLogServiceClient(c), nil
}

// call bounds one unary call by --timeout.
func (a *app) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, a.set.Timeout)
}

// withHub runs what most commands do: fn with the hub they act on, a client
// of the service they call (configClient, logsClient, opsClient) and a
// context bounded by --timeout.
func withHub[C any](a *app, cmd *cobra.Command, client func() (C, error), fn func(ctx context.Context, c C, hub string) error) error {
	hub, err := a.hub()
	if err != nil {
		return err
	}
	c, err := client()
	if err != nil {
		return err
	}
	ctx, cancel := a.call(cmd.Context())
	defer cancel()
	return fn(ctx, c, hub)
}

// allPages calls page from token on, 500 items at a time (fewer to stop at
// limit; 0 is no limit), and returns what it got and the token to go on
// from. A page may be short, even empty, with a token when the server
// stopped scanning (a filter): it is followed until full or done.
func allPages[T any](ctx context.Context, a *app, limit int, token string, page func(ctx context.Context, size int32, token string) ([]T, string, error)) ([]T, string, error) {
	var out []T
	for {
		size := int32(500)
		if limit > 0 {
			size = int32(min(500, limit-len(out)))
		}
		cctx, cancel := a.call(ctx)
		items, next, err := page(cctx, size, token)
		cancel()
		if err != nil {
			return nil, "", err
		}
		out, token = append(out, items...), next
		if token == "" || (limit > 0 && len(out) >= limit) {
			return out, token, nil
		}
	}
}

// jsonOut reports whether -o json was asked for.
func (a *app) jsonOut() bool { return a.set.Output == outputJSON }

// hub is the hub the command acts on (requireHub).
func (a *app) hub() (string, error) { return a.set.requireHub() }

// parseWhen parses a --since/--until value: RFC 3339, a date, or a duration
// back from now ("90m", "2h", "3d").
func parseWhen(flag, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.Local); err == nil {
			return t, nil
		}
	}
	if n, ok := strings.CutSuffix(v, "d"); ok {
		var days int
		if _, err := fmt.Sscanf(n, "%d", &days); err == nil && days >= 0 && fmt.Sprint(days) == n {
			return now.Add(-time.Duration(days) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, usagef("--%s %q: use a time (2026-12-06T09:00:00Z, 2026-12-06) or how long ago (90m, 2h, 3d)", flag, v)
}

package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// logFilters are the filters of 'logs list' and 'logs tail'.
type logFilters struct {
	status, eventType, url, eventID, domainEventID, responseClass, since, until string
	// test is --test, honoured only when the flag was given (testSet).
	test, testSet bool
}

func (f *logFilters) register(a *app, c *cobra.Command, withUntil bool) {
	c.Flags().StringVar(&f.status, "status", "", "pending, retrying, succeeded, failed, dead or cancelled")
	c.Flags().StringVar(&f.eventType, "type", "", "webhook event type, e.g. BILLINGPLAN.CREATED")
	c.Flags().StringVar(&f.url, "url", "", "callback URL")
	c.Flags().StringVar(&f.eventID, "event-id", "", "webhook event id (the webhook-id header)")
	c.Flags().StringVar(&f.domainEventID, "domain-event", "", "domain event id: every delivery it caused")
	c.Flags().StringVar(&f.responseClass, "response-class", "", "the latest response: 2xx, 3xx, 4xx, 5xx or none (no response)")
	c.Flags().BoolVar(&f.test, "test", false, "only test events (--test=false: none)")
	c.Flags().StringVar(&f.since, "since", "", "oldest: a time (2026-12-06T09:00:00Z) or how long ago (90m, 2h, 3d)")
	if withUntil {
		c.Flags().StringVar(&f.until, "until", "", "newest: a time or how long ago")
	}
	_ = c.RegisterFlagCompletionFunc("type", a.completeFrom(a.webhookTypes))
	_ = c.RegisterFlagCompletionFunc("url", a.completeFrom(a.urls))
	_ = c.RegisterFlagCompletionFunc("status", cobra.FixedCompletions(
		[]string{"pending", "retrying", "succeeded", "failed", "dead", "cancelled"}, cobra.ShellCompDirectiveNoFileComp))
	_ = c.RegisterFlagCompletionFunc("response-class", cobra.FixedCompletions(
		[]string{"2xx", "3xx", "4xx", "5xx", "none"}, cobra.ShellCompDirectiveNoFileComp))
	c.PreRun = func(cmd *cobra.Command, _ []string) { f.testSet = cmd.Flags().Changed("test") }
}

// request builds the ListEventLogs request of the filters.
func (f *logFilters) request(hub string, now time.Time) (*hubhooksv1.ListEventLogsRequest, error) {
	since, err := parseWhen("since", f.since, now)
	if err != nil {
		return nil, err
	}
	until, err := parseWhen("until", f.until, now)
	if err != nil {
		return nil, err
	}
	req := &hubhooksv1.ListEventLogsRequest{
		HubId: hub, Status: f.status, EventType: f.eventType, Url: f.url, EventId: f.eventID,
		DomainEventId: f.domainEventID, ResponseClass: f.responseClass,
	}
	if f.testSet {
		req.Test = &f.test
	}
	if !since.IsZero() {
		req.Since = timestamppb.New(since)
	}
	if !until.IsZero() {
		req.Until = timestamppb.New(until)
	}
	return req, nil
}

func (a *app) logsCmd() *cobra.Command {
	c := group(&cobra.Command{
		Use:     "logs",
		Aliases: []string{"log"},
		Short:   "Search the event log, see a delivery's attempts, follow new ones, redeliver",
		Long: `The event log holds one entry per delivery (one webhook event to one URL), newest
first, with the request and response of every attempt. A delivery's status is
pending, retrying, succeeded, failed (not retried: 410 Gone, an address the
guard refuses), dead (every retry failed) or cancelled (URL removed, triggers
off). The log is kept for HUBHOOKS_LOG_RETENTION (7 days by default).`,
	})
	var f logFilters
	var limit int
	var pageToken string
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List deliveries, newest first, with filters",
		Example: `  hubctl --hub acme logs list
  hubctl --hub acme logs list --status dead --since 2h
  hubctl --hub acme logs list --type API.CREATED --url https://example.com/hooks --limit 500
  hubctl --hub acme logs list --limit 0 -o json > all.json   # every entry`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hub, err := a.hub()
			if err != nil {
				return err
			}
			if limit < 0 {
				return usagef("--limit %d: 0 (every entry) or more", limit)
			}
			req, err := f.request(hub, time.Now())
			if err != nil {
				return err
			}
			lc, err := a.logsClient()
			if err != nil {
				return err
			}
			out := &hubhooksv1.ListEventLogsResponse{}
			out.EventLogs, out.NextPageToken, err = allPages(cmd.Context(), a, limit, pageToken,
				func(ctx context.Context, size int32, token string) ([]*hubhooksv1.EventLog, string, error) {
					req.PageSize, req.PageToken = size, token
					resp, err := lc.ListEventLogs(ctx, req)
					return resp.GetEventLogs(), resp.GetNextPageToken(), err
				})
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return printJSON(a.stdout, out)
			}
			if err := a.printLogs(out.GetEventLogs(), true); err != nil {
				return err
			}
			if out.NextPageToken != "" {
				fmt.Fprintf(a.stderr, "more entries: --limit %d, or --page-token %s\n", limit*2, out.NextPageToken)
			}
			return nil
		},
	}
	f.register(a, list, true)
	list.Flags().IntVar(&limit, "limit", 50, "most entries to list; 0 lists every one")
	list.Flags().StringVar(&pageToken, "page-token", "", "continue a previous list (its next_page_token)")

	var full bool
	get := &cobra.Command{
		Use:   "get <delivery id>",
		Short: "Show one delivery with the request and response of every attempt",
		Long: `Show one delivery (its id is the event log entry id, dlv_...) with every
attempt: the request sent (headers, secret masked, body) and the response
(status, headers, body, time taken, error). Bodies are clipped unless --full.`,
		Example: "  hubctl --hub acme logs get dlv_3f2a...\n  hubctl --hub acme logs get dlv_3f2a... --full\n  hubctl --hub acme logs get dlv_3f2a... -o json",
		Args:    exactArgs(1, "a delivery id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withHub(a, cmd, a.logsClient, func(ctx context.Context, lc hubhooksv1.EventLogServiceClient, hub string) error {
				resp, err := lc.GetEventLog(ctx, &hubhooksv1.GetEventLogRequest{HubId: hub, Id: args[0]})
				if err != nil {
					return err
				}
				if a.jsonOut() {
					return printJSON(a.stdout, resp)
				}
				a.printLogDetail(resp, full)
				return nil
			})
		},
	}
	get.Flags().BoolVar(&full, "full", false, "print bodies whole")

	var tf logFilters
	tail := &cobra.Command{
		Use:   "tail",
		Short: "Follow the log: print deliveries as they are made and change, until interrupted",
		Long: `Print the deliveries of the last --since (1m by default) and then every new
delivery and every change of one (status, attempts) as the server streams it,
until Ctrl-C, with the filters of 'logs list'. With -o json, one JSON object
per line. When the reader falls too far behind, the server drops the stream:
hubctl says so on stderr and follows again ('hubctl logs list' shows what
was missed).`,
		Example: "  hubctl --hub acme logs tail\n  hubctl --hub acme logs tail --status dead -o json\n  hubctl --hub acme logs tail --url https://example.com/hooks --response-class 5xx",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hub, err := a.hub()
			if err != nil {
				return err
			}
			if tf.since == "" {
				tf.since = "1m"
			}
			return a.tailLogs(cmd.Context(), hub, &tf)
		},
	}
	tf.register(a, tail, false)

	var before string
	var yes bool
	purge := &cobra.Command{
		Use:   "purge",
		Short: "Remove the hub's log entries created before a time, or all of them (admin token)",
		Long: `Remove the hub's event log entries created before --before, or every entry
without it. Other hubs are not touched; a delivery still under way gets a new
entry from its next attempt. It needs the admin token and cannot be undone:
--yes confirms it; without --yes, hubctl asks at a terminal and refuses
elsewhere. The log also forgets entries by itself after
HUBHOOKS_LOG_RETENTION.`,
		Example: "  hubctl --hub acme logs purge --before 2026-12-01 --yes\n  hubctl --hub acme logs purge --before 3d --yes   # older than three days\n  hubctl --hub acme logs purge                     # every entry; asks first",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hub, err := a.hub()
			if err != nil {
				return err
			}
			until, err := parseWhen("before", before, time.Now())
			if err != nil {
				return err
			}
			req := &hubhooksv1.PurgeEventLogsRequest{HubId: hub}
			what := "purging every log entry of hub " + hub
			if !until.IsZero() {
				req.Before = timestamppb.New(until)
				what = "purging the log entries of hub " + hub + " created before " + when(req.Before)
			}
			if err := a.confirm(yes, hub, what); err != nil {
				return err
			}
			lc, err := a.logsClient()
			if err != nil {
				return err
			}
			ctx, cancel := a.call(cmd.Context())
			defer cancel()
			resp, err := lc.PurgeEventLogs(ctx, req)
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return printJSON(a.stdout, resp)
			}
			_, err = fmt.Fprintf(a.stdout, "purged %d entries of hub %s\n", resp.GetPurged(), hub)
			return err
		},
	}
	purge.Flags().StringVar(&before, "before", "", "purge entries created before: a time (2026-12-01) or how long ago (3d); default every entry")
	purge.Flags().BoolVar(&yes, "yes", false, "confirm: purged entries cannot be brought back")

	redeliver := &cobra.Command{
		Use:   "redeliver <delivery id>...",
		Short: "Deliver the same webhook event to the same URL again (a new delivery)",
		Long: `Make a new delivery of each entry's webhook event to its URL: same webhook-id
and body, a new delivery id whose entry names the old one (redelivery_of).
To send everything that failed since a time, use 'hubctl recover'.`,
		Example: "  hubctl --hub acme logs redeliver dlv_3f2a... dlv_77c1...",
		Args:    minArgs(1, "at least one delivery id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			hub, err := a.hub()
			if err != nil {
				return err
			}
			lc, err := a.logsClient()
			if err != nil {
				return err
			}
			var firstErr error
			var made []*hubhooksv1.EventLog
			for _, id := range args {
				ctx, cancel := a.call(cmd.Context())
				resp, err := lc.Redeliver(ctx, &hubhooksv1.RedeliverRequest{HubId: hub, Id: id})
				cancel()
				if err != nil {
					if firstErr == nil {
						firstErr = err
					}
					_, msg := exitCode(err, false, a.set.LogsAddr)
					fmt.Fprintf(a.stderr, "%s: %s\n", id, msg)
					continue
				}
				made = append(made, resp.GetEventLog())
			}
			if a.jsonOut() {
				if err := printJSON(a.stdout, &hubhooksv1.ListEventLogsResponse{EventLogs: made}); err != nil {
					return err
				}
			} else if len(made) > 0 {
				t := newTable(a.stdout, "NEW DELIVERY", "REDELIVERS", "TYPE", "URL")
				for _, l := range made {
					t.row(l.GetId(), l.GetRedeliveryOf(), l.GetEventType(), l.GetUrl())
				}
				if err := t.flush(); err != nil {
					return err
				}
			}
			return firstErr
		},
	}
	c.AddCommand(list, get, tail, redeliver, purge)
	return c
}

// printLogs prints entries as a table.
func (a *app) printLogs(logs []*hubhooksv1.EventLog, header bool) error {
	var t *table
	if header {
		t = newTable(a.stdout, "CREATED", "ID", "TYPE", "STATUS", "CODE", "ATTEMPTS", "URL")
	} else {
		t = newTable(a.stdout)
	}
	for _, l := range logs {
		t.row(logRow(l)...)
	}
	return t.flush()
}

func logRow(l *hubhooksv1.EventLog) []string {
	code := "-"
	if c := l.GetResponseStatusCode(); c != 0 {
		code = strconv.Itoa(int(c))
	}
	st := l.GetStatus()
	if l.GetTest() {
		st += " (test)"
	}
	return []string{when(l.GetCreatedAt()), l.GetId(), l.GetEventType(), st, code, strconv.Itoa(int(l.GetAttempts())), l.GetUrl()}
}

// printLogDetail prints one entry and its attempts for people.
func (a *app) printLogDetail(resp *hubhooksv1.GetEventLogResponse, full bool) {
	l := resp.GetEventLog()
	t := newTable(a.stdout)
	t.row("delivery", l.GetId())
	t.row("status", l.GetStatus())
	t.row("webhook event", l.GetEventId()+"  "+l.GetEventType())
	t.row("domain event", orDash(l.GetDomainEventId())+"  "+l.GetDomainEventType())
	t.row("url", l.GetUrl()+"  ("+orDash(l.GetUrlId())+")")
	t.row("created", when(l.GetCreatedAt()))
	t.row("updated", when(l.GetUpdatedAt()))
	t.row("attempts", strconv.Itoa(int(l.GetAttempts())))
	if l.GetNextAttemptAt() != nil {
		t.row("next attempt", when(l.GetNextAttemptAt()))
	}
	if l.GetRedeliveryOf() != "" {
		t.row("redelivers", l.GetRedeliveryOf())
	}
	if l.GetTest() {
		t.row("test", "yes")
	}
	_ = t.flush()
	for _, at := range resp.GetAttempts() {
		fmt.Fprintf(a.stdout, "\n--- attempt %d  %s  %s\n", at.GetNumber(), at.GetStatus(), when(at.GetStartedAt()))
		req := at.GetRequest()
		if req != nil && req.GetBody() == "" {
			// The body the attempts share comes once, beside them.
			req = &hubhooksv1.HttpRequest{Url: req.GetUrl(), Method: req.GetMethod(), Headers: req.GetHeaders(), Body: resp.GetRequestBody()}
		}
		printExchange(a.stdout, req, at.GetResponse(), full)
	}
}

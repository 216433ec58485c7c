package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/hubhooks/hubhooks/proto/hubhooks/events/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// opsClient is OperationsService, served beside the event log at
// --logs-addr.
func (a *app) opsClient() (hubhooksv1.OperationsServiceClient, error) {
	c, err := a.conn(a.set.LogsAddr)
	if err != nil {
		return nil, err
	}
	return hubhooksv1.NewOperationsServiceClient(c), nil
}

func (a *app) explainCmd() *cobra.Command {
	var id, data, event string
	c := &cobra.Command{
		Use:   "explain [<domain event type>] [--id <domain event id>] [--data <json>] [--event <file>]",
		Short: "Show which webhooks a domain event makes, where each goes and why not elsewhere",
		Long: `Explain a domain event under the hub's current configuration, sending nothing:
the webhook events it makes (the cascade rules), and for each one which callback
URLs it goes to and why not to the others (triggers off, URL disabled, the URL's
event type filter).

With --id, a domain event hubhooks received: each URL also shows what was
delivered (the original delivery, redeliveries, replays and recoveries, oldest
first, with their status). --data gives the domain event's data (it decides
forEach events such as one TARGET_GROUP.CREATED per base URL); --event reads a
whole domain event (protobuf JSON, as published) from a file, or - for stdin.`,
		Example: `  hubctl --hub acme explain TEAM.CREATED
  hubctl --hub acme explain API.CREATED --data '{"api":{"id":"a1"},"baseUrls":[{"url":"https://x"}]}'
  hubctl --hub acme explain API.CREATED --id evt-1
  hubctl --hub acme explain --event event.json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usagef("explain wants at most one domain event type, got %q", args)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			hub, err := a.hub()
			if err != nil {
				return err
			}
			req := &hubhooksv1.ExplainDomainEventRequest{HubId: hub, DomainEventId: id}
			if len(args) == 1 {
				req.DomainEventType = args[0]
			}
			if event != "" {
				if data != "" {
					return usagef("--event and --data: choose one (the event holds its data)")
				}
				raw, err := a.readArgData("event", "@"+event)
				if err != nil {
					return err
				}
				ev := &eventsv1.DomainEvent{}
				if err := protojson.Unmarshal([]byte(raw), ev); err != nil {
					return usagef("--event %s: not a domain event in protobuf JSON: %v", event, err)
				}
				if ev.GetHubId() != "" && ev.GetHubId() != hub {
					return usagef("--event %s is of hub %q, not %q", event, ev.GetHubId(), hub)
				}
				if req.DomainEventType == "" {
					req.DomainEventType = ev.GetType()
				}
				if req.DomainEventId == "" {
					req.DomainEventId = ev.GetId()
				}
				req.Data = ev.GetData()
			}
			if data != "" {
				raw, err := a.readArgData("data", data)
				if err != nil {
					return err
				}
				st := &structpb.Struct{}
				if err := protojson.Unmarshal([]byte(raw), st); err != nil {
					return usagef("--data: not a JSON object: %v", err)
				}
				req.Data = st
			}
			if req.DomainEventType == "" {
				return usagef("name the domain event type (e.g. API.CREATED; 'hubctl event-types' lists them), or give --event")
			}
			oc, err := a.opsClient()
			if err != nil {
				return err
			}
			ctx, cancel := a.call(cmd.Context())
			defer cancel()
			resp, err := oc.ExplainDomainEvent(ctx, req)
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return printJSON(a.stdout, resp)
			}
			a.printExplanation(resp)
			return nil
		},
	}
	c.Flags().StringVar(&id, "id", "", "id of a domain event hubhooks received: show what it caused")
	c.Flags().StringVar(&data, "data", "", "the domain event's data (JSON object; @file, @- for stdin)")
	c.Flags().StringVar(&event, "event", "", "file holding a whole domain event in protobuf JSON (- for stdin)")
	c.ValidArgsFunction = a.completeFrom(a.domainTypes)
	return c
}

// printExplanation prints an explanation as a tree.
func (a *app) printExplanation(r *hubhooksv1.ExplainDomainEventResponse) {
	w := a.stdout
	head := r.GetDomainEventType()
	if r.GetDomainEventId() != "" {
		head += " " + r.GetDomainEventId()
	}
	fmt.Fprintln(w, head)
	if r.GetHubReason() != "" {
		fmt.Fprintf(w, "  nothing is sent: %s\n", r.GetHubReason())
	}
	for _, we := range r.GetWebhookEvents() {
		line := fmt.Sprintf("  %d %s", we.GetPosition(), we.GetType())
		if we.GetId() != "" {
			line += "  " + we.GetId()
		}
		if we.GetReplayOf() != "" {
			line += "  (replay)"
		}
		fmt.Fprintln(w, line)
		for _, t := range we.GetTargets() {
			mark := "→ sent to"
			if !t.GetRouted() {
				mark = "✗ not to"
			}
			fmt.Fprintf(w, "    %s %s (%s)", mark, t.GetUrl(), t.GetUrlId())
			if !t.GetRouted() {
				fmt.Fprintf(w, ": %s", t.GetDetail())
			}
			fmt.Fprintln(w)
			for _, d := range t.GetDeliveries() {
				extra := ""
				if d.GetRedeliveryOf() != "" {
					extra = "  redelivers " + d.GetRedeliveryOf()
				}
				code := ""
				if d.GetResponseStatusCode() != 0 {
					code = fmt.Sprintf(" HTTP %d", d.GetResponseStatusCode())
				}
				fmt.Fprintf(w, "        %s %-9s%s  %d attempt(s)  %s%s\n", d.GetId(), d.GetStatus(), code, d.GetAttempts(), when(d.GetCreatedAt()), extra)
			}
		}
	}
}

func (a *app) recoverCmd() *cobra.Command {
	var since, until, url string
	var dry bool
	c := &cobra.Command{
		Use:   "recover --since <time> [--url <callback url>] [--dry-run]",
		Short: "Deliver again everything that became dead or failed since a time",
		Long: `Deliver again every delivery of the hub (or of one URL, --url) that became dead
or failed since --since (and until --until, by default now): one new delivery
per entry, logged with redelivery_of naming the old one, carrying the same
webhook-id so receivers can drop what they already have.

Running the same recovery again sends nothing twice: a delivery recovered
before is skipped, and a recovery that failed again is itself recovered.
--dry-run only counts. hubctl counts first, then sends with a progress bar;
Ctrl-C stops it (what was sent stays sent; run it again to finish). The server
paces it (HUBHOOKS_BULK_RATE, HUBHOOKS_BULK_MAX_BACKLOG) so live deliveries
keep flowing.`,
		Example: `  hubctl --hub acme recover --since 2026-12-06T09:00:00Z --dry-run
  hubctl --hub acme recover --since 3h
  hubctl --hub acme recover --since 1d --url https://example.com/hooks`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hub, err := a.hub()
			if err != nil {
				return err
			}
			if since == "" {
				return usagef("--since is required: recover what failed from then on (a time, or how long ago: 3h, 1d)")
			}
			now := time.Now()
			from, err := parseWhen("since", since, now)
			if err != nil {
				return err
			}
			to, err := parseWhen("until", until, now)
			if err != nil {
				return err
			}
			if to.IsZero() {
				to = now // the same range for the count and the run
			}
			req := &hubhooksv1.RecoverDeliveriesRequest{HubId: hub, Since: timestamppb.New(from), Until: timestamppb.New(to), Url: url, DryRun: true}
			oc, err := a.opsClient()
			if err != nil {
				return err
			}
			count, err := a.runRecovery(cmd, oc, req, nil)
			if err != nil || dry {
				if err == nil && !a.jsonOut() {
					fmt.Fprintf(a.stdout, "would recover %d deliveries (%d dead or failed since %s; %d already recovered, %d of URLs removed or disabled)\n",
						count.GetRedelivered(), count.GetMatched(), from.Format(time.RFC3339), count.GetAlreadyRecovered(), count.GetSkipped())
				}
				return err
			}
			if count.GetRedelivered() == 0 {
				if !a.jsonOut() {
					fmt.Fprintf(a.stdout, "nothing to recover (%d dead or failed since %s; %d already recovered)\n", count.GetMatched(), from.Format(time.RFC3339), count.GetAlreadyRecovered())
				}
				return nil
			}
			req.DryRun = false
			bar := a.newProgress("recovering", count.GetRedelivered())
			done, err := a.runRecovery(cmd, oc, req, bar)
			bar.finish()
			if err != nil {
				if done != nil && !a.jsonOut() {
					fmt.Fprintf(a.stderr, "stopped after %d new deliveries; run the same command again to finish\n", done.GetRedelivered())
				}
				return err
			}
			if !a.jsonOut() {
				fmt.Fprintf(a.stdout, "recovered %d deliveries (%d already recovered, %d skipped: URL removed or disabled); follow them with 'hubctl logs tail'\n",
					done.GetRedelivered(), done.GetAlreadyRecovered(), done.GetSkipped())
			}
			return nil
		},
	}
	c.Flags().StringVar(&since, "since", "", "recover what became dead or failed from this time on (required): a time, or how long ago (3h, 1d)")
	c.Flags().StringVar(&until, "until", "", "and until this time (default: now)")
	c.Flags().StringVar(&url, "url", "", "only deliveries to this callback URL")
	c.Flags().BoolVar(&dry, "dry-run", false, "count, send nothing")
	_ = c.RegisterFlagCompletionFunc("url", a.completeFrom(a.urls))
	return c
}

// runRecovery runs one RecoverDeliveries call to its end and returns the
// last progress; with -o json every progress message is printed.
func (a *app) runRecovery(cmd *cobra.Command, oc hubhooksv1.OperationsServiceClient, req *hubhooksv1.RecoverDeliveriesRequest, bar *progress) (*hubhooksv1.RecoverDeliveriesProgress, error) {
	stream, err := oc.RecoverDeliveries(cmd.Context(), req)
	if err != nil {
		return nil, err
	}
	var last *hubhooksv1.RecoverDeliveriesProgress
	for {
		p, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			if last == nil || !last.GetDone() {
				return last, errors.New("the recovery ended without its final count; run it again")
			}
			return last, nil
		}
		if err != nil {
			return last, err
		}
		last = p
		if a.jsonOut() && (!req.GetDryRun() || p.GetDone()) {
			if err := printJSONLine(a.stdout, p); err != nil {
				return last, err
			}
		}
		if bar != nil {
			bar.set(p.GetRedelivered(), fmt.Sprintf("(%d already recovered)", p.GetAlreadyRecovered()))
		}
	}
}

func (a *app) replayCmd() *cobra.Command {
	var since, until string
	var types, urls []string
	var dry bool
	c := &cobra.Command{
		Use:   "replay --since <time> [--types A,B] [--url <url or id>]... [--dry-run]",
		Short: "Deliver again the webhooks of domain events from history",
		Long: `Expand again the hub's domain events that hubhooks stored between --since and
--until (default now) and deliver their webhooks to the URLs that take them now:
to backfill a URL added today with yesterday's events (--url), or to deliver
what was published while the triggers were off. --types keeps some webhook
event types only.

A replayed webhook has its own id, rpl_... (the body's replay_of names the
original msg_... id), logged with the original domain event. The same replay
again delivers nothing twice. How far back it reaches is the events stream's
retention (HUBHOOKS_EVENTS_MAX_AGE on the server, 72h by default). --dry-run
only counts. Ctrl-C stops it; run it again to finish. The server paces it
(HUBHOOKS_BULK_RATE, HUBHOOKS_BULK_MAX_BACKLOG) so live deliveries keep flowing.`,
		Example: `  hubctl --hub acme replay --since 1d --url https://example.com/new-hooks --dry-run
  hubctl --hub acme replay --since 2026-12-05T00:00:00Z --until 2026-12-06T00:00:00Z
  hubctl --hub acme replay --since 6h --types SUBSCRIPTION.CREATED,SUBSCRIPTION.UPDATED`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hub, err := a.hub()
			if err != nil {
				return err
			}
			if since == "" {
				return usagef("--since is required: replay the events stored from then on (a time, or how long ago: 6h, 1d)")
			}
			now := time.Now()
			from, err := parseWhen("since", since, now)
			if err != nil {
				return err
			}
			to, err := parseWhen("until", until, now)
			if err != nil {
				return err
			}
			if to.IsZero() {
				to = now
			}
			req := &hubhooksv1.ReplayDomainEventsRequest{HubId: hub, Since: timestamppb.New(from), Until: timestamppb.New(to), EventTypes: types, Urls: urls, DryRun: dry}
			oc, err := a.opsClient()
			if err != nil {
				return err
			}
			stream, err := oc.ReplayDomainEvents(cmd.Context(), req)
			if err != nil {
				return err
			}
			var bar *progress
			var last *hubhooksv1.ReplayDomainEventsProgress
			for {
				p, err := stream.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					if bar != nil {
						bar.finish()
					}
					if last != nil && !a.jsonOut() && !dry {
						fmt.Fprintf(a.stderr, "stopped after %d deliveries; run the same command again to finish\n", last.GetDeliveries())
					}
					return err
				}
				last = p
				if a.jsonOut() {
					if err := printJSONLine(a.stdout, p); err != nil {
						return err
					}
					continue
				}
				if bar == nil {
					bar = a.newProgress("replaying: domain events read", p.GetDomainEventsTotal())
				}
				bar.set(p.GetDomainEventsScanned(), fmt.Sprintf("(%d deliveries, %d already replayed)", p.GetDeliveries(), p.GetAlreadyReplayed()))
			}
			if bar != nil {
				bar.finish()
			}
			if last == nil || !last.GetDone() {
				return errors.New("the replay ended without its final count; run it again")
			}
			if !a.jsonOut() {
				a.printReplaySummary(last)
			}
			return nil
		},
	}
	c.Flags().StringVar(&since, "since", "", "replay the events stored from this time on (required): a time, or how long ago (6h, 1d)")
	c.Flags().StringVar(&until, "until", "", "and until this time (default: now)")
	c.Flags().StringSliceVar(&types, "types", nil, "only these webhook event types, comma-separated")
	c.Flags().StringArrayVar(&urls, "url", nil, "only this callback URL (or id); repeat for several")
	c.Flags().BoolVar(&dry, "dry-run", false, "count, send nothing")
	_ = c.RegisterFlagCompletionFunc("types", a.completeFrom(a.webhookTypes))
	_ = c.RegisterFlagCompletionFunc("url", a.completeFrom(a.urls))
	return c
}

// printReplaySummary says what a replay did (or would do).
func (a *app) printReplaySummary(p *hubhooksv1.ReplayDomainEventsProgress) {
	verb := "replayed"
	if p.GetDryRun() {
		verb = "would replay"
	}
	fmt.Fprintf(a.stdout, "%s %d deliveries of %d webhook events from %d domain events (%d read; %d already replayed; %d invalid)\n",
		verb, p.GetDeliveries(), p.GetWebhookEvents(), p.GetDomainEventsMatched(), p.GetDomainEventsScanned(), p.GetAlreadyReplayed(), p.GetInvalid())
	if p.GetOldestAvailable() != nil {
		fmt.Fprintf(a.stdout, "note: the oldest event still stored is from %s (the events stream's retention, HUBHOOKS_EVENTS_MAX_AGE); nothing older can be replayed\n", when(p.GetOldestAvailable()))
	}
}

func (a *app) opsCmd() *cobra.Command {
	c := group(&cobra.Command{
		Use:   "ops",
		Short: "Follow the hub's operational events (URL disabled, circuits, dead deliveries, replays)",
		Long: `hubhooks publishes what operators of a hub want to know as operational events, on
the NATS subject hubhooks.ops.<hub> (protobuf OperationalEvent, kept 7 days):
a URL disabled (by an operator, or by hubhooks when it failed every attempt for
HUBHOOKS_AUTO_DISABLE_AFTER, 5 days by default), a circuit breaker opened or
closed, a delivery dead, a replay or recovery finished. One callback URL of the
hub may receive them as webhooks ('hubctl urls set <url> --operational-events').`,
	})
	var since string
	watch := &cobra.Command{
		Use:     "watch",
		Short:   "Print the hub's operational events as they happen (and since --since), until interrupted",
		Example: "  hubctl --hub acme ops watch\n  hubctl --hub acme ops watch --since 1d -o json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hub, err := a.hub()
			if err != nil {
				return err
			}
			req := &hubhooksv1.WatchOperationalEventsRequest{HubId: hub}
			if since != "" {
				t, err := parseWhen("since", since, time.Now())
				if err != nil {
					return err
				}
				req.Since = timestamppb.New(t)
			}
			oc, err := a.opsClient()
			if err != nil {
				return err
			}
			stream, err := oc.WatchOperationalEvents(cmd.Context(), req)
			if err != nil {
				return err
			}
			for {
				ev, err := stream.Recv()
				if err != nil {
					if errors.Is(err, io.EOF) || cmd.Context().Err() != nil {
						return nil
					}
					return err
				}
				if a.jsonOut() {
					if err := printJSONLine(a.stdout, ev); err != nil {
						return err
					}
					continue
				}
				line := fmt.Sprintf("%s  %s", when(ev.GetOccurredAt()), strings.TrimPrefix(ev.GetType().String(), "OPERATIONAL_EVENT_TYPE_"))
				if ev.GetUrl() != "" {
					line += "  " + ev.GetUrl()
				}
				if ev.GetDeliveryId() != "" {
					line += "  " + ev.GetDeliveryId() + " " + ev.GetEventType()
				}
				if ev.GetReason() != "" {
					line += "  " + ev.GetReason()
				}
				fmt.Fprintln(a.stdout, line)
			}
		},
	}
	watch.Flags().StringVar(&since, "since", "", "first print the events since then (a time, or how long ago: 1h, 2d)")
	c.AddCommand(watch)
	return c
}

package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

func (a *app) eventTypesCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "event-types",
		Aliases: []string{"types"},
		Short:   "List the cascade rules: each domain event and the webhook events it triggers",
		Long: `Every domain event (API.CREATED, ...) triggers one or more webhook events, in
order; this lists the rules. The webhook event types are what 'hubctl test',
the log's --type filter and a URL's event type filter take.`,
		Example: "  hubctl event-types\n  hubctl event-types -o json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cc, err := a.configClient()
			if err != nil {
				return err
			}
			ctx, cancel := a.call(cmd.Context())
			defer cancel()
			resp, err := cc.ListEventTypes(ctx, &hubhooksv1.ListEventTypesRequest{})
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return printJSON(a.stdout, resp)
			}
			t := newTable(a.stdout, "DOMAIN EVENT", "NAME", "WEBHOOK EVENTS")
			for _, r := range resp.GetRules() {
				var emits []string
				for _, e := range r.GetEmits() {
					s := e.GetType()
					if e.GetForEach() != "" {
						s += " (one per " + e.GetForEach() + ")"
					}
					emits = append(emits, s)
				}
				t.row(r.GetDomainSubject(), r.GetName(), orDash(strings.Join(emits, ", ")))
			}
			return t.flush()
		},
	}
}

func (a *app) testCmd() *cobra.Command {
	var url, body, domainEvent string
	var preview bool
	c := &cobra.Command{
		Use:   "test <webhook event type> --url <callback url>",
		Short: "Send a signed sample webhook to one of the hub's URLs and show the answer",
		Long: `Send a test event, as the "Test event" dialog does: a realistic sample payload of
the webhook event type, signed with the hub's secret, POSTed to one of the
hub's callback URLs through the delivery path, logged with the test flag. It
works whether or not the hub's triggers are on. --body replaces the sample
data with your own JSON object (or @file to read it from a file, @- from
stdin). The exit status is 7 when the receiver did not answer 2xx.

--preview prints the exact request instead (headers with the secret masked,
body), sending nothing; a real send makes its own webhook id, timestamp and
signature.

--domain-event TYPE sends every webhook event a domain event of TYPE
triggers (the cascade rules, 'hubctl event-types'), in order, each with
sample data, all under one test domain event id that 'hubctl logs list
--domain-event' finds; with --preview it prints their requests instead.`,
		Example: `  hubctl --hub acme test BILLINGPLAN.CREATED --url https://example.com/hooks
  hubctl --hub acme test API.UPDATED --url https://example.com/hooks --body '{"api":{"id":"api_1"}}'
  hubctl --hub acme test API.UPDATED --url https://example.com/hooks --body @sample.json
  hubctl --hub acme test API.UPDATED --url https://example.com/hooks --preview
  hubctl --hub acme test --domain-event USER.CREATED --url https://example.com/hooks
  hubctl --hub acme test --domain-event USER.CREATED --url https://example.com/hooks --preview`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usagef("%s wants one webhook event type, got %d arguments", cmd.CommandPath(), len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			hub, err := a.hub()
			if err != nil {
				return err
			}
			switch {
			case url == "":
				return usagef("--url is required: one of the hub's callback URLs ('hubctl urls list')")
			case domainEvent != "" && len(args) > 0:
				return usagef("give a webhook event type or --domain-event, not both")
			case domainEvent == "" && len(args) == 0:
				return usagef("%s wants a webhook event type ('hubctl event-types' lists them), or --domain-event", cmd.CommandPath())
			case domainEvent != "" && body != "":
				return usagef("--body replaces one webhook event's data: --domain-event sends sample data only")
			}
			cc, err := a.configClient()
			if err != nil {
				return err
			}
			ctx, cancel := a.call(cmd.Context())
			defer cancel()
			if domainEvent != "" && preview {
				resp, err := cc.PreviewTestDomainEvent(ctx, &hubhooksv1.SendTestDomainEventRequest{HubId: hub, DomainEventType: domainEvent, Url: url})
				if err != nil {
					return err
				}
				if a.jsonOut() {
					return printJSON(a.stdout, resp)
				}
				for i, r := range resp.GetRequests() {
					fmt.Fprintf(a.stdout, "=== test event %d of %d\n", i+1, len(resp.GetRequests()))
					printExchange(a.stdout, r, nil, true)
					fmt.Fprintln(a.stdout)
				}
				_, err = fmt.Fprintln(a.stdout, "not sent (a send makes its own ids, timestamps and signatures)")
				return err
			}
			if domainEvent != "" {
				resp, err := cc.SendTestDomainEvent(ctx, &hubhooksv1.SendTestDomainEventRequest{HubId: hub, DomainEventType: domainEvent, Url: url})
				if err != nil {
					return err
				}
				return a.printTestDomainEvent(resp)
			}
			data, err := a.readArgData("body", body)
			if err != nil {
				return err
			}
			req := &hubhooksv1.SendTestEventRequest{HubId: hub, EventType: args[0], Url: url, Body: data}
			if preview {
				resp, err := cc.PreviewTestEvent(ctx, req)
				if err != nil {
					return err
				}
				if a.jsonOut() {
					return printJSON(a.stdout, resp)
				}
				printExchange(a.stdout, resp.GetRequest(), nil, true)
				_, err = fmt.Fprintln(a.stdout, "\nnot sent (a send makes its own webhook id, timestamp and signature)")
				return err
			}
			resp, err := cc.SendTestEvent(ctx, req)
			if err != nil {
				return err
			}
			if a.jsonOut() {
				if err := printJSON(a.stdout, resp); err != nil {
					return err
				}
			} else {
				printExchange(a.stdout, resp.GetRequest(), resp.GetResponse(), true)
				fmt.Fprintf(a.stdout, "\nlogged as %s ('hubctl logs get %s')\n", resp.GetEventLogId(), resp.GetEventLogId())
			}
			if why := refusal(resp.GetResponse()); why != "" {
				return outcomeError{"the receiver did not accept the test event: " + why}
			}
			return nil
		},
	}
	c.ValidArgsFunction = a.completeFrom(a.webhookTypes)
	c.Flags().StringVar(&url, "url", "", "the callback URL to send to (required)")
	_ = c.RegisterFlagCompletionFunc("url", a.completeFrom(a.urls))
	c.Flags().StringVar(&body, "body", "", "JSON object replacing the sample data; @file reads a file, @- stdin")
	c.Flags().BoolVar(&preview, "preview", false, "print the request without sending it")
	c.Flags().StringVar(&domainEvent, "domain-event", "", "send every webhook event this domain event type triggers, e.g. USER.CREATED")
	_ = c.RegisterFlagCompletionFunc("domain-event", a.completeFrom(a.domainTypes))
	return c
}

// refusal says why a test event's response is not a 2xx; "" when it is.
func refusal(r *hubhooksv1.HttpResponse) string {
	code := r.GetStatusCode()
	if code >= 200 && code <= 299 {
		return ""
	}
	if e := r.GetError(); e != "" {
		return e
	}
	return "HTTP " + strconv.Itoa(int(code))
}

// printTestDomainEvent prints each webhook event a test domain event sent
// and fails with exitUnsuccess when the receiver refused any of them.
func (a *app) printTestDomainEvent(resp *hubhooksv1.SendTestDomainEventResponse) error {
	results := resp.GetResults()
	if a.jsonOut() {
		if err := printJSON(a.stdout, resp); err != nil {
			return err
		}
	} else {
		for i, r := range results {
			fmt.Fprintf(a.stdout, "=== test event %d of %d, logged as %s\n", i+1, len(results), r.GetEventLogId())
			printExchange(a.stdout, r.GetRequest(), r.GetResponse(), false)
			fmt.Fprintln(a.stdout)
		}
		fmt.Fprintf(a.stdout, "test domain event %s ('hubctl logs list --domain-event %s')\n", resp.GetDomainEventId(), resp.GetDomainEventId())
	}
	var refused []string
	for i, r := range results {
		if why := refusal(r.GetResponse()); why != "" {
			refused = append(refused, fmt.Sprintf("#%d: %s", i+1, why))
		}
	}
	if len(refused) > 0 {
		return outcomeError{fmt.Sprintf("the receiver did not accept %d of %d test events: %s", len(refused), len(results), strings.Join(refused, "; "))}
	}
	return nil
}

// readArgData returns v, or the content of the file @v names (@- is stdin).
func (a *app) readArgData(flag, v string) (string, error) {
	name, ok := strings.CutPrefix(v, "@")
	if !ok {
		return v, nil
	}
	var b []byte
	var err error
	if name == "-" {
		b, err = io.ReadAll(a.stdin)
	} else {
		b, err = os.ReadFile(name)
	}
	if err != nil {
		return "", usagef("--%s %s: %v", flag, v, err)
	}
	return string(b), nil
}

// printExchange prints a request and its response for people; bodies are
// printed whole when full, else clipped.
func printExchange(w io.Writer, req *hubhooksv1.HttpRequest, resp *hubhooksv1.HttpResponse, full bool) {
	body := func(s string) string {
		if full {
			return s
		}
		return clip(s, 300)
	}
	if req != nil {
		fmt.Fprintf(w, "> %s %s\n", orDash(req.GetMethod()), req.GetUrl())
		printHeaders(w, "> ", req.GetHeaders())
		if req.GetBody() != "" {
			fmt.Fprintf(w, ">\n%s\n", body(req.GetBody()))
		}
	}
	if resp == nil {
		return
	}
	fmt.Fprintln(w)
	if resp.GetError() != "" {
		fmt.Fprintf(w, "< error: %s\n", resp.GetError())
	}
	if resp.GetStatusCode() != 0 {
		fmt.Fprintf(w, "< HTTP %d (%d ms)\n", resp.GetStatusCode(), resp.GetDurationMs())
	} else {
		fmt.Fprintf(w, "< no response (%d ms)\n", resp.GetDurationMs())
	}
	printHeaders(w, "< ", resp.GetHeaders())
	if resp.GetBody() != "" {
		trunc := ""
		if resp.GetBodyTruncated() {
			trunc = "\n(truncated)"
		}
		fmt.Fprintf(w, "<\n%s%s\n", body(resp.GetBody()), trunc)
	}
}

func printHeaders(w io.Writer, prefix string, h map[string]string) {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(w, "%s%s: %s\n", prefix, k, h[k])
	}
}

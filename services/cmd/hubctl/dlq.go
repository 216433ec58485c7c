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

func (a *app) dlqCmd() *cobra.Command {
	c := group(&cobra.Command{
		Use:   "dlq",
		Short: "Read the dead letters: malformed domain events and undecodable jobs",
		Long: `A domain event the expander refuses (malformed, unknown subject, no hub_id, ...)
is not retried: it is kept, with the reason, in the dead-letter stream
HUBHOOKS_DLQ (14 days), and so is a delivery job the deliverer cannot decode.
Reading it needs the admin token: a dead letter may name no hub.`,
	})
	var kind, since, pageToken string
	var sinceSeq uint64
	var limit int
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List dead letters, oldest first, with the reason",
		Long: `List the dead letters, oldest first: the sequence in HUBHOOKS_DLQ, when, the
kind (events, jobs), the subject it was published on, its hub and event id when
they could be read, and the reason. -o json adds the body (base64, its first
64 KiB), the content type and where it was stored first. With --hub (or
HUBHOOKS_HUB) only the dead letters naming that hub are listed.`,
		Example: `  hubctl dlq list
  hubctl dlq list --since 1h --kind events
  hubctl --hub acme dlq list -o json
  hubctl dlq list --since-seq 120 --limit 0 -o json > dead.json   # from sequence 120 on`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 0 {
				return usagef("--limit %d: 0 (every dead letter) or more", limit)
			}
			if kind != "" && kind != "events" && kind != "jobs" {
				return usagef("--kind %q: events or jobs", kind)
			}
			req := &hubhooksv1.ListDeadLettersRequest{HubId: a.set.Hub, Kind: kind, SinceSequence: sinceSeq, PageToken: pageToken}
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
			out := &hubhooksv1.ListDeadLettersResponse{}
			out.DeadLetters, out.NextPageToken, err = allPages(cmd.Context(), a, limit, pageToken,
				func(ctx context.Context, size int32, token string) ([]*hubhooksv1.DeadLetter, string, error) {
					req.PageSize, req.PageToken = size, token
					resp, err := oc.ListDeadLetters(ctx, req)
					return resp.GetDeadLetters(), resp.GetNextPageToken(), err
				})
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return printJSON(a.stdout, out)
			}
			t := newTable(a.stdout, "SEQ", "TIME", "KIND", "SUBJECT", "HUB", "EVENT ID", "REASON")
			for _, dl := range out.GetDeadLetters() {
				t.row(strconv.FormatUint(dl.GetSequence(), 10), when(dl.GetTime()), dl.GetKind(), orDash(dl.GetSubject()),
					orDash(dl.GetHubId()), orDash(dl.GetEventId()), dl.GetReason())
			}
			if err := t.flush(); err != nil {
				return err
			}
			if out.NextPageToken != "" {
				fmt.Fprintf(a.stderr, "more dead letters: --limit %d, or --page-token %s\n", limit*2, out.NextPageToken)
			}
			return nil
		},
	}
	list.Flags().StringVar(&kind, "kind", "", "only events (malformed domain events) or jobs (undecodable delivery jobs)")
	list.Flags().StringVar(&since, "since", "", "only those dead-lettered since then (a time, or how long ago: 1h, 2d)")
	list.Flags().Uint64Var(&sinceSeq, "since-seq", 0, "only those from this sequence of HUBHOOKS_DLQ on")
	list.Flags().IntVar(&limit, "limit", 50, "most dead letters to list; 0 lists every one")
	list.Flags().StringVar(&pageToken, "page-token", "", "continue a previous list (its next_page_token)")
	_ = list.RegisterFlagCompletionFunc("kind", cobra.FixedCompletions([]string{"events", "jobs"}, cobra.ShellCompDirectiveNoFileComp))
	c.AddCommand(list)
	return c
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// tailLogs prints the entries of the last f.since and then every change the
// server's TailEventLogs stream sends, until ctx ends. A stream dropped for
// falling behind (ResourceExhausted) is opened again, with a note on
// stderr; any other end of the stream is the command's error.
func (a *app) tailLogs(ctx context.Context, hub string, f *logFilters) error {
	lc, err := a.logsClient()
	if err != nil {
		return err
	}
	list, err := f.request(hub, time.Now())
	if err != nil {
		return err
	}
	out := a.newTailPrinter()
	// The backlog is listed once the stream is live, so that nothing made
	// in between is missed; what the list and the stream both show is
	// printed once.
	backlog := true
	for {
		stream, err := lc.TailEventLogs(ctx, tailRequest(list))
		if err != nil {
			return a.tailEnd(ctx, err)
		}
		if _, err := stream.Recv(); err != nil { // the first message: live
			return a.tailEnd(ctx, err)
		}
		if backlog {
			if err := out.start(); err != nil {
				return err
			}
			if err := a.printBacklog(ctx, lc, list, out); err != nil {
				return a.tailEnd(ctx, err)
			}
			backlog = false
		}
		for {
			m, err := stream.Recv()
			if status.Code(err) == codes.ResourceExhausted {
				fmt.Fprintln(a.stderr, "hubctl: the tail fell behind and the server dropped it; following again (changes in between are not shown: 'hubctl logs list')")
				break
			}
			if err != nil {
				return a.tailEnd(ctx, err)
			}
			if l := m.GetEventLog(); l != nil { // else a heartbeat
				if err := out.print(l); err != nil {
					return err
				}
			}
		}
	}
}

// tailEnd is the command's result when the tail stops with err: none when
// the person interrupted it (following ends with Ctrl-C).
func (a *app) tailEnd(ctx context.Context, err error) error {
	if ctx.Err() != nil || errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// printBacklog prints the entries the list request finds, oldest first.
func (a *app) printBacklog(ctx context.Context, lc hubhooksv1.EventLogServiceClient, req *hubhooksv1.ListEventLogsRequest, out *tailPrinter) error {
	var entries []*hubhooksv1.EventLog
	for {
		req.PageSize = 500
		cctx, cancel := a.call(ctx)
		resp, err := lc.ListEventLogs(cctx, req)
		cancel()
		if err != nil {
			return err
		}
		entries = append(entries, resp.GetEventLogs()...)
		if resp.GetNextPageToken() == "" {
			break
		}
		req.PageToken = resp.GetNextPageToken()
	}
	for i := len(entries) - 1; i >= 0; i-- {
		if err := out.print(entries[i]); err != nil {
			return err
		}
	}
	return nil
}

// tailRequest is the TailEventLogs request with the filters of req; the
// stream follows changes of entries of any age, so req's since (what the
// backlog lists) is not among them.
func tailRequest(req *hubhooksv1.ListEventLogsRequest) *hubhooksv1.TailEventLogsRequest {
	return &hubhooksv1.TailEventLogsRequest{
		HubId:         req.GetHubId(),
		EventType:     req.GetEventType(),
		Status:        req.GetStatus(),
		Url:           req.GetUrl(),
		EventId:       req.GetEventId(),
		Until:         req.GetUntil(),
		DomainEventId: req.GetDomainEventId(),
		ResponseClass: req.GetResponseClass(),
		Test:          req.Test,
	}
}

// tailPrinter prints tailed entries, each state of an entry once: as a JSON
// line, or as a row of fixed-width columns (a stream cannot be aligned
// after the fact).
type tailPrinter struct {
	a       *app
	printed map[string]string // entry id -> state last printed
}

// tailRow is the format of a table row of the tail.
const tailRow = "%-25s  %-30s  %-26s  %-16s  %-4s  %-8s  %s\n"

// start prints the table's header: the tail is live.
func (p *tailPrinter) start() error {
	if p.a.jsonOut() {
		return nil
	}
	_, err := fmt.Fprintf(p.a.stdout, tailRow, "CREATED", "ID", "TYPE", "STATUS", "CODE", "ATTEMPTS", "URL")
	return err
}

func (a *app) newTailPrinter() *tailPrinter {
	return &tailPrinter{a: a, printed: map[string]string{}}
}

// tailForget bounds the memory of printed states: an entry's changes are
// seldom more than the retry schedule apart, and a repeat only prints a
// line twice.
const tailForget = 100_000

func (p *tailPrinter) print(l *hubhooksv1.EventLog) error {
	state := l.GetStatus() + "/" + strconv.Itoa(int(l.GetAttempts())) + "/" + l.GetUpdatedAt().AsTime().Format(time.RFC3339Nano)
	if p.printed[l.GetId()] == state {
		return nil
	}
	if len(p.printed) >= tailForget {
		p.printed = map[string]string{}
	}
	p.printed[l.GetId()] = state
	if p.a.jsonOut() {
		return printJSONLine(p.a.stdout, l)
	}
	cols := logRow(l)
	_, err := fmt.Fprintf(p.a.stdout, tailRow, cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6])
	return err
}

package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress shows how far a long operation is: a bar on a terminal, else a
// line every few seconds on stderr (-o json prints the server's progress
// messages on stdout instead, and nothing here).
type progress struct {
	bar      *progressbar.ProgressBar // on a terminal
	w        io.Writer                // else
	desc     string
	total    int64
	printed  time.Time
	quiet    bool
	lastLine string
}

// newProgress starts showing the progress of total steps (0: unknown).
func (a *app) newProgress(desc string, total int64) *progress {
	p := &progress{w: a.stderr, desc: desc, total: total, quiet: a.jsonOut()}
	if f, ok := a.stderr.(*os.File); ok && !p.quiet && term.IsTerminal(int(f.Fd())) {
		max := total
		if max == 0 {
			max = -1 // a spinner
		}
		p.bar = progressbar.NewOptions64(max,
			progressbar.OptionSetWriter(a.stderr),
			progressbar.OptionSetDescription(desc),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("deliveries"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	return p
}

// set shows done steps of the total, with detail (counts) beside.
func (p *progress) set(done int64, detail string) {
	switch {
	case p.quiet:
	case p.bar != nil:
		p.bar.Describe(p.desc + " " + detail)
		_ = p.bar.Set64(done)
	case time.Since(p.printed) >= 2*time.Second:
		p.printed = time.Now()
		p.line(done, detail)
	}
}

func (p *progress) line(done int64, detail string) {
	s := fmt.Sprintf("%s %d", p.desc, done)
	if p.total > 0 {
		s += fmt.Sprintf("/%d", p.total)
	}
	s += " " + detail
	if s != p.lastLine {
		fmt.Fprintln(p.w, s)
		p.lastLine = s
	}
}

// finish removes the bar (the command prints its summary after).
func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
		_ = p.bar.Clear()
	}
}

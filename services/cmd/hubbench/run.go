package main

import (
	"context"
	"errors"
	"io"
	"os"

	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/report"
)

// runBench runs the scenario the flags name and prints its report (and
// writes its JSON); the report is printed even when the run fails part of
// the way, with what it measured.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseBenchFlags(args, stderr)
	if err != nil {
		return err
	}
	b, err := newBench(ctx, c, stderr)
	if err != nil {
		return err
	}
	defer b.close()
	switch c.scenario {
	case scenarioFairness:
		err = b.fairness(ctx)
	case scenarioNoisy:
		err = b.noisy(ctx)
	case scenarioReplay:
		err = b.replay(ctx)
	default:
		err = b.throughput(ctx)
	}
	res := b.result
	if serr := b.addStages(res); serr != nil {
		err = errors.Join(err, serr)
	}
	res.Finish()
	if perr := res.PrintTable(stdout); perr != nil {
		err = errors.Join(err, perr)
	}
	if c.jsonOut != "" {
		if jerr := res.WriteJSONFile(c.jsonOut); jerr != nil {
			err = errors.Join(err, jerr)
		}
	}
	if err == nil {
		err = res.Lost()
	}
	return err
}

// addStages puts each traced traffic's stages in res (-trace), and writes
// them to -trace-csv. The scenario has stopped hubd, which sends its last
// spans as it stops.
func (b *bench) addStages(res *report.Result) error {
	if b.traces == nil {
		return nil
	}
	for i := range res.Phases {
		for j := range res.Phases[i].Traffic {
			t := &res.Phases[i].Traffic[j]
			t.Stages, t.Traced, t.Untraced = b.traces.Of(t.Class)
		}
	}
	if b.c.traceCSV == "" {
		return nil
	}
	f, err := os.Create(b.c.traceCSV)
	if err != nil {
		return err
	}
	return errors.Join(b.traces.WriteCSV(f), f.Close())
}

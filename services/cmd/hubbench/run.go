package main

import (
	"context"
	"errors"
	"io"
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

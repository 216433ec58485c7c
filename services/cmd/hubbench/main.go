// Command hubbench is hubhooks' load tool and test receiver.
//
//	hubbench [run] [flags]       load test: hubd (or a running deployment) against its ceilings
//	hubbench receive [flags]     a webhook receiver that prints what arrives
//	hubbench post [flags]        the bare client of the POST ceiling (run by "run" as a child)
//
// `make bench` runs `hubbench run` with BENCH_FLAGS; docs/performance.md
// describes the method and the results.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "hubbench:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  hubbench [run] [flags]     load test (default); 'hubbench run -h' lists the flags
  hubbench receive [flags]   print every webhook that arrives; 'hubbench receive -h'
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return runBench(ctx, args, stdout, stderr)
	case "receive":
		return runReceive(ctx, args, stdout, stderr)
	case "post":
		return runPost(ctx, args, stdout, stderr)
	case "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

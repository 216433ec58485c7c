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
	"runtime"
	"strings"
	"syscall"

	"github.com/hubhooks/hubhooks/pkg/webhook"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return // the usage asked for is printed
		}
		fmt.Fprintln(os.Stderr, "hubbench:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  hubbench run [flags]       load test hubd (or a running deployment) against its ceilings;
                             'hubbench run -h' lists the flags ('hubbench -<flag> ...' is run too)
  hubbench receive [flags]   a webhook receiver that prints every webhook that arrives (and,
                             given -secret whsec_..., verifies its signature); 'hubbench receive -h'
  hubbench -version          the version
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		// No arguments: say what the tool does rather than start a minute
		// of load on the machine.
		fmt.Fprint(stdout, usage)
		return nil
	}
	switch args[0] {
	case "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	case "-version", "--version":
		fmt.Fprintln(stdout, "hubbench", webhook.Version, runtime.Version())
		return nil
	}
	cmd := "run"
	if !strings.HasPrefix(args[0], "-") {
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

package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/procstat"
	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/stages"
)

// proc is a process whose CPU and memory the run samples.
type proc struct {
	name string
	pid  int
}

// target is the system under test.
type target struct {
	natsURL  string
	grpcAddr string
	httpAddr string // "" when unknown (external)
	prefix   string // Redis key prefix; "" when unknown
	procs    []proc
	stop     func() error
}

// hubdOptions configure a hubd child process.
type hubdOptions struct {
	bin      string
	redisURL string
	prefix   string // Redis key prefix, "hubbench:..."
	pprof    bool
	keep     bool
	log      io.Writer
	// traces, when set, receives the spans of the traces the tool begins
	// (and only those).
	traces *stages.Collector
}

// startHubd starts bin/hubd with a temp data dir, free loopback ports,
// loopback allowed as webhook destination and a unique Redis prefix, and
// waits until /readyz answers 200.
func startHubd(ctx context.Context, o hubdOptions) (*target, error) {
	dir, err := os.MkdirTemp("", "hubbench-hubd-")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(4)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	// hubd's embedded NATS requires authentication: publish as its
	// publisher, with a password of this run's.
	password := randomPassword()
	t := &target{
		natsURL:  "nats://publisher:" + password + "@" + ports[0],
		grpcAddr: ports[1],
		httpAddr: ports[2],
		prefix:   o.prefix,
	}
	logPath := filepath.Join(dir, "hubd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	cmd := exec.Command(o.bin)
	env := make([]string, 0, len(os.Environ())+10)
	for _, kv := range os.Environ() {
		// An inherited external NATS would make hubd skip its embedded one.
		if !strings.HasPrefix(kv, "HUBHOOKS_NATS_URL=") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"HUBHOOKS_DATA_DIR="+filepath.Join(dir, "data"),
		"HUBHOOKS_NATS_LISTEN="+ports[0],
		"HUBHOOKS_NATS_PUBLISHER_PASSWORD="+password,
		"HUBHOOKS_GRPC_ADDR="+ports[1],
		"HUBHOOKS_HTTP_ADDR="+ports[2],
		"HUBHOOKS_API_ADDR="+ports[3],
		"HUBHOOKS_ALLOWED_CIDRS=127.0.0.0/8",
		"HUBHOOKS_REDIS_PREFIX="+t.prefix,
		"HUBHOOKS_REDIS_URL="+o.redisURL,
		"HUBHOOKS_PPROF="+strconv.FormatBool(o.pprof),
	)
	if o.traces != nil {
		env = append(env, "HUBHOOKS_OTLP_ENDPOINT="+o.traces.Addr(), "HUBHOOKS_OTLP_INSECURE=true", "HUBHOOKS_TRACE_SAMPLE_RATIO=0")
	}
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// hubd gets SIGTERM if this tool dies without stopping it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w", o.bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.procs = []proc{{name: "hubd", pid: cmd.Process.Pid}}
	t.stop = func() error {
		defer func() {
			logFile.Close()
			if !o.keep {
				_ = os.RemoveAll(dir)
			}
		}()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			var ee *exec.ExitError
			if errors.As(err, &ee) && ee.Exited() && ee.ExitCode() != 0 {
				return fmt.Errorf("hubd exited %d (log: %s)", ee.ExitCode(), logPath)
			}
			return nil
		case <-time.After(40 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			return errors.New("hubd did not stop within 40s of SIGTERM; killed")
		}
	}
	fmt.Fprintf(o.log, "hubbench: started %s pid %d (grpc %s, http %s, nats %s, redis prefix %s, log %s)\n",
		o.bin, cmd.Process.Pid, t.grpcAddr, t.httpAddr, t.natsURL, t.prefix, logPath)

	readyCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := client.Get("http://" + t.httpAddr + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return t, nil
			}
		}
		select {
		case err := <-exited:
			exited <- err
			_ = t.stop()
			return nil, fmt.Errorf("hubd exited before it was ready (%v); last log lines:\n%s", err, tail(logPath, 20))
		case <-readyCtx.Done():
			_ = t.stop()
			return nil, fmt.Errorf("hubd not ready within 60s; last log lines:\n%s", tail(logPath, 20))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// freePorts returns n distinct free loopback host:port pairs.
func freePorts(n int) ([]string, error) {
	var out []string
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().String())
	}
	return out, nil
}

// parsePids parses "name=pid,name=pid" or "pid,pid" (names from /proc/<pid>/comm).
func parsePids(s string) ([]proc, error) {
	var out []proc
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		name, pidStr, named := strings.Cut(f, "=")
		if !named {
			pidStr = name
		}
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid <= 0 {
			return nil, fmt.Errorf("-pids: %q is not name=pid or pid", f)
		}
		if !named {
			name = "pid"
			if st, err := procstat.Read(pid); err == nil {
				name = st.Comm
			}
		}
		out = append(out, proc{name: name, pid: pid})
	}
	return out, nil
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// randomPassword is 192 random bits, URL-safe.
func randomPassword() string {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

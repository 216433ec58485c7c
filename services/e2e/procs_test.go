package e2e_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hubhooks/hubhooks/pkg/poll"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds the real service binaries once per test process.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hubhooks-bin-")
		if err != nil {
			buildErr = err
			return
		}
		_, file, _, _ := runtime.Caller(0)
		servicesDir := filepath.Dir(filepath.Dir(file))
		for _, b := range []string{"configsvc", "expander", "deliverer", "logger", "gateway"} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(dir, b), "./cmd/"+b)
			cmd.Dir = servicesDir
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", b, err, out)
				return
			}
		}
		binDir = dir
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// loadFactor is how many times slower than a quiet machine this one runs
// now: the 1-minute load average per core, between 1 and 4 (make test
// runs other packages beside this one on CI's 2 cores).
func loadFactor() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 1
	}
	var load1 float64
	if _, err := fmt.Sscan(string(b), &load1); err != nil {
		return 1
	}
	return min(max(load1/float64(runtime.NumCPU()), 1), 4)
}

// scaled is d stretched by loadFactor: the bound on a wait for processes
// to start, elect leaders or catch up, which take longer on a loaded
// machine without anything being wrong.
func scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) * loadFactor())
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// proc is a child process that can be killed and started again with the
// same command line.
type proc struct {
	t    *testing.T
	name string
	path string
	args []string
	env  []string
	log  string
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func startProc(t *testing.T, name, path string, args, env []string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, path: path, args: args, env: env, log: filepath.Join(t.TempDir(), name+".log")}
	p.start()
	t.Cleanup(func() { p.stop(syscall.SIGKILL) })
	return p
}

func (p *proc) start() {
	p.t.Helper()
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); f.Close(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
}

// stop sends sig and waits for the process to exit.
func (p *proc) stop(sig syscall.Signal) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(40 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

func (p *proc) exited() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	s := string(b)
	if len(s) > 4000 {
		s = s[len(s)-4000:]
	}
	return s
}

// redisProc is a redis-server of the test's own, with an append-only file
// fsynced on every write, so it can be killed and restarted losing nothing.
type redisProc struct {
	*proc
	addr string
}

func startRedis(t *testing.T) *redisProc {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not on PATH (install Debian's redis-server): %v", err)
	}
	addr := freeAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	dir := t.TempDir()
	r := &redisProc{addr: addr, proc: startProc(t, "redis", path,
		[]string{"--bind", host, "--port", port, "--dir", dir, "--appendonly", "yes", "--appendfsync", "always", "--save", ""}, nil)}
	r.waitUp(t)
	return r
}

func (r *redisProc) waitUp(t *testing.T) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.addr})
	defer c.Close()
	poll.Until(t, 10*time.Second, "redis-server up", func() bool {
		return c.Ping(context.Background()).Err() == nil
	})
}

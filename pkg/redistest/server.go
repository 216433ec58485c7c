package redistest

import (
	"context"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a redis-server process of the test's own on a free loopback
// port, for tests that need replication or to stop a server (New's shared
// Redis is for everything else). It is killed by t.Cleanup.
type Server struct {
	Addr string
	cmd  *exec.Cmd
	done chan struct{}
}

// StartServer starts redis-server (from PATH; the test fails without it)
// with no persistence and the extra arguments given, and waits until it
// answers.
func StartServer(t testing.TB, extra ...string) *Server {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redistest: redis-server is not on PATH (install Debian's redis-server): %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	host, port, _ := net.SplitHostPort(addr)
	args := append([]string{"--bind", host, "--port", port, "--dir", t.TempDir(), "--save", "", "--appendonly", "no"}, extra...)
	s := &Server{Addr: addr, cmd: exec.Command(path, args...), done: make(chan struct{})}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("redistest: start redis-server: %v", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() { s.Signal(syscall.SIGCONT); s.Kill() })
	c := s.Client(t)
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("redistest: redis-server on %s does not answer", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

// Client is a client of this server alone, closed by t.Cleanup.
func (s *Server) Client(t testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Signal sends sig to the server (SIGSTOP freezes it, SIGCONT resumes it).
func (s *Server) Signal(sig syscall.Signal) { _ = s.cmd.Process.Signal(sig) }

// Kill SIGKILLs the server and waits until it is gone.
func (s *Server) Kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// StartReplicated starts a primary and a replica of it (StartServer each)
// and waits until the replica holds the primary's data, for tests of
// writes that wait for replicas (Redis WAIT).
func StartReplicated(t testing.TB) (primary, replica *Server) {
	t.Helper()
	primary = StartServer(t, "--repl-diskless-sync-delay", "0")
	host, port, _ := net.SplitHostPort(primary.Addr)
	replica = StartServer(t, "--replicaof", host, port)
	rc := replica.Client(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := rc.Info(context.Background(), "replication").Result()
		if err == nil && strings.Contains(info, "master_link_status:up") {
			return primary, replica
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: the replica on %s is not in sync with %s", replica.Addr, primary.Addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

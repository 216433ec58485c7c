package hubd

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/hubhooks/hubhooks/pkg/cascade"
	"github.com/hubhooks/hubhooks/services/internal/settings"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// busy listens on a free loopback port until the test ends.
func busy(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.Addr().String()
}

// TestListenAddrIsRemembered: with the default port busy, the embedded
// NATS takes a free port and takes the same one at the next start; only
// when that one is busy too does it move (and remember the new one).
func TestListenAddrIsRemembered(t *testing.T) {
	def := busy(t)
	s := &settings.Settings{DataDir: t.TempDir(), NATSListen: def}
	first, err := listenAddr(s, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if first == def {
		t.Fatalf("took the busy default %s", def)
	}
	b, err := os.ReadFile(filepath.Join(s.DataDir, listenFile))
	if err != nil || strings.TrimSpace(string(b)) != first {
		t.Fatalf("remembered %q (%v), want %s", b, err, first)
	}
	again, err := listenAddr(s, quiet)
	if err != nil || again != first {
		t.Fatalf("second start took %s (%v), want the remembered %s", again, err, first)
	}

	// The remembered port is taken by someone else now: a new one.
	l, err := net.Listen("tcp", first)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	third, err := listenAddr(s, quiet)
	if err != nil || third == first || third == def {
		t.Fatalf("with both busy took %s (%v)", third, err)
	}
	if b, _ := os.ReadFile(filepath.Join(s.DataDir, listenFile)); strings.TrimSpace(string(b)) != third {
		t.Fatalf("remembered %q, want %s", b, third)
	}

	// HUBHOOKS_NATS_LISTEN set: exactly that, whatever is remembered.
	s.NATSListenSet = true
	if got, _ := listenAddr(s, quiet); got != def {
		t.Fatalf("with HUBHOOKS_NATS_LISTEN set took %s, want %s", got, def)
	}
}

// TestPublisherPassword: generated once and kept (0600) in the data
// directory; HUBHOOKS_NATS_PUBLISHER_PASSWORD wins when set.
func TestPublisherPassword(t *testing.T) {
	s := &settings.Settings{DataDir: t.TempDir()}
	p1, fromFile, err := publisherPassword(s)
	if err != nil || !fromFile || len(p1) < settings.MinNATSPasswordLen {
		t.Fatalf("generated %q, from file %v, err %v", p1, fromFile, err)
	}
	st, err := os.Stat(filepath.Join(s.DataDir, publisherPasswordFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("password file: %v, mode %v", err, st.Mode())
	}
	if p2, _, _ := publisherPassword(s); p2 != p1 {
		t.Fatalf("second start: %q, want the kept %q", p2, p1)
	}
	s.NATSPublisherPassword = "from-the-environment-123"
	if p3, fromFile, _ := publisherPassword(s); p3 != s.NATSPublisherPassword || fromFile {
		t.Fatalf("with the setting: %q (from file %v)", p3, fromFile)
	}
}

// TestInternalUserOnlyInProcess: the user hubd's services connect as is
// refused over TCP even with its password; in memory it connects.
func TestInternalUserOnlyInProcess(t *testing.T) {
	s := &settings.Settings{DataDir: t.TempDir(), NATSListen: "127.0.0.1:0", NATSListenSet: true}
	e, err := startEmbedded(s, cascade.Default().Subjects(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer e.stop()
	if nc, err := nats.Connect(e.url, nats.UserInfo("hubd", e.password), nats.NoReconnect()); err == nil {
		nc.Close()
		t.Fatal("the internal user connected over TCP")
	}
	nc, err := nats.Connect(e.url, e.connectOptions()...)
	if err != nil {
		t.Fatalf("in-process connection: %v", err)
	}
	nc.Close()
	nc, err = nats.Connect(e.publisherURL, nats.NoReconnect())
	if err != nil {
		t.Fatalf("publisher: %v", err)
	}
	nc.Close()
}

// TestSecondHubdRefused: a second hubd on the same data directory stops
// at the lock, before it opens the NATS store, and says who holds it.
func TestSecondHubdRefused(t *testing.T) {
	s := &settings.Settings{DataDir: t.TempDir(), NATSListen: "127.0.0.1:0", NATSListenSet: true}
	e, err := startEmbedded(s, cascade.Default().Subjects(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	second := *s
	second.NATSListen = busy(t) // a store opened before the lock would fail here, not at the lock
	_, err = startEmbedded(&second, cascade.Default().Subjects(), quiet)
	if !errors.Is(err, ErrDataDirLocked) ||
		!strings.Contains(err.Error(), s.DataDir) || !strings.Contains(err.Error(), "pid ") {
		t.Fatalf("second start: %v, want %v naming the directory and the pid", err, ErrDataDirLocked)
	}
	e.stop()
	// Once the first has stopped, the directory is free again.
	e, err = startEmbedded(s, cascade.Default().Subjects(), quiet)
	if err != nil {
		t.Fatalf("start after the first stopped: %v", err)
	}
	e.stop()
}

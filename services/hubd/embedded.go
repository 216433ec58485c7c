package hubd

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/hubhooks/hubhooks/pkg/natsembed"
	"github.com/hubhooks/hubhooks/services/internal/natsauth"
	"github.com/hubhooks/hubhooks/services/internal/settings"
)

// Files hubd keeps in its data directory beside the NATS store.
const (
	// lockFile is locked while a hubd runs on the directory.
	lockFile = "hubd.lock"
	// listenFile remembers the address the embedded NATS took when the
	// default port was busy, so it takes the same one at the next start.
	listenFile = "nats-listen"
	// publisherPasswordFile holds the generated password of the user
	// "publisher" (mode 0600).
	publisherPasswordFile = "nats-publisher-password"
	// storeDir is the JetStream store.
	storeDir = "nats"
)

// ErrDataDirLocked is returned by Start when another hubd runs on the
// same data directory.
var ErrDataDirLocked = errors.New("data directory in use")

func lockedError(dir, pid string) error {
	who := "another hubd"
	if pid != "" {
		who += " (pid " + pid + ")"
	}
	return fmt.Errorf("%w: %s runs with the data directory %s; stop it, or start this one with another HUBHOOKS_DATA_DIR", ErrDataDirLocked, who, dir)
}

// embeddedNATS is hubd's own NATS server. It requires authentication: the
// hub's domains connect as "publisher" (natsauth.Publisher's permissions),
// and hubd's services as "hubd", in memory only.
type embeddedNATS struct {
	srv *server.Server
	// url is the server's client URL, without credentials.
	url string
	// publisherURL is url with the publisher's user and password.
	publisherURL string
	// password of the user "hubd": random, never stored or shown, and
	// accepted only on in-process connections.
	password string
	unlock   func()
}

// startEmbedded locks the data directory, then starts the server on
// listenAddr's address with the users publisher (password from
// HUBHOOKS_NATS_PUBLISHER_PASSWORD, or generated and kept in the data
// directory) and hubd. domainSubjects are what the publisher may publish.
func startEmbedded(s *settings.Settings, domainSubjects []string, log *slog.Logger) (*embeddedNATS, error) {
	if err := os.MkdirAll(s.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	unlock, err := lockDataDir(s.DataDir)
	if err != nil {
		return nil, err
	}
	e, err := startLocked(s, domainSubjects, log)
	if err != nil {
		unlock()
		return nil, err
	}
	e.unlock = unlock
	return e, nil
}

func startLocked(s *settings.Settings, domainSubjects []string, log *slog.Logger) (*embeddedNATS, error) {
	pubPassword, fromFile, err := publisherPassword(s)
	if err != nil {
		return nil, err
	}
	pubPerm, err := natsauth.For(natsauth.Publisher, domainSubjects)
	if err != nil {
		return nil, err
	}
	hubdPerm, err := natsauth.For(natsauth.Hubd, nil)
	if err != nil {
		return nil, err
	}
	e := &embeddedNATS{password: randomPassword()}
	users := []*server.User{
		{
			Username: string(natsauth.Publisher), Password: pubPassword, Permissions: pubPerm.Server(),
			AllowedConnectionTypes: map[string]struct{}{jwt.ConnectionTypeStandard: {}},
		},
		{
			Username: string(natsauth.Hubd), Password: e.password, Permissions: hubdPerm.Server(),
			AllowedConnectionTypes: map[string]struct{}{jwt.ConnectionTypeInProcess: {}},
		},
	}
	listen, err := listenAddr(s, log)
	if err != nil {
		return nil, err
	}
	store := filepath.Join(s.DataDir, storeDir)
	e.srv, err = natsembed.Start(natsembed.Config{Listen: listen, StoreDir: store, Users: users})
	if err != nil {
		return nil, err
	}
	e.url = e.srv.ClientURL()
	u, err := url.Parse(e.url)
	if err != nil {
		e.srv.Shutdown()
		return nil, fmt.Errorf("embedded NATS url %q: %w", e.url, err)
	}
	u.User = url.UserPassword(string(natsauth.Publisher), pubPassword)
	e.publisherURL = u.String()
	if fromFile {
		log.Info("embedded NATS with JetStream started; publish domain events as the user publisher",
			"publisher_url", e.publisherURL, "password_file", filepath.Join(s.DataDir, publisherPasswordFile), "store", store)
	} else {
		log.Info("embedded NATS with JetStream started; publish domain events as the user publisher",
			"publisher_url", u.Scheme+"://publisher:$HUBHOOKS_NATS_PUBLISHER_PASSWORD@"+u.Host, "store", store)
	}
	return e, nil
}

// connectOptions connect hubd's services to the server in memory as the
// user hubd.
func (e *embeddedNATS) connectOptions() []nats.Option {
	return []nats.Option{nats.InProcessServer(e.srv), nats.UserInfo(string(natsauth.Hubd), e.password)}
}

// stop shuts the server down and unlocks the data directory.
func (e *embeddedNATS) stop() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	e.unlock()
}

// publisherPassword is HUBHOOKS_NATS_PUBLISHER_PASSWORD, or the password
// kept in the data directory (made on first use); fromFile says which.
func publisherPassword(s *settings.Settings) (password string, fromFile bool, err error) {
	if s.NATSPublisherPassword != "" {
		return s.NATSPublisherPassword, false, nil
	}
	path := filepath.Join(s.DataDir, publisherPasswordFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		p := strings.TrimSpace(string(b))
		if len(p) < settings.MinNATSPasswordLen {
			return "", false, fmt.Errorf("%s holds a password shorter than %d characters; delete it to have a new one generated", path, settings.MinNATSPasswordLen)
		}
		return p, true, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", false, fmt.Errorf("publisher password: %w", err)
	}
	p := randomPassword()
	if err := os.WriteFile(path, []byte(p+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("keep the publisher password: %w", err)
	}
	return p, true, nil
}

// randomPassword is 192 random bits, URL-safe.
func randomPassword() string {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// listenAddr is where the embedded NATS listens: HUBHOOKS_NATS_LISTEN when
// set. Otherwise the address it took before (kept in the data directory
// when the default port was busy) while that is free, else the default
// while that is free, else a free port of the default's host, kept for the
// next start: the URL publishers were given keeps working across restarts.
func listenAddr(s *settings.Settings, log *slog.Logger) (string, error) {
	if s.NATSListenSet {
		return s.NATSListen, nil
	}
	path := filepath.Join(s.DataDir, listenFile)
	if b, err := os.ReadFile(path); err == nil {
		kept := strings.TrimSpace(string(b))
		if _, _, err := net.SplitHostPort(kept); err == nil && free(kept) {
			log.Info("embedded NATS takes the address it took before (the default was busy then); delete the file to go back to the default",
				"listen", kept, "file", path)
			return kept, nil
		}
		log.Warn("the address the embedded NATS took before is not free now; publishers given it must be told the new one", "was", kept, "file", path)
	}
	if free(s.NATSListen) {
		_ = os.Remove(path)
		return s.NATSListen, nil
	}
	host, _, _ := net.SplitHostPort(s.NATSListen)
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", fmt.Errorf("embedded NATS: %s is in use and no free port was found: %w", s.NATSListen, err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	if err := os.WriteFile(path, []byte(addr+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("keep the embedded NATS address: %w", err)
	}
	log.Warn("the default NATS port is in use; the embedded NATS takes another and will take it again at every start (set HUBHOOKS_NATS_LISTEN to choose)",
		"busy", s.NATSListen, "listen", addr, "file", path)
	return addr, nil
}

func free(addr string) bool {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

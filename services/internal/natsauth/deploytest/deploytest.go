// Package deploytest runs the NATS server configuration that deploy/nats
// ships, unchanged but for where it is mounted, inside tests: the files are
// copied to a temporary directory standing in for /etc/nats (where the
// compose files mount deploy/nats), TLS files are made there with
// natsauth.WriteTLS, and each user's password is set in the environment
// the configuration reads it from.
package deploytest

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/hubhooks/hubhooks/services/internal/natsauth"
)

// MountPoint is where the compose files mount deploy/nats; the
// configuration names its files there.
const MountPoint = "/etc/nats"

// Dir returns the repository's deploy/nats.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "deploy", "nats")
}

// Deploy is a copy of deploy/nats with TLS files and passwords.
type Deploy struct {
	// Dir stands in for /etc/nats: the configuration files, and tls/.
	Dir string
	// Passwords of the users of users.conf.
	Passwords map[natsauth.Role]string
	// Env are the variables the configuration reads (KEY=VALUE): every
	// password, and SERVER_NAME of cluster.conf.
	Env []string
}

// Prepare copies deploy/nats into a temporary directory, rewriting
// MountPoint to it, makes TLS files for natsauth.DefaultTLSHosts and
// passwords for natsauth.DeployRoles.
func Prepare(t testing.TB) *Deploy {
	t.Helper()
	d := &Deploy{Dir: t.TempDir(), Passwords: map[natsauth.Role]string{}}
	confs, err := filepath.Glob(filepath.Join(Dir(), "*.conf"))
	if err != nil || len(confs) == 0 {
		t.Fatalf("deploytest: no configuration in %s (%v)", Dir(), err)
	}
	for _, c := range confs {
		b, err := os.ReadFile(c)
		if err != nil {
			t.Fatal(err)
		}
		local := strings.ReplaceAll(string(b), MountPoint+"/", d.Dir+"/")
		if err := os.WriteFile(filepath.Join(d.Dir, filepath.Base(c)), []byte(local), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := natsauth.WriteTLS(d.TLSDir(), natsauth.DefaultTLSHosts); err != nil {
		t.Fatal(err)
	}
	for _, r := range natsauth.DeployRoles {
		d.Passwords[r] = "test-" + string(r) + "-0123456789abcdef"
		d.Env = append(d.Env, natsauth.PasswordEnv(r)+"="+d.Passwords[r])
	}
	return d
}

// TLSDir is the directory of the TLS files.
func (d *Deploy) TLSDir() string { return filepath.Join(d.Dir, "tls") }

// CA is the CA file clients verify the server with.
func (d *Deploy) CA() string { return filepath.Join(d.TLSDir(), natsauth.TLSCA) }

// Conf is the path of a configuration file of the copy ("hubhooks.conf").
func (d *Deploy) Conf(name string) string { return filepath.Join(d.Dir, name) }

// SetEnv sets Env (and SERVER_NAME) in the test's environment, for an
// in-process server.
func (d *Deploy) SetEnv(t *testing.T, serverName string) {
	t.Helper()
	for _, kv := range d.Env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("SERVER_NAME", serverName)
}

// Run starts conf of the copy (a single server's: hubhooks.conf) in the
// test process, as nats-server would with `-c conf`, on a loopback port
// picked by the system, with a temporary JetStream store and no monitoring
// port. It is shut down by t.Cleanup.
func (d *Deploy) Run(t *testing.T, conf string) *server.Server {
	t.Helper()
	d.SetEnv(t, "deploytest")
	opts, err := server.ProcessConfigFile(d.Conf(conf))
	if err != nil {
		t.Fatalf("deploytest: %s: %v", conf, err)
	}
	opts.Host, opts.Port, opts.HTTPPort = "127.0.0.1", server.RANDOM_PORT, 0
	opts.StoreDir = t.TempDir()
	if opts.Cluster.Port != 0 {
		t.Fatalf("deploytest: %s is a cluster node's configuration", conf)
	}
	opts.NoSigs = true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("deploytest: %s: %v", conf, err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		t.Fatalf("deploytest: %s: not ready for connections", conf)
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// Login is the connect options of role r: its user and password and the
// CA.
func (d *Deploy) Login(r natsauth.Role) []nats.Option {
	return []nats.Option{nats.UserInfo(string(r), d.Passwords[r]), nats.RootCAs(d.CA())}
}

// NodeConf writes a copy of conf for one server process named node, with
// each container path of volumes (a volume's mount point, "/data") replaced
// by its local directory, and returns its path: processes sharing the
// configuration get stores of their own.
func (d *Deploy) NodeConf(t testing.TB, conf, node string, volumes map[string]string) string {
	t.Helper()
	b, err := os.ReadFile(d.Conf(conf))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for target, local := range volumes {
		s = strings.ReplaceAll(s, " "+target+"/", " "+local+"/")
	}
	path := d.Conf(node + "-" + conf)
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

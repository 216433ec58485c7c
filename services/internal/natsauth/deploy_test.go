package natsauth_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"flag"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/hubhooks/hubhooks/pkg/cascade"
	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/natstest"
	"github.com/hubhooks/hubhooks/pkg/poll"
	"github.com/hubhooks/hubhooks/services/internal/natsauth"
	"github.com/hubhooks/hubhooks/services/internal/natsauth/deploytest"
)

var update = flag.Bool("update", false, "rewrite deploy/nats/users.conf from natsauth")

// TestUsersConfIsCurrent keeps deploy/nats/users.conf, the users of the
// separate deployment's NATS server, equal to what natsauth defines.
func TestUsersConfIsCurrent(t *testing.T) {
	want, err := natsauth.UsersConf(cascade.Default().Subjects())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(deploytest.Dir(), "users.conf")
	got, err := os.ReadFile(path)
	if err != nil && !*update {
		t.Fatal(err)
	}
	if string(got) == string(want) {
		return
	}
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("%s is stale: run go test ./services/internal/natsauth -run TestUsersConfIsCurrent -update", path)
}

// TestDeployConfigMatches loads deploy/nats/hubhooks.conf and cluster.conf
// the way nats-server does and finds exactly natsauth's users (passwords
// from the environment, permissions, standard connections only), no
// anonymous user, TLS required of clients and, in the cluster, mutual TLS
// on routes. Without a password in the environment the server does not
// start.
func TestDeployConfigMatches(t *testing.T) {
	d := deploytest.Prepare(t)
	d.SetEnv(t, "n0")
	want, err := natsauth.ServerUsers(d.Passwords, cascade.Default().Subjects())
	if err != nil {
		t.Fatal(err)
	}
	for _, conf := range []string{"hubhooks.conf", "cluster.conf"} {
		t.Run(conf, func(t *testing.T) {
			opts, err := server.ProcessConfigFile(d.Conf(conf))
			if err != nil {
				t.Fatal(err)
			}
			got := slices.Clone(opts.Users)
			slices.SortFunc(got, func(a, b *server.User) int { return strings.Compare(a.Username, b.Username) })
			if len(got) != len(want) {
				t.Fatalf("%d users, want %d", len(got), len(want))
			}
			for i, u := range got {
				w := want[i]
				if u.Username != w.Username || u.Password != w.Password {
					t.Errorf("user %d: %s/%s, want %s with its password from %s", i, u.Username, u.Password, w.Username, natsauth.PasswordEnv(natsauth.Role(w.Username)))
				}
				if !slices.Equal(u.Permissions.Publish.Allow, w.Permissions.Publish.Allow) ||
					!slices.Equal(u.Permissions.Publish.Deny, w.Permissions.Publish.Deny) ||
					!slices.Equal(u.Permissions.Subscribe.Allow, w.Permissions.Subscribe.Allow) ||
					len(u.Permissions.Subscribe.Deny) != 0 || u.Permissions.Response != nil {
					t.Errorf("%s: permissions %+v %+v, want %+v %+v", u.Username, u.Permissions.Publish, u.Permissions.Subscribe, w.Permissions.Publish, w.Permissions.Subscribe)
				}
				if len(u.AllowedConnectionTypes) != 1 {
					t.Errorf("%s: connection types %v, want STANDARD only", u.Username, u.AllowedConnectionTypes)
				}
				for ct := range w.AllowedConnectionTypes {
					if _, ok := u.AllowedConnectionTypes[ct]; !ok {
						t.Errorf("%s: connection types %v, want %s only", u.Username, u.AllowedConnectionTypes, ct)
					}
				}
			}
			if opts.NoAuthUser != "" || opts.Username != "" || opts.Authorization != "" || len(opts.Nkeys) != 0 {
				t.Errorf("another way in: no_auth_user %q, user %q, token %t, nkeys %d", opts.NoAuthUser, opts.Username, opts.Authorization != "", len(opts.Nkeys))
			}
			if opts.TLSConfig == nil || opts.AllowNonTLS {
				t.Error("clients may connect without TLS")
			}
			if opts.Cluster.Port != 0 {
				if opts.Cluster.TLSConfig == nil || opts.Cluster.TLSConfig.ClientAuth != tls.RequireAndVerifyClientCert {
					t.Error("routes are not mutual TLS")
				}
			}
		})
	}
	t.Run("password unset", func(t *testing.T) {
		os.Unsetenv(natsauth.PasswordEnv(natsauth.Deliverer))
		if _, err := server.ProcessConfigFile(d.Conf("hubhooks.conf")); err == nil || !strings.Contains(err.Error(), natsauth.PasswordEnv(natsauth.Deliverer)) {
			t.Errorf("loaded without %s: %v", natsauth.PasswordEnv(natsauth.Deliverer), err)
		}
	})
}

// TestDeployConfigServes runs deploy/nats/hubhooks.conf in the test
// process: each service's user does its job and nothing else, the
// publisher only publishes domain events, and clients without TLS or
// without a user are refused. (services/e2e TestNATSCluster runs
// cluster.conf on three nodes.)
func TestDeployConfigServes(t *testing.T) {
	d := deploytest.Prepare(t)
	srv := d.Run(t, "hubhooks.conf")
	eachServiceDoesItsJobOnly(t, srv, d.Login)
	monitorOnlyReads(t, srv, d.Login(natsauth.Monitor))
	refusesStrangers(t, srv, d)
}

// monitorOnlyReads: the monitor reads stream and consumer information
// (the streams exist: eachServiceDoesItsJobOnly made them) and nothing
// else: no message, no change.
func monitorOnlyReads(t *testing.T, srv *server.Server, login []nats.Option) {
	t.Helper()
	var log errLog
	nc, js := natstest.Connect(t, srv, append(login, nats.CustomInboxPrefix(natsauth.InboxPrefix(natsauth.Monitor)), nats.ErrorHandler(log.add))...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		t.Fatalf("monitor: account info: %v", err)
	}
	st, err := js.Stream(ctx, eventbus.StreamDeliveries)
	if err != nil {
		t.Fatalf("monitor: stream info: %v", err)
	}
	n := 0
	for range st.ListConsumers(ctx).Info() {
		n++
	}
	if n == 0 {
		t.Error("monitor: no consumer of the deliveries stream listed")
	}
	if _, err := st.Consumer(ctx, eventbus.ConsumerDeliverer); err != nil {
		t.Fatalf("monitor: consumer info: %v", err)
	}
	if errs := log.any(); len(errs) > 0 {
		t.Fatalf("monitor: refused: %v", errs)
	}
	pubs := []string{eventbus.DeliverySubject("h"), "API.CREATED",
		"$JS.API.STREAM.DELETE." + eventbus.StreamEvents, "$JS.API.STREAM.UPDATE." + eventbus.StreamEvents,
		"$JS.API.STREAM.MSG.GET." + eventbus.StreamDeliveries, "$JS.API.DIRECT.GET." + eventbus.StreamDeliveries,
		"$JS.API.CONSUMER.CREATE." + eventbus.StreamDeliveries + ".spy",
		"$JS.API.CONSUMER.MSG.NEXT." + eventbus.StreamDeliveries + "." + eventbus.ConsumerDeliverer,
		"$JS.API.CONSUMER.DELETE." + eventbus.StreamDeliveries + "." + eventbus.ConsumerDeliverer}
	for _, subj := range pubs {
		if err := nc.Publish(subj, []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	subs := []string{"hubhooks.>", "_INBOX.>", natsauth.InboxPrefix(natsauth.Deliverer) + ".>"}
	for _, subj := range subs {
		if _, err := nc.Subscribe(subj, func(*nats.Msg) {}); err != nil {
			t.Fatal(err)
		}
	}
	for _, subj := range append(pubs, subs...) {
		poll.Until(t, 10*time.Second, "monitor: "+subj+" refused", func() bool { return log.refused(subj) })
	}
}

// refusesStrangers: no connection without a user, with a wrong password,
// or without TLS (even with a valid password).
func refusesStrangers(t *testing.T, srv *server.Server, d *deploytest.Deploy) {
	t.Helper()
	url := srv.ClientURL()
	for name, opts := range map[string][]nats.Option{
		"anonymous":      {nats.RootCAs(d.CA())},
		"wrong password": {nats.RootCAs(d.CA()), nats.UserInfo(string(natsauth.Publisher), "guess-0123456789")},
		"hubd":           {nats.RootCAs(d.CA()), nats.UserInfo(string(natsauth.Hubd), d.Passwords[natsauth.Publisher])},
	} {
		if nc, err := nats.Connect(url, append(opts, nats.NoReconnect(), nats.Timeout(5*time.Second))...); err == nil {
			nc.Close()
			t.Errorf("%s: connected", name)
		} else if !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
			t.Errorf("%s: %v, want an authorization violation", name, err)
		}
	}
	if nc, err := nats.Connect(url, nats.UserInfo(string(natsauth.Publisher), d.Passwords[natsauth.Publisher]), nats.NoReconnect()); err == nil {
		nc.Close()
		t.Error("connected without the CA: the certificate was not checked")
	}
	// A plain-text client: CONNECT with a valid password, no TLS handshake.
	conn, err := net.DialTimeout("tcp", srv.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	info, err := r.ReadString('\n')
	if err != nil || !strings.Contains(info, `"tls_required":true`) {
		t.Fatalf("INFO %q (%v): want tls_required", info, err)
	}
	if _, err := conn.Write([]byte(`CONNECT {"verbose":false,"user":"publisher","pass":"` + d.Passwords[natsauth.Publisher] + `"}` + "\r\nPING\r\n")); err != nil {
		t.Fatal(err)
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			break // closed: refused
		}
		if strings.HasPrefix(line, "PONG") {
			t.Fatal("a plain-text client was served")
		}
	}
}

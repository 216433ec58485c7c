package auth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/hubhooks/hubhooks/pkg/auth"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

var serial int64

func newCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	key := newKey(t)
	serial++
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	file := filepath.Join(dir, name+"-ca.pem")
	writePEM(t, file, "CERTIFICATE", der)
	return &testCA{cert: cert, key: key, file: file}
}

// issue writes a leaf certificate and key signed by ca and returns their files.
func (ca *testCA) issue(t *testing.T, dir, name string, usage x509.ExtKeyUsage) (certFile, keyFile string) {
	t.Helper()
	key := newKey(t)
	serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     []string{"localhost", "configsvc.internal"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = filepath.Join(dir, name+".pem")
	keyFile = filepath.Join(dir, name+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", kder)
	return certFile, keyFile
}

func TestTLSAndMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, dir, "hubhooks")
	rogue := newCA(t, dir, "rogue")
	srvCert, srvKey := ca.issue(t, dir, "server", x509.ExtKeyUsageServerAuth)
	cliCert, cliKey := ca.issue(t, dir, "client", x509.ExtKeyUsageClientAuth)
	rogueCert, rogueKey := rogue.issue(t, dir, "rogue-client", x509.ExtKeyUsageClientAuth)

	clientCreds := func(caFile, cert, key, name string) grpc.DialOption {
		t.Helper()
		c, err := auth.ClientTLS(caFile, cert, key, name)
		if err != nil {
			t.Fatalf("ClientTLS: %v", err)
		}
		return grpc.WithTransportCredentials(c)
	}
	get := func(c hubhooksv1.ConfigServiceClient) error {
		_, err := c.GetHubConfig(callCtx(t), &hubhooksv1.GetHubConfigRequest{HubId: "hub-a"}, bearer(adminToken))
		return err
	}

	t.Run("tls", func(t *testing.T) {
		sc, err := auth.ServerTLS(srvCert, srvKey, "")
		if err != nil {
			t.Fatal(err)
		}
		s := startServer(t, adminToken, nil, grpc.Creds(sc))
		if err := get(dial(t, s.addr, clientCreds(ca.file, "", "", ""))); err != nil {
			t.Fatalf("TLS call: %v", err)
		}
		if err := get(dial(t, s.addr, clientCreds(ca.file, "", "", "configsvc.internal"))); err != nil {
			t.Fatalf("TLS call with server name: %v", err)
		}
		wantCode(t, "server name not in certificate", get(dial(t, s.addr, clientCreds(ca.file, "", "", "other.example"))), codes.Unavailable)
		wantCode(t, "untrusted server CA", get(dial(t, s.addr, clientCreds(rogue.file, "", "", ""))), codes.Unavailable)
	})

	t.Run("mtls", func(t *testing.T) {
		sc, err := auth.ServerTLS(srvCert, srvKey, ca.file)
		if err != nil {
			t.Fatal(err)
		}
		s := startServer(t, adminToken, nil, grpc.Creds(sc))
		if err := get(dial(t, s.addr, clientCreds(ca.file, cliCert, cliKey, ""))); err != nil {
			t.Fatalf("mTLS call: %v", err)
		}
		wantCode(t, "no client certificate", get(dial(t, s.addr, clientCreds(ca.file, "", "", ""))), codes.Unavailable)
		wantCode(t, "client certificate from another CA", get(dial(t, s.addr, clientCreds(ca.file, rogueCert, rogueKey, ""))), codes.Unavailable)
	})

	t.Run("bad files", func(t *testing.T) {
		notPEM := filepath.Join(dir, "not.pem")
		if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name string
			call func() error
		}{
			{"server without key", func() error { _, err := auth.ServerTLS(srvCert, "", ""); return err }},
			{"server missing file", func() error { _, err := auth.ServerTLS(filepath.Join(dir, "nope"), srvKey, ""); return err }},
			{"server CA not PEM", func() error { _, err := auth.ServerTLS(srvCert, srvKey, notPEM); return err }},
			{"client cert without key", func() error { _, err := auth.ClientTLS(ca.file, cliCert, "", ""); return err }},
			{"client CA missing", func() error { _, err := auth.ClientTLS(filepath.Join(dir, "nope"), "", "", ""); return err }},
			{"client mismatched pair", func() error { _, err := auth.ClientTLS(ca.file, cliCert, rogueKey, ""); return err }},
		}
		for _, tt := range tests {
			if err := tt.call(); err == nil {
				t.Errorf("%s: accepted", tt.name)
			}
		}
	})
}

package natsauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// The files of a TLS directory for the NATS server (deploy/nats/tls),
// as deploy/nats/*.conf and the compose files name them.
const (
	TLSCA         = "ca.pem"          // the CA clients and routes verify against
	TLSCAKey      = "ca-key.pem"      // kept to sign the next server certificate
	TLSServerCert = "server-cert.pem" // the server's (and route's) certificate
	TLSServerKey  = "server-key.pem"
)

// DefaultTLSHosts are the names the server certificate carries: the NATS
// services of the compose files and loopback.
var DefaultTLSHosts = []string{"nats", "nats-0", "nats-1", "nats-2", "localhost", "127.0.0.1", "::1"}

// WriteTLS makes a CA and a server certificate signed by it for hosts
// (names and IP addresses) in dir. The certificate serves both client
// connections and cluster routes (server and client authentication), so
// nodes sharing it authenticate each other's routes. Files that exist are
// kept: WriteTLS never replaces a CA or key.
func WriteTLS(dir string, hosts []string) error {
	paths := []string{TLSCA, TLSCAKey, TLSServerCert, TLSServerKey}
	existing := 0
	for _, p := range paths {
		if _, err := os.Stat(filepath.Join(dir, p)); err == nil {
			existing++
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	switch existing {
	case len(paths):
		return nil
	case 0:
	default:
		return fmt.Errorf("%s holds some of %v but not all: move them away to make new ones", dir, paths)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "hubhooks NATS CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "hubhooks NATS server"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(2, 0, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	write := func(name, typ string, der []byte, mode os.FileMode) error {
		return os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
	}
	caKeyDER, err := x509.MarshalECPrivateKey(caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	// The server key is readable by the nats-server container's user,
	// the CA by every service's.
	for _, f := range []struct {
		name, typ string
		der       []byte
		mode      os.FileMode
	}{
		{TLSCA, "CERTIFICATE", caDER, 0o644},
		{TLSCAKey, "EC PRIVATE KEY", caKeyDER, 0o600},
		{TLSServerCert, "CERTIFICATE", certDER, 0o644},
		{TLSServerKey, "EC PRIVATE KEY", keyDER, 0o600},
	} {
		if err := write(f.name, f.typ, f.der, f.mode); err != nil {
			return err
		}
	}
	return nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return n
}

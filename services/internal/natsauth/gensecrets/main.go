// Command gensecrets makes the secrets of a new separate deployment: the
// TLS files of its NATS server (deploy/nats/tls: a CA and a server
// certificate signed by it) and, in an env file that docker compose reads
// (.env), a random admin token and a random NATS password for each user of
// deploy/nats/users.conf. It keeps what exists: run it again after adding
// a user and only the new password is added.
//
//	go run ./services/internal/natsauth/gensecrets [-tls deploy/nats/tls] [-env .env] [-hosts nats,nats-0,...]
package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/hubhooks/hubhooks/services/internal/natsauth"
)

func main() {
	tlsDir := flag.String("tls", "deploy/nats/tls", "directory of the NATS server's TLS files (made if missing; existing files are kept)")
	envFile := flag.String("env", ".env", "env file to add the missing HUBHOOKS_ADMIN_TOKEN and HUBHOOKS_NATS_<USER>_PASSWORD lines to")
	hosts := flag.String("hosts", strings.Join(natsauth.DefaultTLSHosts, ","), "comma-separated names and IP addresses the server certificate is valid for")
	flag.Parse()
	if err := natsauth.WriteTLS(*tlsDir, strings.Split(*hosts, ",")); err != nil {
		fail(err)
	}
	added, err := addEnv(*envFile)
	if err != nil {
		fail(err)
	}
	fmt.Printf("TLS files in %s (clients verify with %s/%s); %s: %d variables added\n", *tlsDir, *tlsDir, natsauth.TLSCA, *envFile, added)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "gensecrets:", err)
	os.Exit(1)
}

// addEnv appends a random value for each variable that path does not
// set yet, and returns how many it added.
func addEnv(path string) (int, error) {
	set := map[string]bool{}
	f, err := os.Open(path)
	switch {
	case err == nil:
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, _, ok := strings.Cut(strings.TrimSpace(sc.Text()), "="); ok {
				set[strings.TrimPrefix(k, "export ")] = true
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return 0, err
		}
	case !errors.Is(err, fs.ErrNotExist):
		return 0, err
	}
	vars := []string{"HUBHOOKS_ADMIN_TOKEN"}
	for _, r := range natsauth.DeployRoles {
		vars = append(vars, natsauth.PasswordEnv(r))
	}
	var b strings.Builder
	for _, v := range vars {
		if !set[v] {
			fmt.Fprintf(&b, "%s=%s\n", v, secret())
		}
	}
	if b.Len() == 0 {
		return 0, nil
	}
	out, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, err
	}
	if _, err := out.WriteString(b.String()); err != nil {
		out.Close()
		return 0, err
	}
	return strings.Count(b.String(), "\n"), out.Close()
}

// secret is 192 random bits in hex, beginning with a letter: nats-server
// reads a variable's value as it would read the config, so a value of
// digits only would become a number.
func secret() string {
	for {
		var b [24]byte
		if _, err := rand.Read(b[:]); err != nil {
			panic("crypto/rand failed: " + err.Error())
		}
		if s := hex.EncodeToString(b[:]); s[0] >= 'a' {
			return s
		}
	}
}

package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/conf"

	"github.com/hubhooks/hubhooks/services/internal/natsauth"
)

// TestAddEnv: the env file gets a random value for each variable it does
// not set (the admin token, each NATS user's password), keeps the others,
// adds nothing the second time; every value is read back by nats-server
// as the same string.
func TestAddEnv(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(path, []byte("HUBHOOKS_ADMIN_TOKEN=mine-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := addEnv(path)
	if err != nil || n != len(natsauth.DeployRoles) {
		t.Fatalf("addEnv: %d added, %v; want %d", n, err, len(natsauth.DeployRoles))
	}
	if n, err := addEnv(path); err != nil || n != 0 {
		t.Fatalf("addEnv again: %d added, %v; want 0", n, err)
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), "HUBHOOKS_ADMIN_TOKEN=mine-0123456789abcdef\n") || strings.Count(string(b), "HUBHOOKS_ADMIN_TOKEN=") != 1 {
		t.Fatalf("the admin token was not kept:\n%s", b)
	}
	hexRe := regexp.MustCompile(`^[a-f][0-9a-f]{47}$`)
	for _, r := range natsauth.DeployRoles {
		m := regexp.MustCompile(`(?m)^` + natsauth.PasswordEnv(r) + `=(.*)$`).FindStringSubmatch(string(b))
		if m == nil || !hexRe.MatchString(m[1]) {
			t.Fatalf("%s: %v, want 192 random bits in hex beginning with a letter", natsauth.PasswordEnv(r), m)
		}
		t.Setenv("PW", m[1])
		got, err := conf.Parse("password: $PW")
		if err != nil || got["password"] != m[1] {
			t.Errorf("nats-server reads %s as %#v (%v)", m[1], got["password"], err)
		}
	}
}

package settings

import (
	"errors"
	"flag"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
)

// binaries are the commands that read settings.
var binaries = []string{"hubd", "configsvc", "expander", "deliverer", "logger", "gateway"}

// helpOf returns what Parse(binary, -h) prints, and checks it answers
// flag.ErrHelp (the binaries exit 0 on it).
func helpOf(t *testing.T, binary string) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := os.Stderr
	os.Stderr = w
	_, perr := Parse(binary, []string{"-h"}, Defaults{})
	os.Stderr = stderr
	_ = w.Close()
	out, _ := io.ReadAll(r)
	if !errors.Is(perr, flag.ErrHelp) {
		t.Fatalf("%s -h: %v, want flag.ErrHelp", binary, perr)
	}
	return string(out)
}

// TestHelpListsTheFlagsThatApply: each binary's -h lists its own flags and
// not those of others, and every flag the table names exists.
func TestHelpListsTheFlagsThatApply(t *testing.T) {
	listed := map[string]bool{}
	for _, b := range binaries {
		help := helpOf(t, b)
		for _, line := range strings.Split(help, "\n") {
			if name, ok := strings.CutPrefix(strings.TrimSpace(line), "-"); ok {
				name, _, _ = strings.Cut(name, " ")
				listed[name] = true
				if !appliesTo(name, b) {
					t.Errorf("%s -h lists -%s, which does not apply to it", b, name)
				}
			}
		}
		for _, want := range []string{"-version", "-http-addr", "-log-level"} {
			if !strings.Contains(help, want+" ") && !strings.Contains(help, want+"\n") {
				t.Errorf("%s -h does not list %s", b, want)
			}
		}
	}
	for name := range only {
		if !listed[name] {
			t.Errorf("the table names -%s, which no binary lists: a typo?", name)
		}
	}
	for name := range listed {
		if _, ok := only[name]; !ok && !slices.Contains(everywhere, name) {
			t.Errorf("-%s is neither in everywhere nor in only: say which binaries it applies to", name)
		}
	}
	hubd, configsvc, gateway := helpOf(t, "hubd"), helpOf(t, "configsvc"), helpOf(t, "gateway")
	for _, c := range []struct {
		help, flag string
		want       bool
	}{
		{hubd, "-nats-listen", true}, {hubd, "-seen-window", true}, {hubd, "-logs-addr", false}, {hubd, "-config-addr", false},
		{configsvc, "-nats-listen", false}, {configsvc, "-seen-window", false}, {configsvc, "-secret-grace", true},
		{gateway, "-redis-url", false}, {gateway, "-logs-addr", true}, {gateway, "-api-addr", true},
	} {
		if got := strings.Contains(c.help, c.flag+" "); got != c.want {
			t.Errorf("lists %s: %v, want %v", c.flag, got, c.want)
		}
	}
}

func TestFlagsThatDoNotApplyAreRefused(t *testing.T) {
	_, err := Parse("configsvc", []string{"-seen-window", "2h"}, Defaults{})
	if err == nil || !strings.Contains(err.Error(), "-seen-window does not apply to configsvc") {
		t.Fatalf("configsvc -seen-window: %v", err)
	}
	if _, err := Parse("hubd", []string{"-seen-window", "2h"}, Defaults{}); err != nil {
		t.Fatalf("hubd -seen-window: %v", err)
	}
	if _, err := Parse("deliverer", []string{"-version"}, Defaults{}); !errors.Is(err, ErrVersion) {
		t.Fatalf("-version: %v, want ErrVersion", err)
	}
}

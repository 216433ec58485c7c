package settings

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// perBinary are the variables whose default differs between binaries: the
// README names each binary's, and the mains pass them in Defaults.
var perBinary = map[string]bool{"HUBHOOKS_NATS_URL": true, "HUBHOOKS_GRPC_ADDR": true, "HUBHOOKS_HTTP_ADDR": true}

var (
	envName  = regexp.MustCompile(`HUBHOOKS_[A-Z0-9_]+`)
	backtick = regexp.MustCompile("`([^`]*)`")
	// helpFlag matches a flag's block in -h: its usage ends with the
	// variable and, unless zero, the default.
	helpFlag = regexp.MustCompile(`\((HUBHOOKS_[A-Z0-9_]+)\)(?: \(default "?([^"\n]*?)"?\))?\n`)
)

// codeDefaults reads each variable's default from every binary's -h, with
// no HUBHOOKS_* variable set so that the defaults are the code's.
func codeDefaults(t *testing.T) map[string]string {
	t.Helper()
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "HUBHOOKS_") {
			t.Setenv(name, "")
		}
	}
	out := map[string]string{}
	for _, b := range binaries {
		for _, m := range helpFlag.FindAllStringSubmatch(helpOf(t, b), -1) {
			out[m[1]] = m[2]
		}
	}
	return out
}

// readmeSettings returns the README's settings table: each row's variables
// and the cell of their defaults.
func readmeSettings(t *testing.T) [][2]string {
	t.Helper()
	b, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Settings\n")
	if !ok {
		t.Fatal(`README.md has no "## Settings" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var rows [][2]string
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if !strings.HasPrefix(line, "| `HUBHOOKS_") || len(cells) < 3 {
			continue
		}
		rows = append(rows, [2]string{cells[0], cells[len(cells)-1]})
	}
	return rows
}

// defaultValues splits a README default cell into one value per variable:
// "`256`, `16`, `64`" → 256, 16, 64; "unset" and "none (…)" → "".
func defaultValues(cell string) []string {
	var out []string
	depth, start := 0, 0
	inCode := false
	add := func(tok string) {
		tok = strings.TrimSpace(tok)
		if m := backtick.FindStringSubmatch(tok); m != nil && strings.HasPrefix(tok, "`") {
			out = append(out, m[1])
		} else {
			out = append(out, "") // unset, none, generated: no default value
		}
	}
	for i, r := range cell {
		switch {
		case r == '`':
			inCode = !inCode
		case r == '(' && !inCode:
			depth++
		case r == ')' && !inCode:
			depth--
		case r == ',' && !inCode && depth == 0:
			add(cell[start:i])
			start = i + 1
		}
	}
	add(cell[start:])
	return out
}

// sameDefault compares the README's value with the code's, as -h prints
// it (zero values are not printed; durations in Go's long form).
func sameDefault(readme, code string) bool {
	if readme == code {
		return true
	}
	if code == "" {
		return readme == "0" || readme == "false"
	}
	r, err1 := time.ParseDuration(readme)
	c, err2 := time.ParseDuration(code)
	return err1 == nil && err2 == nil && r == c
}

// TestReadmeSettingsAreTheCode holds the README's settings table to the
// code: every variable a binary reads is listed, nothing else is, and each
// default shown is the one the binaries use (the code is the one place).
func TestReadmeSettingsAreTheCode(t *testing.T) {
	code := codeDefaults(t)
	listed := map[string]bool{}
	for _, row := range readmeSettings(t) {
		vars := envName.FindAllString(row[0], -1)
		vals := defaultValues(row[1])
		if len(vals) == 1 && len(vars) > 1 && vals[0] == "" {
			vals = make([]string, len(vars)) // "unset" for all of them
		}
		for i, v := range vars {
			listed[v] = true
			def, ok := code[v]
			switch {
			case !ok:
				t.Errorf("README lists %s, which no binary reads", v)
			case perBinary[v]:
			case len(vals) != len(vars):
				t.Errorf("README: the default cell %q does not give one value for each of %v", row[1], vars)
			case !sameDefault(vals[i], def):
				t.Errorf("README: %s defaults to %q, the code to %q", v, vals[i], def)
			}
		}
	}
	for v := range code {
		if !listed[v] {
			t.Errorf("%s is read by a binary but not in README's settings table", v)
		}
	}
}

func TestDefaultValues(t *testing.T) {
	for cell, want := range map[string][]string{
		"`256`, `16`, `64`":           {"256", "16", "64"},
		"unset":                       {""},
		"`0s,5s,5m`":                  {"0s,5s,5m"},
		"none (`make run`: loopback)": {""},
		"unset, `false`":              {"", "false"},
		"`168h`, `100000`, `536870912` (512 MiB)":    {"168h", "100000", "536870912"},
		"unset (other services: `nats://127.0.0.1`)": {""},
		"hubd 7080, configsvc 7081 (on 127.0.0.1)":   {"", ""},
		"`1h`": {"1h"},
	} {
		if got := defaultValues(cell); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("defaultValues(%q) = %q, want %q", cell, got, want)
		}
	}
}

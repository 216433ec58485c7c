package e2e_test

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	composetypes "github.com/compose-spec/compose-go/v2/types"

	"github.com/hubhooks/hubhooks/services/internal/natsauth"
)

// repoRoot is the repository's top folder.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(filepath.Dir(file)))
}

// composeEnv is a valid environment for loading the compose files: the
// admin token and a password for each NATS user.
var composeEnv = func() map[string]string {
	env := map[string]string{"HUBHOOKS_ADMIN_TOKEN": "compose-test-token-0123456789"}
	for _, r := range natsauth.DeployRoles {
		env[natsauth.PasswordEnv(r)] = "compose-test-" + string(r) + "-0123456789"
	}
	return env
}()

// withEnv is env with the given KEY=VALUE pairs added or replaced.
func withEnv(env map[string]string, kv ...string) map[string]string {
	out := maps.Clone(env)
	for _, p := range kv {
		k, v, _ := strings.Cut(p, "=")
		out[k] = v
	}
	return out
}

// loadCompose loads a compose file of the repository with compose's own
// loader (schema validation, interpolation, merging of anchors) and the
// given environment only (no .env file, not the test's environment).
func loadCompose(file string, env map[string]string) (*composetypes.Project, error) {
	var kv []string
	for k, v := range env {
		kv = append(kv, k+"="+v)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(repoRoot(), file)},
		cli.WithName("hubhooks"), cli.WithWorkingDirectory(repoRoot()), cli.WithEnv(kv))
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(context.Background())
}

// makeBinaries are the BINARIES of the Makefile: what `make build` builds.
func makeBinaries(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(), "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^BINARIES\s*:?=\s*(.+)$`).FindStringSubmatch(string(b))
	if m == nil {
		t.Fatal("Makefile has no BINARIES line")
	}
	return strings.Fields(m[1])
}

// flagInfo is what a binary's -help says about one setting.
type flagInfo struct{ env, def string }

var (
	helpEnvRe     = regexp.MustCompile(`\((HUBHOOKS_[A-Z0-9_]+)\)`)
	helpDefaultRe = regexp.MustCompile(`\(default "?([^")]*)"?\)`)
)

// settingsOf runs `<binary> -help` and returns its settings by
// environment variable: the variables a binary reads are the ones its
// flags name.
func settingsOf(t *testing.T, binary string) map[string]flagInfo {
	t.Helper()
	out, _ := exec.Command(binary, "-help").CombinedOutput()
	got := map[string]flagInfo{}
	lines := strings.Split(string(out), "\n")
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "  -") || i+1 >= len(lines) {
			continue
		}
		usage := lines[i+1]
		if m := helpEnvRe.FindStringSubmatch(usage); m != nil {
			fi := flagInfo{env: m[1]}
			if d := helpDefaultRe.FindStringSubmatch(usage); d != nil {
				fi.def = d[1]
			}
			got[m[1]] = fi
		}
	}
	if len(got) == 0 {
		t.Fatalf("%s -help names no HUBHOOKS_ variable:\n%s", binary, out)
	}
	return got
}

func portOf(t *testing.T, hostport string) uint32 {
	t.Helper()
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatalf("address %q: %v", hostport, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("address %q: %v", hostport, err)
	}
	return uint32(n)
}

// TestComposeRefusesWithoutAdminToken: the compose file ships no usable
// admin token; loading it without one fails with a message saying how.
func TestComposeRefusesWithoutAdminToken(t *testing.T) {
	for _, file := range composeFiles {
		_, err := loadCompose(file, nil)
		if err == nil {
			t.Fatalf("%s loaded without HUBHOOKS_ADMIN_TOKEN", file)
		}
		for _, want := range []string{"HUBHOOKS_ADMIN_TOKEN", "openssl rand"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s without a token: error %q does not say %q", file, err, want)
			}
		}
		if _, err := loadCompose(file, composeEnv); err != nil {
			t.Errorf("%s with a token: %v", file, err)
		}
	}
}

// TestComposeRefusesWithoutNATSPasswords: the compose files ship no NATS
// password; loading one without any of them fails, naming the variable and
// the command that makes them.
func TestComposeRefusesWithoutNATSPasswords(t *testing.T) {
	for _, file := range composeFiles {
		for _, r := range natsauth.DeployRoles {
			env := maps.Clone(composeEnv)
			delete(env, natsauth.PasswordEnv(r))
			_, err := loadCompose(file, env)
			if err == nil {
				t.Errorf("%s loaded without %s", file, natsauth.PasswordEnv(r))
				continue
			}
			for _, want := range []string{natsauth.PasswordEnv(r), "gensecrets"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%s without %s: error %q does not say %q", file, natsauth.PasswordEnv(r), err, want)
				}
			}
		}
	}
}

// checkNATSUsers: every NATS server of a compose project runs a
// configuration of deploy/nats, mounted from it, with the password of
// every user of deploy/nats/users.conf; every service on NATS connects as
// the user named after its binary with that user's password, and verifies
// the server with the CA of deploy/nats/tls.
func checkNATSUsers(t *testing.T, p *composetypes.Project, env map[string]string) {
	t.Helper()
	for name, svc := range p.Services {
		switch {
		case strings.HasPrefix(svc.Image, "nats:"):
			conf := natsConfPath(t, svc)
			if filepath.Dir(conf) != filepath.Join(repoRoot(), "deploy", "nats") {
				t.Errorf("%s runs %s, not a configuration of deploy/nats", name, conf)
			}
			for _, r := range natsauth.DeployRoles {
				if v := svc.Environment[natsauth.PasswordEnv(r)]; v == nil || *v != env[natsauth.PasswordEnv(r)] {
					t.Errorf("%s: %s is %v, want the password from the environment", name, natsauth.PasswordEnv(r), v)
				}
			}
		case svc.Build != nil && svc.Environment["HUBHOOKS_NATS_URL"] != nil:
			role := natsauth.Role(svc.Build.Target)
			if u := svc.Environment["HUBHOOKS_NATS_USER"]; u == nil || *u != string(role) {
				t.Errorf("%s: HUBHOOKS_NATS_USER is %v, want %s", name, u, role)
			}
			if pw := svc.Environment["HUBHOOKS_NATS_PASSWORD"]; pw == nil || *pw != env[natsauth.PasswordEnv(role)] {
				t.Errorf("%s: HUBHOOKS_NATS_PASSWORD is not %s", name, natsauth.PasswordEnv(role))
			}
			ca := svc.Environment["HUBHOOKS_NATS_TLS_CA"]
			if ca == nil || hostPath(svc, *ca) != filepath.Join(repoRoot(), "deploy", "nats", "tls", natsauth.TLSCA) {
				t.Errorf("%s: HUBHOOKS_NATS_TLS_CA %v is not deploy/nats/tls/%s mounted", name, ca, natsauth.TLSCA)
			}
		}
	}
}

// hostPath is where a path inside svc's container comes from on the host
// (a bind mount's source), or "" when no bind mount holds it.
func hostPath(svc composetypes.ServiceConfig, path string) string {
	for _, v := range svc.Volumes {
		if v.Type != composetypes.VolumeTypeBind {
			continue
		}
		if path == v.Target {
			return v.Source
		}
		if rest, ok := strings.CutPrefix(path, v.Target+"/"); ok {
			return filepath.Join(v.Source, rest)
		}
	}
	return ""
}

// natsConfPath is the host path of the configuration a NATS service runs
// (its -c argument).
func natsConfPath(t *testing.T, svc composetypes.ServiceConfig) string {
	t.Helper()
	i := slices.Index(svc.Command, "-c")
	if i < 0 || i+1 >= len(svc.Command) {
		t.Fatalf("%s: command %v runs no configuration file (-c)", svc.Name, svc.Command)
	}
	path := hostPath(svc, svc.Command[i+1])
	if path == "" {
		t.Fatalf("%s: %s is not in a mounted directory", svc.Name, svc.Command[i+1])
	}
	return path
}

// TestComposeFiles checks each compose file against the binaries: every
// image built from the Dockerfile is a stage named after a binary of
// `make build`; every HUBHOOKS_ variable given to a service is one that
// binary reads; every address is a service of the file on a port that
// service listens on; every published port is one the service listens on,
// and the hubhooks services listen on their documented default ports.
func TestComposeFiles(t *testing.T) {
	bins := binaries(t)
	stages := dockerfileStages(t)
	known := slices.Clone(makeBinaries(t))
	for _, file := range composeFiles {
		t.Run(file, func(t *testing.T) {
			p, err := loadCompose(file, composeEnv)
			if err != nil {
				t.Fatal(err)
			}
			checkNATSUsers(t, p, composeEnv)
			listens := map[string][]uint32{} // service -> ports it listens on
			for name, svc := range p.Services {
				if svc.Build == nil {
					listens[name] = infraPorts(t, svc)
					continue
				}
				binary := svc.Build.Target
				if svc.Build.Dockerfile != "deploy/docker/Dockerfile" {
					t.Errorf("%s: built from %q, want deploy/docker/Dockerfile", name, svc.Build.Dockerfile)
				}
				if !slices.Contains(known, binary) || !slices.Contains(stages, binary) {
					t.Errorf("%s: build target %q is not both a binary of make build (%v) and a Dockerfile stage (%v)", name, binary, known, stages)
					continue
				}
				settings := settingsOf(t, filepath.Join(bins, binary))
				for k, v := range svc.Environment {
					if !strings.HasPrefix(k, "HUBHOOKS_") {
						continue
					}
					if _, ok := settings[k]; !ok {
						t.Errorf("%s: %s is not a setting of %s", name, k, binary)
					}
					if v == nil {
						t.Errorf("%s: %s has no value", name, k)
					}
				}
				for _, k := range []string{"HUBHOOKS_GRPC_ADDR", "HUBHOOKS_HTTP_ADDR", "HUBHOOKS_API_ADDR"} {
					v := svc.Environment[k]
					if v == nil {
						continue
					}
					port := portOf(t, *v)
					listens[name] = append(listens[name], port)
					if def := settings[k].def; def == "" || portOf(t, def) != port {
						t.Errorf("%s: %s=%s is not on the default port of %s (%q)", name, k, *v, binary, def)
					}
				}
			}
			for name, svc := range p.Services {
				for _, port := range svc.Ports {
					if !slices.Contains(listens[name], port.Target) {
						t.Errorf("%s publishes port %d, where it does not listen (it listens on %v)", name, port.Target, listens[name])
					}
				}
				for k, v := range svc.Environment {
					if v == nil {
						continue
					}
					for _, addr := range addressesIn(k, *v) {
						host, port, err := net.SplitHostPort(addr)
						if err != nil {
							t.Errorf("%s: %s: address %q: %v", name, k, addr, err)
							continue
						}
						n, _ := strconv.Atoi(port)
						if _, ok := p.Services[host]; !ok {
							t.Errorf("%s: %s names %q, not a service of %s", name, k, host, file)
						} else if !slices.Contains(listens[host], uint32(n)) {
							t.Errorf("%s: %s reaches %s on port %s, where it does not listen (%v)", name, k, host, port, listens[host])
						}
					}
				}
			}
		})
	}
}

// addressesIn returns the host:port addresses a hubhooks setting points
// at (URLs, lists, plain addresses); listen addresses are not among them.
func addressesIn(key, value string) []string {
	switch key {
	case "HUBHOOKS_NATS_URL", "HUBHOOKS_REDIS_URL":
		var out []string
		for _, u := range strings.Split(value, ",") {
			if pu, err := url.Parse(strings.TrimSpace(u)); err == nil && pu.Host != "" {
				out = append(out, pu.Host)
			}
		}
		return out
	case "HUBHOOKS_CONFIG_ADDR", "HUBHOOKS_REDIS_SENTINEL_ADDRS", "HUBHOOKS_REDIS_CLUSTER_ADDRS":
		return strings.Split(value, ",")
	}
	return nil
}

// infraPorts are the ports a NATS, Redis or Sentinel container of the
// compose files listens on, read from its command the way the server
// would read it.
func infraPorts(t *testing.T, svc composetypes.ServiceConfig) []uint32 {
	t.Helper()
	cmd := strings.Join(svc.Command, " ")
	switch {
	case strings.HasPrefix(svc.Image, "nats:"):
		// The client, monitoring and cluster ports of its configuration.
		conf, err := os.ReadFile(natsConfPath(t, svc))
		if err != nil {
			t.Fatal(err)
		}
		var ports []uint32
		for _, m := range natsPortRe.FindAllStringSubmatch(string(conf), -1) {
			n, _ := strconv.Atoi(m[1])
			ports = append(ports, uint32(n))
		}
		return ports
	case strings.HasPrefix(svc.Image, "redis:"):
		if strings.Contains(cmd, "--sentinel") {
			return []uint32{26379}
		}
		if m := regexp.MustCompile(`--port (\d+)`).FindStringSubmatch(cmd); m != nil {
			n, _ := strconv.Atoi(m[1])
			return []uint32{uint32(n)}
		}
		return []uint32{6379}
	}
	t.Fatalf("service %s: image %q is neither NATS nor Redis and not built from the Dockerfile", svc.Name, svc.Image)
	return nil
}

// natsPortRe matches the listen and http addresses of a NATS configuration.
var natsPortRe = regexp.MustCompile(`(?m)^\s*(?:listen|http):\s*\S*:(\d+)\s*$`)

var (
	fromRe       = regexp.MustCompile(`(?im)^FROM\s+(\S+)(?:\s+AS\s+(\S+))?\s*$`)
	goImageRe    = regexp.MustCompile(`^golang:(\d+\.\d+\.\d+)(-[a-z0-9]+)?$`)
	goModLineRe  = regexp.MustCompile(`(?m)^go (\d+\.\d+)`)
	entrypointRe = regexp.MustCompile(`(?m)^ENTRYPOINT \["/usr/local/bin/([a-z]+)"\]`)
)

// dockerfileStage is one FROM block of the Dockerfile.
type dockerfileStage struct{ image, name, body string }

func readDockerfile(t *testing.T) []dockerfileStage {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(), "deploy/docker/Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	locs := fromRe.FindAllStringSubmatchIndex(src, -1)
	var out []dockerfileStage
	for i, l := range locs {
		end := len(src)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		st := dockerfileStage{image: src[l[2]:l[3]], body: src[l[1]:end]}
		if l[4] >= 0 {
			st.name = src[l[4]:l[5]]
		}
		out = append(out, st)
	}
	return out
}

// dockerfileStages are the names of the Dockerfile's image stages (those
// with an ENTRYPOINT).
func dockerfileStages(t *testing.T) []string {
	var names []string
	for _, st := range readDockerfile(t) {
		if entrypointRe.MatchString(st.body) {
			names = append(names, st.name)
		}
	}
	return names
}

// TestDockerfile: the build stage is a pinned Go image of the go.mod's
// Go, builds without cgo with `make build`; every image stage is named
// after a binary `make build` makes, copies that binary, runs it as
// non-root on the minimal runtime base.
func TestDockerfile(t *testing.T) {
	stages := readDockerfile(t)
	built := makeBinaries(t)
	gomod, err := os.ReadFile(filepath.Join(repoRoot(), "services/go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := goModLineRe.FindStringSubmatch(string(gomod))[1]
	names := map[string]dockerfileStage{}
	images := 0
	for _, st := range stages {
		names[st.name] = st
		if st.name == "build" {
			m := goImageRe.FindStringSubmatch(st.image)
			if m == nil {
				t.Errorf("build stage image %q: want golang:<major.minor.patch>, a pinned version", st.image)
			} else if !strings.HasPrefix(m[1], goVersion+".") {
				t.Errorf("build stage Go %s, go.mod says go %s", m[1], goVersion)
			}
			for _, want := range []string{"CGO_ENABLED=0", "make build"} {
				if !strings.Contains(st.body, want) {
					t.Errorf("build stage does not %q", want)
				}
			}
			continue
		}
		m := entrypointRe.FindStringSubmatch(st.body)
		if m == nil {
			continue
		}
		images++
		if m[1] != st.name {
			t.Errorf("stage %s runs %s: a stage is named after its binary", st.name, m[1])
		}
		if !slices.Contains(built, st.name) {
			t.Errorf("stage %s: no binary of that name in the Makefile's BINARIES %v", st.name, built)
		}
		if want := fmt.Sprintf("COPY --from=build /src/bin/%s /usr/local/bin/%s", st.name, st.name); !strings.Contains(st.body, want) {
			t.Errorf("stage %s does not %q", st.name, want)
		}
		if st.image != "runtime" {
			t.Errorf("stage %s is FROM %s, want the runtime stage", st.name, st.image)
		}
	}
	rt, ok := names["runtime"]
	if !ok {
		t.Fatal("no runtime stage")
	}
	if !strings.HasPrefix(rt.image, "gcr.io/distroless/static") {
		t.Errorf("runtime base %q: want gcr.io/distroless/static (no shell, no libc)", rt.image)
	}
	if m := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindStringSubmatch(rt.body); m == nil || strings.HasPrefix(m[1], "0") || strings.HasPrefix(m[1], "root") {
		t.Errorf("runtime stage user %v: want a non-root user", m)
	}
	if images == 0 {
		t.Error("the Dockerfile has no image stage")
	}
}

// composeFiles are the compose files of the repository.
var composeFiles = []string{"docker-compose.yml", "docker-compose.cluster.yml"}

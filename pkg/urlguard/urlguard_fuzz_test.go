package urlguard_test

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/net/idna"

	"github.com/hubhooks/hubhooks/pkg/urlguard"
)

var fuzzURLSeeds = []string{
	"http://127.0.0.1/",
	"http://localhost/",
	"http://[::1]/",
	"http://169.254.169.254/latest/meta-data",
	"http://10.0.0.1/",
	"http://0.0.0.0/",
	"http://2130706433/",
	"http://[::ffff:127.0.0.1]/",
	"http://[::ffff:7f00:1]/",
	"http://user:pw@example.com/",
	"http://0177.0.0.1/",
	"http://0x7f000001/",
	"http://127.1/",
	"http://127.0.0.1./",
	"http://%31%32%37.0.0.1/",
	"http://１２７.０.０.１/",
	"http://ｌｏｃａｌｈｏｓｔ/",
	"http://[64:ff9b::a9fe:a9fe]/",
	"http://[2002:7f00:1::]/",
	"https://example.com/hook?x=1",
	"https://EXAMPLE.com.:443/",
	"https://bücher.example/",
	"https://[2606:4700:4700::1111]:8443/a",
}

// FuzzCheckURL: CheckURL never panics, and never accepts a URL whose host,
// read by ParseIP or by net.ParseIP in any of the forms the HTTP client may
// see (as written, without trailing dot, IDNA-mapped), is a blocked
// address. Accepted URLs normalize to a URL that is accepted again and
// normalizes to itself.
func FuzzCheckURL(f *testing.F) {
	for _, s := range fuzzURLSeeds {
		f.Add(s)
	}
	g, err := urlguard.New()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := g.CheckURL(raw)
		if err != nil {
			if u != nil {
				t.Fatalf("CheckURL(%q) returned a URL and %v", raw, err)
			}
			if !errors.Is(err, urlguard.ErrInvalidURL) && !errors.Is(err, urlguard.ErrBlocked) {
				t.Fatalf("CheckURL(%q) error %v wraps neither sentinel", raw, err)
			}
			return
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			t.Fatalf("CheckURL(%q) accepted scheme %q", raw, u.Scheme)
		}
		if u.User != nil {
			t.Fatalf("CheckURL(%q) accepted credentials", raw)
		}
		host := u.Hostname()
		forms := []string{host, strings.TrimSuffix(host, ".")}
		if a, err := idna.Lookup.ToASCII(host); err == nil {
			forms = append(forms, a, strings.TrimSuffix(a, "."))
		}
		for _, h := range forms {
			if ip, ok := urlguard.ParseIP(h); ok {
				if err := g.CheckAddr(ip); err != nil {
					t.Fatalf("CheckURL(%q) accepted host %q = %s: %v", raw, h, ip, err)
				}
			}
			if ip := net.ParseIP(h); ip != nil {
				a, _ := netip.AddrFromSlice(ip)
				if err := g.CheckAddr(a); err != nil {
					t.Fatalf("CheckURL(%q) accepted host %q = %s (net.ParseIP): %v", raw, h, a, err)
				}
			}
			if h == "localhost" || strings.HasSuffix(h, ".localhost") {
				t.Fatalf("CheckURL(%q) accepted localhost name %q", raw, h)
			}
		}
		n := urlguard.Normalize(u)
		u2, err := g.CheckURL(n)
		if err != nil {
			t.Fatalf("Normalize(%q) = %q, refused: %v", raw, n, err)
		}
		if n2 := urlguard.Normalize(u2); n2 != n {
			t.Fatalf("Normalize not idempotent: %q -> %q -> %q", raw, n, n2)
		}
	})
}

// FuzzParseIP: ParseIP never panics, agrees with netip (unmapped, zone
// dropped) for every string netip accepts, and agrees with itself on the
// canonical spelling of what it returns.
func FuzzParseIP(f *testing.F) {
	for _, s := range []string{
		"127.0.0.1", "2130706433", "0177.0.0.1", "0x7f000001", "0x7f.1", "127.1",
		"::1", "::ffff:127.0.0.1", "::ffff:7f00:1", "fe80::1%eth0", "[::1]",
		"4294967295", "08", "1.2.3.4.5", "0x", "64:ff9b::a9fe:a9fe", "1.2.3.4.",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := urlguard.ParseIP(s)
		if want, err := netip.ParseAddr(s); err == nil {
			want = want.Unmap().WithZone("")
			if !ok || got != want {
				t.Fatalf("ParseIP(%q) = %v, %v; netip says %v", s, got, ok, want)
			}
		}
		if !ok {
			return
		}
		if got.Zone() != "" || got.Is4In6() {
			t.Fatalf("ParseIP(%q) = %v: zone or mapped form kept", s, got)
		}
		again, ok := urlguard.ParseIP(got.String())
		if !ok || again != got {
			t.Fatalf("ParseIP(%q) = %v, but ParseIP(%q) = %v, %v", s, got, got.String(), again, ok)
		}
		if got.Is4() {
			// Every IPv4 spelling ParseIP accepts must also be what a
			// resolver would take it for: check the canonical form.
			if ip := net.ParseIP(got.String()); ip == nil || !ip.Equal(got.AsSlice()) {
				t.Fatalf("net.ParseIP disagrees on %v", got)
			}
		}
	})
}

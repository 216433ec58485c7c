package urlguard_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hubhooks/hubhooks/pkg/urlguard"
)

func newGuard(t *testing.T, opts ...urlguard.Option) *urlguard.Guard {
	t.Helper()
	g, err := urlguard.New(opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return g
}

func TestCheckURL(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr error // nil: accepted
	}{
		// The URLs listed in issue 4, "What it must show".
		{"loopback", "http://127.0.0.1/", urlguard.ErrBlocked},
		{"localhost", "http://localhost/", urlguard.ErrBlocked},
		{"ipv6 loopback", "http://[::1]/", urlguard.ErrBlocked},
		{"cloud metadata", "http://169.254.169.254/latest/meta-data", urlguard.ErrBlocked},
		{"private 10/8", "http://10.0.0.1/", urlguard.ErrBlocked},
		{"unspecified", "http://0.0.0.0/", urlguard.ErrBlocked},
		{"decimal loopback", "http://2130706433/", urlguard.ErrBlocked},
		{"ipv4-mapped loopback", "http://[::ffff:127.0.0.1]/", urlguard.ErrBlocked},
		{"credentials", "http://user:pw@example.com/", urlguard.ErrInvalidURL},
		{"credentials and whitespace", "http://user:pw@exa mple.com/", urlguard.ErrInvalidURL},

		// Odd spellings of internal addresses.
		{"octal", "http://0177.0.0.1/", urlguard.ErrBlocked},
		{"hex", "http://0x7f000001/", urlguard.ErrBlocked},
		{"hex dotted", "http://0x7f.0x0.0x0.0x1/", urlguard.ErrBlocked},
		{"short", "http://127.1/", urlguard.ErrBlocked},
		{"short hex", "http://0x7f.1/", urlguard.ErrBlocked},
		{"octal whole", "http://017700000001/", urlguard.ErrBlocked},
		{"three parts", "http://127.0.1/", urlguard.ErrBlocked},
		{"padded octal", "http://00000000177.0.0.1/", urlguard.ErrBlocked},
		{"zero", "http://0/", urlguard.ErrBlocked},
		{"bare 0x", "http://0x/", urlguard.ErrBlocked},
		{"decimal metadata", "http://2852039166/", urlguard.ErrBlocked},
		{"trailing dot ip", "http://127.0.0.1./", urlguard.ErrBlocked},
		{"trailing dot localhost", "http://localhost./", urlguard.ErrBlocked},
		{"upper case localhost", "http://LOCALHOST:8080/", urlguard.ErrBlocked},
		{"subdomain of localhost", "http://api.localhost/", urlguard.ErrBlocked},
		{"localhost.localdomain", "http://localhost.localdomain/", urlguard.ErrBlocked},
		{"ip6-localhost", "http://ip6-localhost/", urlguard.ErrBlocked},
		{"fullwidth localhost", "http://ｌｏｃａｌｈｏｓｔ/", urlguard.ErrBlocked},
		{"fullwidth digits", "http://１２７.０.０.１/", urlguard.ErrBlocked},
		{"ideographic dots", "http://127。0。0。1/", urlguard.ErrBlocked},
		{"mapped hex form", "http://[::ffff:7f00:1]/", urlguard.ErrBlocked},
		{"mapped long form", "http://[0:0:0:0:0:ffff:127.0.0.1]/", urlguard.ErrBlocked},
		{"mapped metadata", "http://[::ffff:a9fe:a9fe]/", urlguard.ErrBlocked},
		{"ipv4-compatible", "http://[::127.0.0.1]/", urlguard.ErrBlocked},
		{"ipv4-translated", "http://[::ffff:0:7f00:1]/", urlguard.ErrBlocked},
		{"ipv6 unspecified", "http://[::]/", urlguard.ErrBlocked},
		{"ipv6 link-local", "http://[fe80::1]/", urlguard.ErrBlocked},
		{"ipv6 unique local", "http://[fd00:ec2::254]/", urlguard.ErrBlocked},
		{"ipv6 multicast", "http://[ff02::1]/", urlguard.ErrBlocked},
		{"ipv6 site-local", "http://[fec0::1]/", urlguard.ErrBlocked},
		{"nat64 metadata", "http://[64:ff9b::a9fe:a9fe]/", urlguard.ErrBlocked},
		{"nat64 loopback", "http://[64:ff9b::127.0.0.1]/", urlguard.ErrBlocked},
		{"local nat64", "http://[64:ff9b:1::808:808]/", urlguard.ErrBlocked},
		{"6to4 loopback", "http://[2002:7f00:1::]/", urlguard.ErrBlocked},
		{"6to4 public", "http://[2002:808:808::1]/", urlguard.ErrBlocked},
		{"teredo", "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", urlguard.ErrBlocked},
		{"ipv6 documentation", "http://[2001:db8::1]/", urlguard.ErrBlocked},
		{"ipv6 unassigned", "http://[4000::1]/", urlguard.ErrBlocked},
		{"cgnat", "http://100.64.0.1/", urlguard.ErrBlocked},
		{"private 172", "http://172.16.0.1/", urlguard.ErrBlocked},
		{"private 192 with port", "http://192.168.1.1:8080/x", urlguard.ErrBlocked},
		{"multicast", "http://224.0.0.1/", urlguard.ErrBlocked},
		{"broadcast", "http://255.255.255.255/", urlguard.ErrBlocked},
		{"reserved", "http://240.0.0.1/", urlguard.ErrBlocked},
		{"benchmarking", "http://198.18.0.1/", urlguard.ErrBlocked},
		{"https loopback", "https://127.0.0.1:443/", urlguard.ErrBlocked},

		// Malformed or not allowed.
		{"empty", "", urlguard.ErrInvalidURL},
		{"percent-encoded host", "http://%31%32%37.0.0.1/", urlguard.ErrInvalidURL},
		{"percent-encoded utf8 host", "http://%E2%91%A0%E2%91%A1%E2%91%A6.0.0.1/", urlguard.ErrInvalidURL},
		{"zone", "http://[fe80::1%25eth0]/", urlguard.ErrInvalidURL},
		{"user only", "http://user@example.com/", urlguard.ErrInvalidURL},
		{"empty userinfo", "http://@example.com/", urlguard.ErrInvalidURL},
		{"at in userinfo trick", "http://example.com@127.0.0.1/", urlguard.ErrInvalidURL},
		{"fragment", "https://example.com/#x", urlguard.ErrInvalidURL},
		{"ftp", "ftp://example.com/", urlguard.ErrInvalidURL},
		{"file", "file:///etc/passwd", urlguard.ErrInvalidURL},
		{"gopher", "gopher://example.com:70/", urlguard.ErrInvalidURL},
		{"javascript", "javascript:alert(1)", urlguard.ErrInvalidURL},
		{"relative", "/hook", urlguard.ErrInvalidURL},
		{"no scheme", "example.com/hook", urlguard.ErrInvalidURL},
		{"opaque", "http:example.com", urlguard.ErrInvalidURL},
		{"no host", "http:///hook", urlguard.ErrInvalidURL},
		{"port only", "http://:80/", urlguard.ErrInvalidURL},
		{"port zero", "http://example.com:0/", urlguard.ErrInvalidURL},
		{"port too big", "http://example.com:65536/", urlguard.ErrInvalidURL},
		{"empty port", "http://example.com:/", urlguard.ErrInvalidURL},
		{"space", "http://exa mple.com/", urlguard.ErrInvalidURL},
		{"tab", "http://example.com/\t", urlguard.ErrInvalidURL},
		{"backslash", `http://example.com\@127.0.0.1/`, urlguard.ErrInvalidURL},
		{"bad char in host", "http://exa$mple.com/", urlguard.ErrInvalidURL},
		{"empty label", "http://a..b/", urlguard.ErrInvalidURL},
		{"two trailing dots", "http://example.com../", urlguard.ErrInvalidURL},
		{"ends in bad number", "http://1.2.3.256/", urlguard.ErrInvalidURL},
		{"five parts", "http://1.2.3.4.5/", urlguard.ErrInvalidURL},
		{"bad octal", "http://08.0.0.1/", urlguard.ErrInvalidURL},
		{"non-canonical public ip", "http://134744072/", urlguard.ErrInvalidURL},
		{"mapped public ip", "http://[::ffff:8.8.8.8]/", urlguard.ErrInvalidURL},
		{"too long", "https://example.com/" + strings.Repeat("a", urlguard.MaxURLLength), urlguard.ErrInvalidURL},
		{"long label", "https://" + strings.Repeat("a", 64) + ".com/", urlguard.ErrInvalidURL},

		// Accepted.
		{"https", "https://example.com/hook", nil},
		{"http with port and query", "http://example.com:8080/x?y=1", nil},
		{"upper case and trailing dot", "HTTPS://EXAMPLE.com./", nil},
		{"public ipv4", "https://8.8.8.8/", nil},
		{"public ipv6", "https://[2606:4700:4700::1111]/", nil},
		{"nat64 public", "http://[64:ff9b::808:808]/", nil},
		{"punycode", "https://xn--bcher-kva.example/", nil},
		{"unicode", "https://bücher.example/", nil},
		{"underscore", "http://receiver_1.example/", nil},
		{"numeric first label", "http://123.example.com/", nil},
		{"letters in last label", "http://1e100.net/", nil},
		{"name resolving later", "http://169.254.169.254.nip.io/", nil},
		{"no path", "https://example.com", nil},
	}
	g := newGuard(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := g.CheckURL(tt.in)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("CheckURL(%q) = %v, want accepted", tt.in, err)
				}
				if u == nil || u.Host == "" {
					t.Fatalf("CheckURL(%q) returned %v", tt.in, u)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("CheckURL(%q) = %v, want %v", tt.in, err, tt.wantErr)
			}
			if u != nil {
				t.Fatalf("CheckURL(%q) returned a URL with an error", tt.in)
			}
			if strings.Contains(err.Error(), "pw") {
				t.Fatalf("CheckURL(%q) error echoes the password: %v", tt.in, err)
			}
		})
	}
}

func TestCheckURLHTTPSOnly(t *testing.T) {
	g := newGuard(t, urlguard.WithHTTPSOnly(true))
	if _, err := g.CheckURL("http://example.com/"); !errors.Is(err, urlguard.ErrInvalidURL) {
		t.Fatalf("http with HTTPS only: %v, want ErrInvalidURL", err)
	}
	if _, err := g.CheckURL("https://example.com/"); err != nil {
		t.Fatalf("https with HTTPS only: %v", err)
	}
}

func TestAllowedCIDRs(t *testing.T) {
	tests := []struct {
		name    string
		cidrs   []string
		in      string
		wantErr error
	}{
		{"loopback exempt", []string{"127.0.0.0/8"}, "http://127.0.0.1:8080/", nil},
		{"localhost exempt", []string{"127.0.0.0/8"}, "http://localhost:8080/", nil},
		{"short form exempt but not canonical", []string{"127.0.0.0/8"}, "http://127.1/", urlguard.ErrInvalidURL},
		{"other range still blocked", []string{"127.0.0.0/8"}, "http://10.0.0.1/", urlguard.ErrBlocked},
		{"metadata still blocked", []string{"127.0.0.0/8"}, "http://169.254.169.254/", urlguard.ErrBlocked},
		{"comma list", []string{"10.0.0.0/8, 192.168.0.0/16"}, "http://192.168.1.5/", nil},
		{"single address", []string{"10.1.2.3"}, "http://10.1.2.3/", nil},
		{"single address only", []string{"10.1.2.3"}, "http://10.1.2.4/", urlguard.ErrBlocked},
		{"mapped prefix", []string{"::ffff:127.0.0.0/104"}, "http://127.0.0.1/", nil},
		{"ipv6 loopback", []string{"::1/128"}, "http://[::1]:9000/", nil},
		{"nat64 of exempt v4", []string{"10.0.0.0/8"}, "http://[64:ff9b::a00:1]/", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGuard(t, urlguard.WithAllowedCIDRs(tt.cidrs...))
			_, err := g.CheckURL(tt.in)
			if tt.wantErr == nil && err != nil {
				t.Fatalf("CheckURL(%q) = %v, want accepted", tt.in, err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("CheckURL(%q) = %v, want %v", tt.in, err, tt.wantErr)
			}
		})
	}
}

func TestNewRejectsBadCIDR(t *testing.T) {
	for _, c := range []string{"10.0.0.0/33", "not-a-cidr", "10.0.0.0/8,bogus"} {
		if _, err := urlguard.New(urlguard.WithAllowedCIDRs(c)); err == nil {
			t.Errorf("WithAllowedCIDRs(%q) accepted", c)
		}
	}
	if _, err := urlguard.New(nil); err == nil {
		t.Error("New(nil option) accepted")
	}
	if _, err := urlguard.New(urlguard.WithAllowedCIDRs("", " ")); err != nil {
		t.Errorf("empty entries: %v", err)
	}
}

func TestParseIP(t *testing.T) {
	tests := []struct {
		in     string
		want   string // "" means not an IP
		wantOK bool
	}{
		{"127.0.0.1", "127.0.0.1", true},
		{"2130706433", "127.0.0.1", true},
		{"0177.0.0.1", "127.0.0.1", true},
		{"0x7f000001", "127.0.0.1", true},
		{"0X7F000001", "127.0.0.1", true},
		{"0x7f.1", "127.0.0.1", true},
		{"127.1", "127.0.0.1", true},
		{"127.0.1", "127.0.0.1", true},
		{"127.0.0.1.", "127.0.0.1", true},
		{"[::1]", "::1", true},
		{"::ffff:127.0.0.1", "127.0.0.1", true},
		{"::ffff:7f00:1", "127.0.0.1", true},
		{"fe80::1%eth0", "fe80::1", true},
		{"0", "0.0.0.0", true},
		{"4294967295", "255.255.255.255", true},
		{"4294967296", "", false},
		{"256.0.0.1", "", false},
		{"1.2.3.4.5", "", false},
		{"1.2.65536", "", false},
		{"1.16777216", "", false},
		{"08", "", false},
		{"0xg", "", false},
		{"example.com", "", false},
		{"", "", false},
		{"1..2", "", false},
		{"[::1", "", false},
	}
	for _, tt := range tests {
		got, ok := urlguard.ParseIP(tt.in)
		if ok != tt.wantOK {
			t.Errorf("ParseIP(%q) ok = %v, want %v", tt.in, ok, tt.wantOK)
			continue
		}
		if ok && got.String() != tt.want {
			t.Errorf("ParseIP(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestCheckAddr(t *testing.T) {
	g := newGuard(t)
	tests := []struct {
		in      string
		blocked bool
	}{
		{"127.0.0.1", true},
		{"169.254.169.254", true},
		{"100.127.255.255", true},
		{"100.128.0.0", false},
		{"172.32.0.1", false},
		{"8.8.8.8", false},
		{"::ffff:10.0.0.1", true},
		{"::ffff:8.8.8.8", false},
		{"2606:4700::1", false},
		{"fe80::1%eth0", true},
		{"64:ff9b::808:808", false},
		{"64:ff9b::c0a8:1", true},
	}
	for _, tt := range tests {
		err := g.CheckAddr(netip.MustParseAddr(tt.in))
		if tt.blocked != errors.Is(err, urlguard.ErrBlocked) {
			t.Errorf("CheckAddr(%s) = %v, want blocked %v", tt.in, err, tt.blocked)
		}
	}
	if err := g.CheckAddr(netip.Addr{}); !errors.Is(err, urlguard.ErrBlocked) {
		t.Errorf("CheckAddr(zero) = %v, want blocked", err)
	}
}

func TestControl(t *testing.T) {
	g := newGuard(t)
	tests := []struct {
		network, address string
		blocked          bool
	}{
		{"tcp", "127.0.0.1:80", true},
		{"tcp4", "10.0.0.1:443", true},
		{"tcp6", "[::1]:80", true},
		{"tcp6", "[::ffff:127.0.0.1]:80", true},
		{"tcp", "8.8.8.8:443", false},
		{"tcp6", "[2606:4700::1]:443", false},
		{"udp", "8.8.8.8:53", true},
		{"tcp", "example.com:80", true},
		{"tcp", "garbage", true},
	}
	for _, tt := range tests {
		err := g.Control(tt.network, tt.address, nil)
		if tt.blocked != errors.Is(err, urlguard.ErrBlocked) {
			t.Errorf("Control(%s, %s) = %v, want blocked %v", tt.network, tt.address, err, tt.blocked)
		}
	}
}

// TestDialTime dials a host name that resolves to 127.0.0.1 through a
// net.Dialer whose Control is the guard: refused by default, allowed when
// 127.0.0.0/8 is exempt.
func TestDialTime(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(lis.Addr().String())
	target := net.JoinHostPort("localhost", port)

	dial := func(g *urlguard.Guard) error {
		d := net.Dialer{Control: g.Control, Timeout: 5 * time.Second}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := d.DialContext(ctx, "tcp", target)
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(newGuard(t)); !errors.Is(err, urlguard.ErrBlocked) {
		t.Fatalf("dial %s with default guard: %v, want ErrBlocked", target, err)
	}
	if err := dial(newGuard(t, urlguard.WithAllowedCIDRs("127.0.0.0/8"))); err != nil {
		t.Fatalf("dial %s with 127.0.0.0/8 exempt: %v", target, err)
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"HTTPS://Example.COM:443/Hook", "https://example.com/Hook"},
		{"http://example.com:80", "http://example.com/"},
		{"http://example.com:443/", "http://example.com:443/"},
		{"https://example.com./a?b=1", "https://example.com/a?b=1"},
		{"https://example.com:08443/", "https://example.com:8443/"},
		{"https://bücher.example/", "https://xn--bcher-kva.example/"},
		{"https://[2606:4700:4700:0::1111]:443/", "https://[2606:4700:4700::1111]/"},
		{"https://example.com/a%2Fb", "https://example.com/a%2Fb"},
		{"https://example.com/?", "https://example.com/?"},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.in)
		if err != nil {
			t.Fatalf("parse %q: %v", tt.in, err)
		}
		if got := urlguard.Normalize(u); got != tt.want {
			t.Errorf("Normalize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := urlguard.Normalize(nil); got != "" {
		t.Errorf("Normalize(nil) = %q", got)
	}
}

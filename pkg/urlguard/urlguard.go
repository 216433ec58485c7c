// Package urlguard decides which callback URLs hubhooks may call: it refuses
// malformed URLs, credentials in URLs, non-http(s) schemes, and addresses
// that reach inside the network (loopback, private, link-local, CGNAT,
// multicast, unspecified, reserved), IPv4 and IPv6 alike. URLs are checked
// when they are added and again at dial time for every attempt, because DNS
// can change between the two.
package urlguard

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// Errors wrapped by every refusal.
var (
	// ErrInvalidURL: the URL is not an absolute http(s) URL hubhooks accepts.
	ErrInvalidURL = errors.New("invalid callback url")
	// ErrBlocked: the URL or the address it resolves to is not allowed.
	ErrBlocked = errors.New("callback address not allowed")
)

// MaxURLLength bounds callback URLs.
const MaxURLLength = 2048

// Guard checks URLs and dialled addresses. It is safe for concurrent use.
type Guard struct {
	allowed   []netip.Prefix
	httpsOnly bool
}

// Option configures a Guard.
type Option func(*Guard) error

// WithAllowedCIDRs exempts address ranges from the guard, e.g.
// "127.0.0.0/8" for local testing.
func WithAllowedCIDRs(cidrs ...string) Option {
	return func(g *Guard) error {
		for _, c := range cidrs {
			c = strings.TrimSpace(c)
			if c == "" {
				continue
			}
			p, err := netip.ParsePrefix(c)
			if err != nil {
				return fmt.Errorf("allowed cidr %q: %w", c, err)
			}
			g.allowed = append(g.allowed, p.Masked())
		}
		return nil
	}
}

// WithHTTPSOnly refuses plain-http URLs.
func WithHTTPSOnly(on bool) Option {
	return func(g *Guard) error { g.httpsOnly = on; return nil }
}

// New returns a Guard.
func New(opts ...Option) (*Guard, error) {
	g := &Guard{}
	for _, o := range opts {
		if err := o(g); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// CheckURL validates raw and returns it parsed. Host names are checked
// against well-known local names here; what they resolve to is checked at
// dial time by Control.
func (g *Guard) CheckURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, fmt.Errorf("%w: url is required", ErrInvalidURL)
	}
	if len(raw) > MaxURLLength {
		return nil, fmt.Errorf("%w: longer than %d characters", ErrInvalidURL, MaxURLLength)
	}
	if strings.ContainsAny(raw, " \t\r\n\\") {
		return nil, fmt.Errorf("%w: %q contains whitespace or a backslash", ErrInvalidURL, raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidURL, err)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if g.httpsOnly {
			return nil, fmt.Errorf("%w: %q: only https URLs are allowed (HUBHOOKS_HTTPS_ONLY)", ErrInvalidURL, raw)
		}
	default:
		return nil, fmt.Errorf("%w: %q: must be an absolute http or https URL", ErrInvalidURL, raw)
	}
	if u.Opaque != "" || u.Host == "" {
		return nil, fmt.Errorf("%w: %q has no host", ErrInvalidURL, raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%w: %q: credentials in URLs are not allowed; authenticate with the webhook secret", ErrInvalidURL, raw)
	}
	if u.Fragment != "" {
		return nil, fmt.Errorf("%w: %q: fragments are not allowed", ErrInvalidURL, raw)
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if host == "" {
		return nil, fmt.Errorf("%w: %q has no host", ErrInvalidURL, raw)
	}
	if p := u.Port(); p != "" {
		var n int
		if _, err := fmt.Sscanf(p, "%d", &n); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%w: %q: bad port %q", ErrInvalidURL, raw, p)
		}
	}
	if ip, ok := ParseIP(host); ok {
		if err := g.CheckAddr(ip); err != nil {
			return nil, fmt.Errorf("%q: %w", raw, err)
		}
		return u, nil
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		if err := g.CheckAddr(netip.MustParseAddr("127.0.0.1")); err != nil {
			return nil, fmt.Errorf("%q: host %q is loopback: %w", raw, host, err)
		}
	}
	return u, nil
}

// ParseIP parses host as an IP address in any spelling a resolver or browser
// would accept: dotted quads, IPv6 (with or without brackets, IPv4-mapped),
// and the legacy decimal, octal, hex and short forms of IPv4 such as
// 2130706433, 0177.0.0.1, 0x7f.1 and 127.1.
func ParseIP(host string) (netip.Addr, bool) {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i]
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap(), true
	}
	return parseLegacyIPv4(host)
}

func parseLegacyIPv4(s string) (netip.Addr, bool) {
	if s == "" || strings.Count(s, ".") > 3 {
		return netip.Addr{}, false
	}
	parts := strings.Split(s, ".")
	nums := make([]uint64, len(parts))
	for i, p := range parts {
		n, ok := parseNum(p)
		if !ok {
			return netip.Addr{}, false
		}
		nums[i] = n
	}
	var v uint64
	switch len(nums) {
	case 1:
		if nums[0] > 0xffffffff {
			return netip.Addr{}, false
		}
		v = nums[0]
	case 2:
		if nums[0] > 0xff || nums[1] > 0xffffff {
			return netip.Addr{}, false
		}
		v = nums[0]<<24 | nums[1]
	case 3:
		if nums[0] > 0xff || nums[1] > 0xff || nums[2] > 0xffff {
			return netip.Addr{}, false
		}
		v = nums[0]<<24 | nums[1]<<16 | nums[2]
	case 4:
		for _, n := range nums {
			if n > 0xff {
				return netip.Addr{}, false
			}
		}
		v = nums[0]<<24 | nums[1]<<16 | nums[2]<<8 | nums[3]
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

func parseNum(p string) (uint64, bool) {
	if p == "" {
		return 0, false
	}
	base := 10
	switch {
	case strings.HasPrefix(p, "0x") || strings.HasPrefix(p, "0X"):
		base, p = 16, p[2:]
		if p == "" {
			return 0, true
		}
	case len(p) > 1 && p[0] == '0':
		base, p = 8, p[1:]
	}
	var n uint64
	for _, c := range p {
		var d uint64
		switch {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case c >= 'a' && c <= 'f':
			d = uint64(c-'a') + 10
		case c >= 'A' && c <= 'F':
			d = uint64(c-'A') + 10
		default:
			return 0, false
		}
		if d >= uint64(base) {
			return 0, false
		}
		n = n*uint64(base) + d
		if n > 0xffffffff {
			return 0, false
		}
	}
	return n, true
}

var blocked = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
		"172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
		"198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
		"255.255.255.255/32",
		"::/128", "::1/128", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64",
		"2001::/23", "2001:db8::/32", "2002::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// CheckAddr refuses internal and reserved addresses unless exempt.
func (g *Guard) CheckAddr(ip netip.Addr) error {
	ip = ip.Unmap().WithZone("")
	if g.exempt(ip) {
		return nil
	}
	for _, p := range blocked {
		if p.Contains(ip) {
			return fmt.Errorf("%w: %s is in reserved range %s (exempt ranges with HUBHOOKS_ALLOWED_CIDRS)", ErrBlocked, ip, p)
		}
	}
	return nil
}

func (g *Guard) exempt(ip netip.Addr) bool {
	for _, p := range g.allowed {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Control is a net.Dialer Control function: it checks the address actually
// dialled, after DNS resolution, so a name that resolves to an internal
// address is refused at dial time.
func (g *Guard) Control(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBlocked, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("%w: dialled address %q is not an IP", ErrBlocked, host)
	}
	return g.CheckAddr(ip)
}

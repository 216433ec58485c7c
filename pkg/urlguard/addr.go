package urlguard

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
)

// ParseIP parses host as an IP address in any spelling a resolver or browser
// would accept: dotted quads, IPv6 (with or without brackets and zone), and
// the legacy decimal, octal, hex and short forms of IPv4 such as 2130706433,
// 0177.0.0.1, 0x7f.1 and 127.1, with or without one trailing dot.
// IPv4-mapped IPv6 addresses are returned as IPv4 (ParseIP("::ffff:7f00:1")
// is 127.0.0.1); zones are dropped.
func ParseIP(host string) (netip.Addr, bool) {
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i]
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap(), true
	}
	if strings.Contains(host, ":") {
		return netip.Addr{}, false
	}
	return parseLegacyIPv4(strings.TrimSuffix(host, "."))
}

// parseLegacyIPv4 parses the inet_aton forms: a, a.b, a.b.c and a.b.c.d,
// each part decimal, octal (leading 0) or hex (leading 0x), the last part
// filling the remaining bytes.
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
	// The leading parts are one byte each; the last fills what is left.
	for _, n := range nums[:len(nums)-1] {
		if n > 0xff {
			return netip.Addr{}, false
		}
	}
	lastBits := 8 * uint(5-len(nums))
	last := nums[len(nums)-1]
	if last >= 1<<lastBits {
		return netip.Addr{}, false
	}
	var v uint64
	for i, n := range nums[:len(nums)-1] {
		v |= n << (24 - 8*uint(i))
	}
	v |= last
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

func parseNum(p string) (uint64, bool) {
	if p == "" {
		return 0, false
	}
	base := uint64(10)
	switch {
	case len(p) >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'):
		base, p = 16, p[2:]
		if p == "" {
			return 0, true // "0x" is 0, as in WHATWG URL and inet_aton
		}
	case len(p) > 1 && p[0] == '0':
		base, p = 8, p[1:]
	}
	var n uint64
	for i := 0; i < len(p); i++ {
		c := p[i]
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
		if d >= base {
			return 0, false
		}
		n = n*base + d
		if n > 0xffffffff {
			return 0, false
		}
	}
	return n, true
}

type namedPrefix struct {
	prefix netip.Prefix
	name   string
}

func prefixes(pairs ...string) []namedPrefix {
	out := make([]namedPrefix, 0, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, namedPrefix{netip.MustParsePrefix(pairs[i]), pairs[i+1]})
	}
	return out
}

// blocked4 is the IANA IPv4 special-purpose registry minus the few ranges
// that are globally reachable services (AS112, AMT).
var blocked4 = prefixes(
	"0.0.0.0/8", "unspecified (this network)",
	"10.0.0.0/8", "private",
	"100.64.0.0/10", "carrier-grade NAT",
	"127.0.0.0/8", "loopback",
	"169.254.0.0/16", "link-local (cloud metadata)",
	"172.16.0.0/12", "private",
	"192.0.0.0/24", "IETF protocol assignments",
	"192.0.2.0/24", "documentation",
	"192.88.99.0/24", "6to4 relay anycast",
	"192.168.0.0/16", "private",
	"198.18.0.0/15", "benchmarking",
	"198.51.100.0/24", "documentation",
	"203.0.113.0/24", "documentation",
	"224.0.0.0/4", "multicast",
	"240.0.0.0/4", "reserved",
	"255.255.255.255/32", "broadcast",
)

// nat64 is the well-known NAT64 prefix (RFC 6052): the last 32 bits are an
// IPv4 address, checked like one, so IPv6-only networks with DNS64 work.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// globalUnicast6 is the only IPv6 block hubhooks dials (besides nat64).
var globalUnicast6 = netip.MustParsePrefix("2000::/3")

// blocked6 names the IPv6 special-purpose ranges for error messages. Those
// outside 2000::/3 would be refused anyway.
var blocked6 = prefixes(
	"::1/128", "loopback",
	"::/128", "unspecified",
	"::/96", "IPv4-compatible (deprecated)",
	"::ffff:0:0:0/96", "IPv4-translated",
	"64:ff9b:1::/48", "local-use NAT64",
	"100::/64", "discard-only",
	"2001::/32", "Teredo",
	"2001::/23", "IETF protocol assignments",
	"2001:db8::/32", "documentation",
	"2002::/16", "6to4",
	"3fff::/20", "documentation",
	"5f00::/16", "segment routing",
	"fc00::/7", "unique local (private)",
	"fe80::/10", "link-local",
	"fec0::/10", "site-local (deprecated)",
	"ff00::/8", "multicast",
)

// CheckAddr refuses internal and reserved addresses unless exempt by
// WithAllowedCIDRs. IPv4-mapped IPv6 addresses are checked as IPv4, NAT64
// addresses by the IPv4 address they embed; 6to4 and Teredo, which can
// embed any IPv4 address, are refused outright. Refusals wrap ErrBlocked.
func (g *Guard) CheckAddr(ip netip.Addr) error {
	if !ip.IsValid() {
		return fmt.Errorf("%w: no address", ErrBlocked)
	}
	ip = ip.WithZone("").Unmap()
	if g.exempt(ip) {
		return nil
	}
	if ip.Is4() {
		for _, p := range blocked4 {
			if p.prefix.Contains(ip) {
				return refused(ip, p)
			}
		}
		return nil
	}
	if nat64.Contains(ip) {
		b := ip.As16()
		v4 := netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
		if err := g.CheckAddr(v4); err != nil {
			return fmt.Errorf("NAT64 address %s embeds %s: %w", ip, v4, err)
		}
		return nil
	}
	for _, p := range blocked6 {
		if p.prefix.Contains(ip) {
			return refused(ip, p)
		}
	}
	if !globalUnicast6.Contains(ip) {
		return refused(ip, namedPrefix{globalUnicast6, "outside global unicast"})
	}
	return nil
}

func refused(ip netip.Addr, p namedPrefix) error {
	if p.name == "outside global unicast" {
		return fmt.Errorf("%w: %s is outside IPv6 global unicast %s (exempt ranges with HUBHOOKS_ALLOWED_CIDRS)", ErrBlocked, ip, p.prefix)
	}
	return fmt.Errorf("%w: %s is in %s range %s (exempt ranges with HUBHOOKS_ALLOWED_CIDRS)", ErrBlocked, ip, p.name, p.prefix)
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
// address is refused at dial time, for every connection. Only TCP is
// allowed. Refusals wrap ErrBlocked.
func (g *Guard) Control(network, address string, _ syscall.RawConn) error {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return fmt.Errorf("%w: network %q is not allowed", ErrBlocked, network)
	}
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

package urlguard

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/idna"
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

// maxHostLength is the longest DNS name (without the trailing dot).
const maxHostLength = 253

// Guard checks URLs and dialled addresses. It is safe for concurrent use.
type Guard struct {
	allowed   []netip.Prefix
	httpsOnly bool
}

// Option configures a Guard.
type Option func(*Guard) error

// WithAllowedCIDRs exempts address ranges from the guard, e.g.
// "127.0.0.0/8" for local testing. Each argument may hold several ranges
// separated by commas (the HUBHOOKS_ALLOWED_CIDRS format); a bare address
// means that address alone. Empty entries are ignored; anything else that
// does not parse is an error.
func WithAllowedCIDRs(cidrs ...string) Option {
	return func(g *Guard) error {
		for _, arg := range cidrs {
			for _, c := range strings.Split(arg, ",") {
				c = strings.TrimSpace(c)
				if c == "" {
					continue
				}
				p, err := parsePrefix(c)
				if err != nil {
					return fmt.Errorf("allowed cidr %q: %w", c, err)
				}
				g.allowed = append(g.allowed, p)
			}
		}
		return nil
	}
}

func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		// ::ffff:127.0.0.0/104 means 127.0.0.0/8: addresses are unmapped
		// before they are compared.
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// WithHTTPSOnly refuses plain-http URLs (HUBHOOKS_HTTPS_ONLY).
func WithHTTPSOnly(on bool) Option {
	return func(g *Guard) error { g.httpsOnly = on; return nil }
}

// New returns a Guard configured by opts.
func New(opts ...Option) (*Guard, error) {
	g := &Guard{}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("urlguard: nil option")
		}
		if err := o(g); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// CheckURL validates raw and returns it parsed, unchanged. IP literals are
// checked here, in every spelling; host names are checked against the
// localhost names here and, for what they resolve to, at dial time by
// Control. Refusals wrap ErrInvalidURL (not a URL hubhooks accepts) or
// ErrBlocked (an internal address).
func (g *Guard) CheckURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, fmt.Errorf("%w: url is required", ErrInvalidURL)
	}
	if len(raw) > MaxURLLength {
		return nil, fmt.Errorf("%w: longer than %d characters", ErrInvalidURL, MaxURLLength)
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= ' ' || c == 0x7f || c == '\\' {
			return nil, fmt.Errorf("%w: %q contains whitespace, a control character or a backslash", ErrInvalidURL, redact(raw))
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%w: %q: %v", ErrInvalidURL, redact(raw), err)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if g.httpsOnly {
			return nil, fmt.Errorf("%w: %q: only https URLs are allowed (HUBHOOKS_HTTPS_ONLY)", ErrInvalidURL, redact(raw))
		}
	default:
		return nil, fmt.Errorf("%w: %q: must be an absolute http or https URL", ErrInvalidURL, redact(raw))
	}
	if u.Opaque != "" || u.Host == "" {
		return nil, fmt.Errorf("%w: %q has no host; write it as %s://host/path", ErrInvalidURL, redact(raw), u.Scheme)
	}
	if u.User != nil || strings.Contains(rawAuthority(raw), "@") {
		return nil, fmt.Errorf("%w: %q: credentials in URLs are not allowed; receivers authenticate hubhooks with the webhook secret and signature", ErrInvalidURL, redact(raw))
	}
	if strings.Contains(rawAuthority(raw), "%") {
		return nil, fmt.Errorf("%w: %q: percent-encoded or zoned hosts are not allowed", ErrInvalidURL, redact(raw))
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return nil, fmt.Errorf("%w: %q: fragments are not allowed", ErrInvalidURL, redact(raw))
	}
	if _, err := checkPort(u.Port()); err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrInvalidURL, redact(raw), err)
	}
	if strings.HasSuffix(u.Host, ":") {
		return nil, fmt.Errorf("%w: %q: empty port", ErrInvalidURL, redact(raw))
	}
	host, err := canonicalHost(u.Hostname())
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrInvalidURL, redact(raw), err)
	}
	ip, isIP, canonical, err := hostIP(host)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrInvalidURL, redact(raw), err)
	}
	if isIP {
		if err := g.CheckAddr(ip); err != nil {
			return nil, fmt.Errorf("%q: %w", redact(raw), err)
		}
		if !canonical {
			return nil, fmt.Errorf("%w: %q: write the address as %s", ErrInvalidURL, redact(raw), ip)
		}
		return u, nil
	}
	if lo, ok := localhostAddr(host); ok {
		if err := g.CheckAddr(lo); err != nil {
			return nil, fmt.Errorf("%q: host %q is loopback: %w", redact(raw), host, err)
		}
	}
	return u, nil
}

// Normalize returns the form of a checked URL used to detect duplicates:
// lower-case scheme, the host as it is dialled (lower case, IDNA to ASCII,
// no trailing dot, IP literals in canonical form), the default port (80 for
// http, 443 for https) removed, an empty path written "/", query kept as
// is, fragment dropped. Two URLs with the same Normalize form reach the same
// endpoint. Normalize of a URL CheckURL refused is best effort.
func Normalize(u *url.URL) string {
	if u == nil {
		return ""
	}
	scheme := strings.ToLower(u.Scheme)
	host, err := canonicalHost(u.Hostname())
	if err != nil {
		host = strings.ToLower(u.Hostname())
	} else if ip, isIP, _, err := hostIP(host); err == nil && isIP {
		host = ip.Unmap().String()
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if p := u.Port(); p != "" {
		if n, err := checkPort(p); err == nil {
			p = strconv.Itoa(n)
		}
		if !(scheme == "http" && p == "80") && !(scheme == "https" && p == "443") {
			host += ":" + p
		}
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	s := scheme + "://" + host + path
	if u.RawQuery != "" || u.ForceQuery {
		s += "?" + u.RawQuery
	}
	return s
}

// redact hides user information in raw, so refusals never echo a password.
func redact(raw string) string {
	start := strings.Index(raw, "//")
	if start < 0 {
		return raw
	}
	start += 2
	i := strings.LastIndexByte(rawAuthority(raw), '@')
	if i < 0 {
		return raw
	}
	return raw[:start] + "REDACTED" + raw[start+i:]
}

// rawAuthority returns the authority part of raw as typed (before any
// unescaping): what lies between "//" and the next '/', '?' or '#'.
func rawAuthority(raw string) string {
	i := strings.Index(raw, "//")
	if i < 0 {
		return ""
	}
	a := raw[i+2:]
	if j := strings.IndexAny(a, "/?#"); j >= 0 {
		a = a[:j]
	}
	return a
}

func checkPort(p string) (int, error) {
	if p == "" {
		return 0, nil
	}
	if len(p) > 5 {
		return 0, fmt.Errorf("bad port %q", p)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("bad port %q", p)
	}
	return n, nil
}

// canonicalHost returns host as the HTTP client will resolve it: IPv6
// literals as they are, names mapped to ASCII with IDNA (like net/http),
// lower case, without one trailing dot. Names must be valid DNS names
// (letters, digits, '-' and '_' in labels of 1 to 63 characters).
func canonicalHost(host string) (string, error) {
	if host == "" {
		return "", errors.New("no host")
	}
	if strings.Contains(host, ":") {
		a, err := netip.ParseAddr(host)
		if err != nil || a.Zone() != "" {
			return "", fmt.Errorf("bad IPv6 address %q", host)
		}
		return strings.ToLower(host), nil
	}
	if !isASCII(host) {
		a, err := idna.Lookup.ToASCII(host)
		if err != nil {
			return "", fmt.Errorf("bad international host name %q: %v", host, err)
		}
		host = a
	}
	host = strings.ToLower(host)
	host = strings.TrimSuffix(host, ".")
	if host == "" || len(host) > maxHostLength {
		return "", fmt.Errorf("bad host name length %d", len(host))
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 {
			return "", fmt.Errorf("host %q has an empty or over-long label", host)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "", fmt.Errorf("host %q has character %q; use letters, digits, '-' and '.'", host, c)
			}
		}
	}
	return host, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// hostIP reports whether a canonical host is an IP literal, which address it
// is and whether it is written canonically. Like WHATWG URL parsers, a host
// whose last label is a number must be an IPv4 address: "1.2.3.256" and
// "08.1" are errors, not names.
func hostIP(host string) (ip netip.Addr, isIP, canonical bool, err error) {
	if strings.Contains(host, ":") {
		a, err := netip.ParseAddr(host)
		if err != nil {
			return netip.Addr{}, false, false, fmt.Errorf("bad IPv6 address %q", host)
		}
		return a, true, !a.Is4In6(), nil
	}
	last := host[strings.LastIndexByte(host, '.')+1:]
	if !isNumber(last) {
		return netip.Addr{}, false, false, nil
	}
	a, ok := parseLegacyIPv4(host)
	if !ok {
		return netip.Addr{}, false, false, fmt.Errorf("host %q ends in a number but is not an IPv4 address", host)
	}
	return a, true, a.String() == host, nil
}

// isNumber reports whether a label is decimal digits or "0x" and hex digits.
func isNumber(label string) bool {
	if label == "" {
		return false
	}
	if len(label) >= 2 && label[0] == '0' && (label[1] == 'x' || label[1] == 'X') {
		for i := 2; i < len(label); i++ {
			if !isHex(label[i]) {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(label); i++ {
		if label[i] < '0' || label[i] > '9' {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// localhostAddr returns the loopback address a well-known local name
// resolves to (RFC 6761 and common /etc/hosts entries).
func localhostAddr(host string) (netip.Addr, bool) {
	switch {
	case host == "localhost", strings.HasSuffix(host, ".localhost"), host == "localhost.localdomain":
		return netip.AddrFrom4([4]byte{127, 0, 0, 1}), true
	case host == "ip6-localhost", host == "ip6-loopback":
		return netip.IPv6Loopback(), true
	}
	return netip.Addr{}, false
}

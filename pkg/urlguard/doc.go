// Package urlguard decides which callback URLs hubhooks may call, so that a
// customer typing a URL cannot make hubhooks reach inside its own network
// (server-side request forgery).
//
// A Guard refuses, when a URL is added or a test event is sent (CheckURL):
//   - anything but an absolute http or https URL (https only with
//     WithHTTPSOnly), URLs with credentials (user:pass@), fragments,
//     percent-encoded hosts, whitespace, control characters and backslashes;
//   - host names that are not valid DNS names after IDNA mapping (the same
//     mapping net/http applies before dialling, so "ｌｏｃａｌｈｏｓｔ" and
//     "１２７.０.０.１" are seen as what they will dial);
//   - the localhost names ("localhost", "*.localhost", "localhost.localdomain",
//     "ip6-localhost", "ip6-loopback");
//   - IP literals in internal or reserved ranges (loopback, private,
//     link-local including the 169.254.169.254 cloud metadata address, CGNAT,
//     multicast, broadcast, unspecified, documentation, benchmarking,
//     IPv4-mapped, IPv4-compatible and IPv4-translated IPv6, NAT64 embedding an
//     internal IPv4 address, 6to4, Teredo, unique-local, site-local and every
//     IPv6 address outside global unicast 2000::/3), in any spelling a
//     resolver accepts: decimal (2130706433), octal (0177.0.0.1), hex
//     (0x7f000001), short (127.1), trailing dots, IPv6 forms (::ffff:7f00:1);
//   - public IP literals written in a non-canonical spelling (write 8.8.8.8,
//     not 134744072), so the address checked is the address dialled.
//
// Host names cannot be judged before they are resolved, and DNS can change
// between the time a URL is added and the time it is called. Control, used as
// net.Dialer.Control, checks the address actually dialled, after resolution,
// for every connection; it is the check that cannot be bypassed, CheckURL
// gives the early, friendly error. A dialer that goes through an HTTP proxy
// checks the proxy's address, not the target's: the delivery transport must
// not use a proxy.
//
// The only exemption is WithAllowedCIDRs (HUBHOOKS_ALLOWED_CIDRS), e.g.
// 127.0.0.0/8 for local testing.
package urlguard

package configsvc

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/hubhooks/hubhooks/pkg/urlguard"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// A callback URL as people type it: "example.com", "example.com/hooks" or
// "api.example.com:8443/in" have no scheme and mean https; the stored form
// is urlguard.Normalize's (scheme and host in lower case, default port
// dropped, an empty path as "/"), the one form every comparison of URLs
// uses, so that URLs stored before in another spelling compare equal too.

// hostPort is the start of a scheme-less URL that names a port: "host:443",
// "host:443/path". Without it, "host:443" would parse as the scheme "host".
var hostPort = regexp.MustCompile(`^[^/:?#@]+:[0-9]*(?:[/?#]|$)`)

// schemeStart is the start of a URL that names a scheme.
var schemeStart = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)

// withScheme returns raw with "https://" in front when it names no scheme:
// a bare host, host:port or host/path (user:password@host too, which the
// guard then refuses without echoing the password). A URL that names a
// scheme (any: the guard refuses all but http and https) is returned as it
// is.
func withScheme(raw string) string {
	authority, _, _ := strings.Cut(raw, "/")
	switch {
	case strings.Contains(raw, "://"):
		return raw
	case strings.HasPrefix(raw, "//"):
		return "https:" + raw
	case hostPort.MatchString(raw) || !schemeStart.MatchString(raw) || strings.Contains(authority, "@"):
		return "https://" + raw
	}
	return raw
}

// callbackURL checks raw (trimmed, completed by withScheme) with the URL
// guard and returns its stored form, or an invalid-argument error saying
// why it is refused.
func (s *Service) callbackURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", invalidf("url is required, e.g. https://example.com/hooks (a bare host is taken as https://)")
	}
	u, err := s.guard.CheckURL(withScheme(raw))
	if err != nil {
		return "", invalid(err)
	}
	return urlguard.Normalize(u), nil
}

// comparable is the form raw, a URL as given or as stored, is compared in
// (raw itself when it does not parse).
func comparable(raw string) string {
	u, err := url.Parse(withScheme(strings.TrimSpace(raw)))
	if err != nil {
		return raw
	}
	return urlguard.Normalize(u)
}

// sameURL reports whether stored, a hub's URL, is the URL of comparison
// form key: URLs of the same form reach the same endpoint, so a hub may not
// have both.
func sameURL(stored, key string) bool { return comparable(stored) == key }

func (g *grpcServer) UpdateCallbackUrl(ctx context.Context, req *hubhooksv1.UpdateCallbackUrlRequest) (*hubhooksv1.HubConfig, error) {
	cfg, err := g.svc.updateCallbackURL(ctx, req)
	return cfg, grpcError(err)
}

// updateCallbackURL is UpdateCallbackUrl: the URL of id becomes req.url,
// checked and stored as AddCallbackUrl does. The config's version changes
// like for any other change, and the deliverer sends the URL's pending and
// retrying deliveries to the new address from their next attempt (it POSTs
// to the address the config holds for a job's URL id).
func (s *Service) updateCallbackURL(ctx context.Context, req *hubhooksv1.UpdateCallbackUrlRequest) (*hubhooksv1.HubConfig, error) {
	hub, id := req.GetHubId(), req.GetId()
	if err := validateHub(hub); err != nil {
		return nil, err
	}
	switch {
	case id == "":
		return nil, invalidf("id is required: the id of the callback URL to change (GetHubConfig lists them)")
	case len(id) > maxIDLen:
		return nil, invalidf("id is %d bytes long; at most %d allowed", len(id), maxIDLen)
	}
	stored, err := s.callbackURL(req.GetUrl())
	if err != nil {
		return nil, err
	}
	return s.mutate(ctx, hub, KindURLUpdated, func(next *hubhooksv1.HubConfig, _ time.Time) (bool, error) {
		i := findURL(next, "", id)
		if i < 0 {
			return false, fmt.Errorf("%w: hub %s has no callback URL with id %q; GetHubConfig lists its URLs", ErrURLNotFound, hub, id)
		}
		for j, c := range next.CallbackUrls {
			if j != i && sameURL(c.GetUrl(), stored) {
				return false, fmt.Errorf("%w: hub %s already has %s (id %s)", ErrDuplicateURL, hub, c.GetUrl(), c.GetId())
			}
		}
		if next.CallbackUrls[i].GetUrl() == stored {
			return false, nil
		}
		next.CallbackUrls[i].Url = stored
		return true, nil
	})
}

package webhook

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/hubhooks/hubhooks/pkg/urlguard"
)

// TestClientGuardAtDialTime skips the URL check so that only the dial-time
// Control can refuse: the case of a host name that passed CheckURL but
// resolves (now) to an internal address.
func TestClientGuardAtDialTime(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	g, err := urlguard.New()
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(WithGuard(g))
	if err != nil {
		t.Fatal(err)
	}
	c.guard = nil // only the dialer's Control checks now
	res := c.Send(context.Background(), Request{URL: srv.URL, WebhookID: "msg_1", Body: []byte("{}"), Secrets: []string{NewSecret()}})
	if !errors.Is(res.Err, urlguard.ErrBlocked) {
		t.Fatalf("want ErrBlocked at dial time, got %v", res.Err)
	}
	if hits.Load() != 0 || res.StatusCode != 0 {
		t.Fatal("the receiver was called")
	}
}

// TestURLCacheIsBounded: the cache of checked URLs starts again empty past
// maxCachedURLs, so a stream of distinct URLs cannot grow it without bound.
func TestURLCacheIsBounded(t *testing.T) {
	var c urlCache
	for i := range maxCachedURLs + 10 {
		raw := "https://example.com/" + strconv.Itoa(i)
		c.put(raw, &url.URL{Scheme: "https", Host: "example.com", Path: "/" + strconv.Itoa(i)})
		if u := c.get(raw); u == nil || u.Path != "/"+strconv.Itoa(i) {
			t.Fatalf("get(%s) = %v right after put", raw, u)
		}
	}
	n := 0
	c.m.Range(func(any, any) bool { n++; return true })
	if n > maxCachedURLs || n == 0 {
		t.Fatalf("%d URLs cached, want 1..%d", n, maxCachedURLs)
	}
}

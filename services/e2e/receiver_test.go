package e2e_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/hubhooks/hubhooks/pkg/webhook"
)

// received is one webhook as a receiver saw it.
type received struct {
	Header http.Header
	Body   []byte
	Event  webhook.Event
	At     time.Time
}

// receiver is an HTTP endpoint that records every webhook it gets.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []received
	status int
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	r := &receiver{status: http.StatusOK}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var ev webhook.Event
		_ = json.Unmarshal(body, &ev)
		r.mu.Lock()
		r.got = append(r.got, received{Header: req.Header.Clone(), Body: body, Event: ev, At: time.Now()})
		status := r.status
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) all() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// byDomainEvent returns what arrived for one domain event id.
func (r *receiver) byDomainEvent(id string) []received {
	var out []received
	for _, g := range r.all() {
		if g.Event.DomainEvent.ID == id {
			out = append(out, g)
		}
	}
	return out
}

// readyz reports whether the /readyz of the HTTP address answers 200.
// readyzBody is what addr's /readyz answers, or why it did not.
func readyzBody(addr string) string {
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.Status + " " + string(b)
}

func readyz(addr string) bool {
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"regexp"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// CheckFunc reports whether one dependency is ready; nil means ready.
type CheckFunc func(ctx context.Context) error

// Health collects named readiness checks. Liveness is the process answering.
type Health struct {
	mu     sync.RWMutex
	checks map[string]CheckFunc
}

// NewHealth returns an empty Health.
func NewHealth() *Health { return &Health{checks: map[string]CheckFunc{}} }

// Add registers a readiness check under name.
func (h *Health) Add(name string, fn CheckFunc) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checks[name] = fn
}

// Check runs every check and returns each failure by name.
func (h *Health) Check(ctx context.Context) map[string]string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	failed := map[string]string{}
	for name, fn := range h.checks {
		if err := fn(ctx); err != nil {
			failed[name] = err.Error()
		}
	}
	return failed
}

// NewRegistry returns a Prometheus registry with the Go and process
// collectors. The Go collector adds the scheduler's latencies
// (go_sched_latencies_seconds: how long runnable goroutines waited for a
// CPU), which tell a saturated process from a slow dependency.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/sched/latencies:seconds$`)})),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// HTTPConfig configures the operations HTTP server.
type HTTPConfig struct {
	Addr     string
	Registry *prometheus.Registry
	Health   *Health
	// Pprof mounts /debug/pprof when true.
	Pprof bool
	Log   *slog.Logger
	// Listener, when set, is used instead of listening on Addr.
	Listener net.Listener
}

// ServeHTTP serves /metrics, /healthz (liveness), /readyz (readiness: every
// check passes) and optionally /debug/pprof until ctx ends.
func ServeHTTP(ctx context.Context, cfg HTTPConfig) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{Registry: cfg.Registry}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		failed := cfg.Health.Check(ctx)
		w.Header().Set("Content-Type", "application/json")
		if len(failed) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]any{"status": "not ready", "failed": failed})
			return
		}
		_, _ = w.Write([]byte(`{"status":"ready"}`))
	})
	if cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	lis := cfg.Listener
	if lis == nil {
		var err error
		if lis, err = net.Listen("tcp", cfg.Addr); err != nil {
			return err
		}
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	cfg.Log.Info("operations http listening", "addr", lis.Addr().String(), "pprof", cfg.Pprof)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

package configsvc

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

func TestBrokerDropsSlowWatcherOnly(t *testing.T) {
	b := newBroker(prometheus.NewGauge(prometheus.GaugeOpts{Name: "g"}), prometheus.NewCounterVec(prometheus.CounterOpts{Name: "c"}, []string{"reason"}))
	if _, err := b.add("", 1); status.Code(err) != codes.Unavailable {
		t.Fatalf("add before start = %v, want UNAVAILABLE", err)
	}
	b.start()
	slow, err := b.add("", 1)
	if err != nil {
		t.Fatal(err)
	}
	fast, err := b.add("", 10)
	if err != nil {
		t.Fatal(err)
	}
	other, err := b.add("h2", 1)
	if err != nil {
		t.Fatal(err)
	}
	b.publish([]*hubhooksv1.HubConfig{{HubId: "h1", Version: 1}, {HubId: "h1", Version: 2}})
	select {
	case <-slow.done:
		if status.Code(slow.err) != codes.ResourceExhausted {
			t.Fatalf("slow watcher ended with %v", slow.err)
		}
	default:
		t.Fatal("slow watcher not dropped")
	}
	if len(fast.ch) != 2 {
		t.Fatalf("fast watcher has %d changes, want 2", len(fast.ch))
	}
	if len(other.ch) != 0 {
		t.Fatal("h2 watcher got h1 changes")
	}
	select {
	case <-fast.done:
		t.Fatal("fast watcher dropped")
	case <-other.done:
		t.Fatal("other watcher dropped")
	default:
	}
	b.stop(status.Error(codes.Unavailable, "bye"))
	<-fast.done
	<-other.done
	b.remove(fast) // after drop: no-op
}

package e2e_test

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// tcpBalancer forwards each connection to the first of its backends that
// accepts one, round robin: what a Kubernetes Service or a compose service
// name with several replicas gives the clients of configsvc. A backend that
// dies takes its connections with it; the clients reconnect and land on
// another.
type tcpBalancer struct {
	ln       net.Listener
	backends []string
	mu       sync.Mutex
	next     int
}

func startBalancer(t *testing.T, backends ...string) *tcpBalancer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &tcpBalancer{ln: ln, backends: backends}
	t.Cleanup(func() { ln.Close() })
	go b.serve()
	return b
}

func (b *tcpBalancer) Addr() string { return b.ln.Addr().String() }

func (b *tcpBalancer) serve() {
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		go b.forward(c)
	}
}

func (b *tcpBalancer) forward(c net.Conn) {
	b.mu.Lock()
	start := b.next
	b.next++
	b.mu.Unlock()
	var up net.Conn
	for i := range b.backends {
		addr := b.backends[(start+i)%len(b.backends)]
		conn, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
		if err == nil {
			up = conn
			break
		}
	}
	if up == nil {
		c.Close()
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	c.Close()
	up.Close()
}

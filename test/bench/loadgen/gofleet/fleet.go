package main

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"tailscale.com/net/tsdial"
	"tailscale.com/types/key"
)

// attempts per connection step: a saturated server can miss its handshake deadline, and real clients retry.
const attempts = 5

// target is where nodes dial; the bench restarts the server on another port.
type target struct {
	url       string
	serverKey key.MachinePublic
}

// fleet holds every simulated node by the driver's handle, and counters that outlive the nodes that left.
type fleet struct {
	mu      sync.Mutex
	target  target
	nodes   map[int]*node
	dialers map[string]*tsdial.Dialer
	watches map[string][]*nodeWatch
	// limit bounds dials and registrations in flight, like a fleet coming up behind a NAT would.
	limit chan struct{}

	frames, deltas, bytes, repolls, retries atomic.Int64
}

func newFleet() *fleet {
	return &fleet{nodes: map[int]*node{}, dialers: map[string]*tsdial.Dialer{}, watches: map[string][]*nodeWatch{}, limit: make(chan struct{}, 64)}
}

func (f *fleet) handle(c *command) (map[string]any, error) {
	switch c.Op {
	case "target":
		return nil, f.setTarget(c)
	case "create":
		n := newNode(f, c.H, c.Index, c.Name)
		f.mu.Lock()
		f.nodes[c.H] = n
		f.mu.Unlock()
		return map[string]any{"nodeKey": n.nodeKey.String()}, nil
	case "watch":
		return nil, f.watch(c.Token, c.Groups)
	case "arrivals":
		return map[string]any{"nodes": f.arrivals(c.Token, c.After)}, nil
	case "wait":
		return map[string]any{"complete": f.wait(c.Token, c.Until)}, nil
	case "drop":
		f.dropFrom(c.Token, c.Keys, c.IDs)
		return nil, nil
	case "unwatch":
		f.unwatch(c.Token)
		return nil, nil
	case "stats":
		return map[string]any{"nodes": f.stats()}, nil
	case "totals":
		return f.totals(), nil
	}
	n, err := f.node(c.H)
	if err != nil {
		return nil, err
	}
	switch c.Op {
	case "join":
		if err := f.join(n, c.AuthKey); err != nil {
			return nil, err
		}
		return n.stats(), nil
	case "reconnect":
		if err := f.reconnect(n); err != nil {
			return nil, err
		}
		return n.stats(), nil
	case "leave":
		f.mu.Lock()
		delete(f.nodes, n.h)
		f.mu.Unlock()
		defer n.close()
		return nil, n.logout()
	case "lite":
		return nil, n.liteUpdate()
	}
	return nil, fmt.Errorf("unknown op %q", c.Op)
}

func (f *fleet) setTarget(c *command) error {
	var k key.MachinePublic
	if err := k.UnmarshalText([]byte(c.ServerKey)); err != nil {
		return fmt.Errorf("serverKey: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.target = target{url: c.URL, serverKey: k}
	if c.Concurrency > 0 {
		f.limit = make(chan struct{}, c.Concurrency)
	}
	return nil
}

func (f *fleet) node(h int) (*node, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.nodes[h]
	if n == nil {
		return nil, fmt.Errorf("no node %d", h)
	}
	return n, nil
}

// dialer dials from the node's loopback source address: the server caps connections per source address
// (guard/limits.ts, 256), so 100 nodes share each of 127.0.1.0/24's addresses (Linux routes all of 127/8).
func (f *fleet) dialer(index int) *tsdial.Dialer {
	ip := fmt.Sprintf("127.0.1.%d", 1+(index/100)%254)
	f.mu.Lock()
	defer f.mu.Unlock()
	if d := f.dialers[ip]; d != nil {
		return d
	}
	nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	d := tsdial.NewFromFuncForDebug(discard, nd.DialContext)
	f.dialers[ip] = d
	return d
}

func discard(string, ...any) {}

// withRetry runs a connection step under the fleet's limit, starting over with a fresh connection after a
// back-off when it fails.
func (f *fleet) withRetry(n *node, step func() error) error {
	for i := 1; ; i++ {
		f.mu.Lock()
		limit := f.limit
		f.mu.Unlock()
		limit <- struct{}{}
		err := step()
		<-limit
		if err == nil {
			return nil
		}
		n.close()
		if i >= attempts {
			return err
		}
		f.retries.Add(1)
		time.Sleep(time.Duration(250<<i) * time.Millisecond)
	}
}

func (f *fleet) currentTarget() target {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.target
}

// join registers a node (the limit covers the Noise dial and the registration) and opens its map stream;
// a node that never gets its first map is dropped.
func (f *fleet) join(n *node, authKey string) error {
	err := f.withRetry(n, func() error {
		if err := n.connect(f.currentTarget()); err != nil {
			return err
		}
		return n.register(authKey)
	})
	if err == nil {
		err = n.poll(false)
	}
	if err != nil {
		n.close()
		f.mu.Lock()
		delete(f.nodes, n.h)
		f.mu.Unlock()
	}
	return err
}

// reconnect re-dials a registered node (after a restart) and reopens its stream; the limit covers the dial
// and the map request up to its response headers.
func (f *fleet) reconnect(n *node) error {
	n.close()
	var stream *mapStream
	err := f.withRetry(n, func() (err error) {
		if err = n.connect(f.currentTarget()); err != nil {
			return err
		}
		stream, err = n.openStream(false)
		return err
	})
	if err != nil {
		return err
	}
	return stream.first()
}

func (f *fleet) closeAll() {
	f.mu.Lock()
	nodes := make([]*node, 0, len(f.nodes))
	for _, n := range f.nodes {
		nodes = append(nodes, n)
	}
	f.mu.Unlock()
	for _, n := range nodes {
		n.close()
	}
}

func (f *fleet) stats() []map[string]any {
	f.mu.Lock()
	nodes := make([]*node, 0, len(f.nodes))
	for _, n := range f.nodes {
		nodes = append(nodes, n)
	}
	f.mu.Unlock()
	out := make([]map[string]any, len(nodes))
	for i, n := range nodes {
		out[i] = n.stats()
	}
	return out
}

// totals counts every frame since the start, those of nodes that left included.
func (f *fleet) totals() map[string]any {
	f.mu.Lock()
	nodes := len(f.nodes)
	f.mu.Unlock()
	return map[string]any{
		"frames": f.frames.Load(), "deltas": f.deltas.Load(), "bytes": f.bytes.Load(),
		"repolls": f.repolls.Load(), "retries": f.retries.Load(), "nodes": nodes,
	}
}

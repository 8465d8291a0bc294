package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"sync"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/klauspost/compress/zstd"
	"go4.org/mem"
	"tailscale.com/control/ts2021"
	"tailscale.com/tailcfg"
	"tailscale.com/types/key"
	"tailscale.com/types/opt"
	"tailscale.com/util/zstdframe"
)

const (
	// maxRepolls and the back-off of 10 ms × n² follow tailscaled's map routine (util/backoff).
	maxRepolls = 8
	// firstMapTimeout bounds the wait for a stream's first frame (a loaded server may take long, never this long).
	firstMapTimeout = 5 * time.Minute
	// maxFrame refuses a length prefix no server would send.
	maxFrame = 256 << 20
	// keepBuffer is the largest buffer a node keeps between frames: full maps are large but rare.
	keepBuffer = 64 << 10
)

// node is one simulated tailscaled: its own machine, node and disco keys, one Noise connection, one map stream.
// The machine key is a real key pair (it runs the Noise handshake); the node and disco keys are only ever sent
// as public keys, so they are random points' bytes: two fewer X25519 scalar multiplications per node, which were
// a fifth of the generator's CPU at 10,000 nodes.
type node struct {
	f        *fleet
	h, index int
	name     string
	machine  key.MachinePrivate
	nodeKey  key.NodePublic
	disco    key.DiscoPublic
	hostinfo *tailcfg.Hostinfo

	mu     sync.Mutex
	client *ts2021.Client
	// epoch changes when the node closes or reconnects: a stream of an older epoch does not poll again.
	epoch      int
	cancel     context.CancelFunc
	generation int
	id         tailcfg.NodeID
	// peers is the node's netmap peer set, to check the policy gave each node the peers it should.
	peers   map[tailcfg.NodeID]struct{}
	watches []*nodeWatch

	firstMapMs, firstMapAt float64
}

func newNode(f *fleet, h, index int, name string) *node {
	return &node{
		f: f, h: h, index: index, name: name,
		machine: key.NewMachine(), nodeKey: key.NodePublicFromRaw32(mem.B(randomBytes(32))), disco: key.DiscoPublicFromRaw32(mem.B(randomBytes(32))),
		hostinfo: &tailcfg.Hostinfo{
			Hostname: name, OS: "linux", OSVersion: "Debian 12.8", IPNVersion: "1.102.5-bench",
			GoArch: "amd64", GoVersion: "go1.26", BackendLogID: randomHex(32),
			NetInfo: &tailcfg.NetInfo{PreferredDERP: 999, WorkingUDP: opt.True, HavePortMap: false},
		},
		peers: map[tailcfg.NodeID]struct{}{},
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func randomHex(n int) string { return hex.EncodeToString(randomBytes(n)) }

// endpoints change with each lite update's generation, like a node whose NAT mapping moved.
func (n *node) endpoints() []netip.AddrPort {
	a := n.index + 1
	port := uint16(41641 + n.generation)
	return []netip.AddrPort{
		netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(a)}), port),
		netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, byte(a >> 8), byte(a)}), port),
		netip.MustParseAddrPort(fmt.Sprintf("[2001:db8::%x]:41641", a)),
	}
}

func (n *node) mapRequest(stream bool) *tailcfg.MapRequest {
	return &tailcfg.MapRequest{
		Version: tailcfg.CurrentCapabilityVersion, Compress: "zstd", KeepAlive: stream, Stream: stream, OmitPeers: !stream,
		NodeKey: n.nodeKey, DiscoKey: n.disco, Hostinfo: n.hostinfo,
		Endpoints: n.endpoints(), EndpointTypes: []tailcfg.EndpointType{tailcfg.EndpointSTUN, tailcfg.EndpointLocal, tailcfg.EndpointSTUN},
	}
}

// connect replaces the node's Noise client; the connection itself is dialled by the first request.
func (n *node) connect(t target) error {
	c, err := ts2021.NewClient(ts2021.ClientOpts{
		ServerURL: t.url, PrivKey: n.machine, ServerPubKey: t.serverKey, Dialer: n.f.dialer(n.index), Logf: discard,
	})
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.client = c
	n.mu.Unlock()
	return nil
}

// close ends the stream and the connection; a stream ended this way does not poll again.
func (n *node) close() {
	n.mu.Lock()
	n.epoch++
	cancel, client := n.cancel, n.client
	n.cancel, n.client = nil, nil
	n.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if client != nil {
		client.Close()
	}
}

// post sends one request and decodes its JSON answer into out (nil: the body is drained).
func (n *node) post(path string, body, out any) error {
	n.mu.Lock()
	c := n.client
	n.mu.Unlock()
	if c == nil {
		return errors.New("not connected")
	}
	// Requests outside a stream (register, logout, lite update) give up after a minute.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := c.Post(ctx, path, n.nodeKey, body)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: HTTP %d %.200s", path, n.name, res.StatusCode, b)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

func (n *node) register(authKey string) error {
	req := &tailcfg.RegisterRequest{
		Version: tailcfg.CurrentCapabilityVersion, NodeKey: n.nodeKey, Hostinfo: n.hostinfo,
		Auth: &tailcfg.RegisterResponseAuth{AuthKey: authKey},
	}
	var res tailcfg.RegisterResponse
	if err := n.post("/machine/register", req, &res); err != nil {
		return err
	}
	if res.Error != "" || !res.MachineAuthorized {
		return fmt.Errorf("register %s: not authorized: %q", n.name, res.Error)
	}
	return nil
}

// logout is `tailscale logout`: a register request whose expiry is in the past (an ephemeral node is deleted).
func (n *node) logout() error {
	req := &tailcfg.RegisterRequest{
		Version: tailcfg.CurrentCapabilityVersion, NodeKey: n.nodeKey, Hostinfo: n.hostinfo, Expiry: time.Unix(123, 0),
	}
	return n.post("/machine/register", req, nil)
}

// liteUpdate is what a client sends when its endpoints change: Stream false, OmitPeers true.
func (n *node) liteUpdate() error {
	n.mu.Lock()
	n.generation++
	req := n.mapRequest(false)
	n.mu.Unlock()
	return n.post("/machine/map", req, nil)
}

// poll opens the map stream and waits for its first frame.
func (n *node) poll(again bool) error {
	s, err := n.openStream(again)
	if err != nil {
		return err
	}
	return s.first()
}

// mapStream is an open map poll whose frames a goroutine reads.
type mapStream struct {
	firstErr chan error
	cancel   context.CancelFunc
}

// first waits for the stream's first frame (the full map).
func (s *mapStream) first() error {
	select {
	case err := <-s.firstErr:
		return err
	case <-time.After(firstMapTimeout):
		s.cancel()
		return errors.New("no first map")
	}
}

// openStream sends the streaming map request and returns once the response headers arrived. A re-poll
// (`again`) keeps the node's first-map figures: its first frame counts as a delta.
func (n *node) openStream(again bool) (*mapStream, error) {
	ctx, cancel := context.WithCancel(context.Background())
	n.mu.Lock()
	c, epoch := n.client, n.epoch
	if old := n.cancel; old != nil {
		old()
	}
	n.cancel = cancel
	if !again {
		n.firstMapAt = 0
	}
	req := n.mapRequest(true)
	n.mu.Unlock()
	if c == nil {
		cancel()
		return nil, errors.New("not connected")
	}
	t0 := nowMs()
	res, err := c.Post(ctx, "/machine/map", n.nodeKey, req)
	if err != nil {
		cancel()
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 200))
		res.Body.Close()
		cancel()
		return nil, fmt.Errorf("map %s: HTTP %d %s", n.name, res.StatusCode, b)
	}
	s := &mapStream{firstErr: make(chan error, 1), cancel: cancel}
	go n.read(res.Body, s, epoch, t0, again)
	return s, nil
}

// largeBuffers holds the buffers of full maps between frames, whichever node decodes next: a buffer of its own
// per map (and zstd growing it frame by frame) had the runtime allocating and clearing a megabyte per map, a
// tenth of the generator's CPU at 1,000 allow-all nodes. Few nodes decode at the same moment, so few are kept.
var largeBuffers sync.Pool

// room returns b if its capacity holds n bytes, else an empty buffer that does: from the pool past keepBuffer.
func room(b []byte, n int) []byte {
	if cap(b) >= n {
		return b
	}
	if n <= keepBuffer {
		return make([]byte, 0, n)
	}
	if p, ok := largeBuffers.Get().([]byte); ok && cap(p) >= n {
		return p[:0]
	}
	return make([]byte, 0, max(n, 2*keepBuffer))
}

// decodedSize is the sum of the content sizes a message's zstd frames declare (0 if one does not). The server's
// maps are several frames (shared chunks between per-viewer parts), and DecodeAll grows its output to fit each
// frame in turn: a new buffer and a copy of all before it per frame, a sixth of the generator's CPU at 10,000
// nodes. With room for all of them it allocates nothing.
func decodedSize(b []byte) int {
	total := 0
	for len(b) > 0 {
		var h zstd.Header
		n, err := zstdframe.NextSize(b)
		if err != nil || h.Decode(b) != nil || (!h.HasFCS && !h.Skippable) {
			return 0
		}
		total += int(h.FrameContentSize)
		b = b[n:]
	}
	return total
}

// read decodes frames ([u32 little-endian length][zstd JSON MapResponse]) until the stream ends; a stream the
// server ended after frames is polled again, as tailscaled does.
func (n *node) read(body io.ReadCloser, s *mapStream, epoch int, t0 float64, again bool) {
	defer s.cancel()
	defer body.Close()
	var hdr [4]byte
	var buf, msg []byte
	frames := 0
	err := func() error {
		for {
			if _, err := io.ReadFull(body, hdr[:]); err != nil {
				return err
			}
			size := binary.LittleEndian.Uint32(hdr[:])
			if size > maxFrame {
				return fmt.Errorf("frame of %d bytes", size)
			}
			buf = room(buf, int(size))[:size]
			if _, err := io.ReadFull(body, buf); err != nil {
				return err
			}
			at := nowMs()
			var err error
			if msg, err = zstdframe.AppendDecode(room(msg, decodedSize(buf))[:0], buf); err != nil {
				return fmt.Errorf("zstd: %w", err)
			}
			var m mapLite
			// encoding/json, which tailscaled decodes with, takes duplicate names: no set of names per object.
			if err := jsonv2.Unmarshal(msg, &m, jsontext.AllowDuplicateNames(true)); err != nil {
				return fmt.Errorf("json: %w", err)
			}
			n.onFrame(&m, at, 4+int(size), frames == 0 && !again, t0)
			if frames++; frames == 1 {
				s.firstErr <- nil
			}
			if cap(buf) > keepBuffer {
				largeBuffers.Put(buf[:0])
				buf = nil
			}
			if cap(msg) > keepBuffer {
				largeBuffers.Put(msg[:0])
				msg = nil
			}
		}
	}()
	if frames == 0 {
		s.firstErr <- fmt.Errorf("map %s: stream closed before the first frame: %w", n.name, err)
		return
	}
	go n.repoll(epoch)
}

// repoll polls again with tailscaled's back-off until a stream works, or the node closed or reconnected.
func (n *node) repoll(epoch int) {
	for k := 1; k <= maxRepolls; k++ {
		time.Sleep(time.Duration(10*k*k) * time.Millisecond)
		n.mu.Lock()
		current := n.epoch == epoch
		n.mu.Unlock()
		if !current {
			return
		}
		if n.poll(true) == nil {
			n.f.repolls.Add(1)
			return
		}
	}
}

func (n *node) onFrame(m *mapLite, at float64, size int, first bool, t0 float64) {
	n.f.frames.Add(1)
	n.f.bytes.Add(int64(size))
	n.mu.Lock()
	defer n.mu.Unlock()
	n.trackPeers(m)
	if first {
		n.firstMapAt, n.firstMapMs = at, at-t0
		if m.Node != nil {
			n.id = m.Node.ID
		}
	} else if !m.KeepAlive {
		n.f.deltas.Add(1)
	}
	for _, w := range n.watches {
		w.observe(m, at)
	}
}

func (n *node) trackPeers(m *mapLite) {
	if m.Peers != nil {
		clear(n.peers)
	}
	for _, p := range m.Peers {
		n.peers[p.ID] = struct{}{}
	}
	for _, p := range m.PeersChanged {
		n.peers[p.ID] = struct{}{}
	}
	for _, id := range m.PeersRemoved {
		delete(n.peers, id)
	}
}

func (n *node) stats() map[string]any {
	n.mu.Lock()
	defer n.mu.Unlock()
	return map[string]any{"h": n.h, "id": n.id, "peers": len(n.peers), "firstMapMs": n.firstMapMs, "firstMapAt": n.firstMapAt}
}

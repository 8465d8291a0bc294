package main

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"tailscale.com/tailcfg"
)

// mapLite is the part of a tailcfg.MapResponse the scenarios check. Decoding only these fields, with the JSON v2
// decoder tailscale also depends on (twice as fast as encoding/json on a 1,000-peer map, which it must still
// parse whole), keeps 5,000-peer allow-all maps from costing the generator more than the server.
type mapLite struct {
	KeepAlive bool
	Node      *struct{ ID tailcfg.NodeID }
	// Peers is non-nil when the frame carries the full peer list (an empty list decodes to an empty slice).
	Peers             []peerLite
	PeersChanged      []peerLite
	PeersRemoved      []tailcfg.NodeID
	PeersChangedPatch []struct {
		NodeID    tailcfg.NodeID
		Endpoints jsontext.Value
	}
	PacketFilter jsontext.Value
	// PacketFilters is the keyed form of capability version 81+, which Headscale sends; clients accept either.
	PacketFilters jsontext.Value
}

type peerLite struct {
	ID  tailcfg.NodeID
	Key string
}

// watchGroup is what every node in Hs must see: peers added (by key), peers removed (by id, with the key they
// had), one peer's endpoint change (a patch, or the peer re-sent) and a new packet filter.
type watchGroup struct {
	Hs      []int     `json:"hs"`
	Added   []string  `json:"added"`
	Removed []removal `json:"removed"`
	Patch   *removal  `json:"patch"`
	Filter  bool      `json:"filter"`
}

type removal struct {
	ID  tailcfg.NodeID `json:"id"`
	Key string         `json:"key"`
}

// condSet indexes a group's conditions; the nodes of a group share it.
type condSet struct {
	n int
	// dropped conditions no longer count (their peer never joined or never logged out); the set is shared by
	// nodes that each observe under their own lock, hence atomics.
	dropped []atomic.Bool
	added   map[string]int
	removed map[tailcfg.NodeID]indexedRemoval
	patch   *removal
	patchI  int
	filterI int
}

type indexedRemoval struct {
	key string
	i   int
}

func newCondSet(g *watchGroup) *condSet {
	s := &condSet{added: map[string]int{}, removed: map[tailcfg.NodeID]indexedRemoval{}, patchI: -1, filterI: -1}
	for _, k := range g.Added {
		s.added[k] = s.n
		s.n++
	}
	for _, r := range g.Removed {
		s.removed[r.ID] = indexedRemoval{r.Key, s.n}
		s.n++
	}
	if g.Patch != nil {
		s.patch, s.patchI = g.Patch, s.n
		s.n++
	}
	if g.Filter {
		s.filterI = s.n
		s.n++
	}
	s.dropped = make([]atomic.Bool, s.n)
	return s
}

// drop stops counting the conditions about these peers (by key for joins, by id for removals).
func (s *condSet) drop(keys []string, ids []tailcfg.NodeID) {
	for _, k := range keys {
		if i, ok := s.added[k]; ok {
			s.dropped[i].Store(true)
		}
	}
	for _, id := range ids {
		if r, ok := s.removed[id]; ok {
			s.dropped[r.i].Store(true)
		}
	}
}

// nodeWatch is one node's arrival time for each condition of its group (0: not yet).
type nodeWatch struct {
	h int
	// mu is the node's: frames are observed under it.
	mu      *sync.Mutex
	set     *condSet
	at      []float64
	arrived int
	last    float64
}

func (w *nodeWatch) hit(i int, at float64) {
	if w.at[i] != 0 || w.set.dropped[i].Load() {
		return
	}
	w.at[i] = at
	w.arrived++
	w.last = max(w.last, at)
}

// observe records what frame m tells the node. A full peer list (a re-poll's first map) tells both: a peer it
// lists was added, and a watched id it leaves out was removed. A peer sent under a removed peer's id with another
// key replaces it, as the client sees it.
func (w *nodeWatch) observe(m *mapLite, at float64) {
	s := w.set
	if s.filterI >= 0 && (m.PacketFilter != nil || m.PacketFilters != nil) {
		w.hit(s.filterI, at)
	}
	listed := m.PeersChanged
	if listed == nil {
		listed = m.Peers
	}
	for _, p := range listed {
		if i, ok := s.added[p.Key]; ok {
			w.hit(i, at)
		}
		if r, ok := s.removed[p.ID]; ok && r.key != p.Key {
			w.hit(r.i, at)
		}
		if s.patch != nil && s.patch.Key == p.Key {
			w.hit(s.patchI, at)
		}
	}
	for _, id := range m.PeersRemoved {
		if r, ok := s.removed[id]; ok {
			w.hit(r.i, at)
		}
	}
	for _, p := range m.PeersChangedPatch {
		if s.patch != nil && p.NodeID == s.patch.ID && len(p.Endpoints) > 0 && string(p.Endpoints) != "null" {
			w.hit(s.patchI, at)
		}
	}
	if m.Peers != nil && len(s.removed) > 0 {
		full := make(map[tailcfg.NodeID]struct{}, len(m.Peers))
		for _, p := range m.Peers {
			full[p.ID] = struct{}{}
		}
		for id, r := range s.removed {
			if _, ok := full[id]; !ok {
				w.hit(r.i, at)
			}
		}
	}
}

// watch attaches a token's conditions to the nodes of each group; frames from now on are checked against them.
func (f *fleet) watch(token string, groups []watchGroup) error {
	var ws []*nodeWatch
	for gi := range groups {
		set := newCondSet(&groups[gi])
		for _, h := range groups[gi].Hs {
			n, err := f.node(h)
			if err != nil {
				return fmt.Errorf("watch %s: %w", token, err)
			}
			w := &nodeWatch{h: h, mu: &n.mu, set: set, at: make([]float64, set.n)}
			n.mu.Lock()
			n.watches = append(n.watches, w)
			n.mu.Unlock()
			ws = append(ws, w)
		}
	}
	f.mu.Lock()
	f.watches[token] = append(f.watches[token], ws...)
	f.mu.Unlock()
	return nil
}

// arrivals summarises each watching node: conditions, how many arrived, the last arrival, and how many arrived
// after `after` (late, when after is a deadline).
func (f *fleet) arrivals(token string, after float64) []map[string]any {
	f.mu.Lock()
	ws := f.watches[token]
	f.mu.Unlock()
	out := make([]map[string]any, len(ws))
	for i, w := range ws {
		w.mu.Lock()
		late := 0
		for _, at := range w.at {
			if at > after && after > 0 {
				late++
			}
		}
		out[i] = map[string]any{"h": w.h, "n": w.set.wanted(), "arrived": w.arrived, "last": w.last, "after": late}
		w.mu.Unlock()
	}
	return out
}

// wanted counts the conditions not dropped.
func (s *condSet) wanted() int {
	n := s.n
	for i := range s.dropped {
		if s.dropped[i].Load() {
			n--
		}
	}
	return n
}

// dropFrom stops counting, in every group of a watch, the conditions about these peers.
func (f *fleet) dropFrom(token string, keys []string, ids []tailcfg.NodeID) {
	f.mu.Lock()
	ws := f.watches[token]
	f.mu.Unlock()
	for _, w := range ws {
		w.set.drop(keys, ids)
	}
}

// wait returns once every node of the watch saw every condition (true), or at the deadline (false).
func (f *fleet) wait(token string, until float64) bool {
	f.mu.Lock()
	ws := f.watches[token]
	f.mu.Unlock()
	for {
		done := true
		for _, w := range ws {
			w.mu.Lock()
			done = w.arrived >= w.set.wanted()
			w.mu.Unlock()
			if !done {
				break
			}
		}
		if done || nowMs() >= until {
			return done
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (f *fleet) unwatch(token string) {
	f.mu.Lock()
	ws := f.watches[token]
	delete(f.watches, token)
	f.mu.Unlock()
	for _, w := range ws {
		n, err := f.node(w.h)
		if err != nil {
			continue
		}
		n.mu.Lock()
		for i, x := range n.watches {
			if x == w {
				n.watches = append(n.watches[:i], n.watches[i+1:]...)
				break
			}
		}
		n.mu.Unlock()
	}
}

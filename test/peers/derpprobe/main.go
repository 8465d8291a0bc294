// Command derpprobe checks a DERP relay (and optionally STUN servers) with tailscale.com's own clients
// and prints the results as one JSON object; it exits non-zero when any check fails.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"tailscale.com/derp"
	"tailscale.com/derp/derphttp"
	"tailscale.com/net/netmon"
	"tailscale.com/net/stun"
	"tailscale.com/tailcfg"
	"tailscale.com/types/key"
)

// check is one named result in the JSON report.
type check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

type report struct {
	OK     bool    `json:"ok"`
	Checks []check `json:"checks"`
}

func (r *report) add(name string, err error, detail string) {
	c := check{Name: name, OK: err == nil, Detail: detail}
	if err != nil {
		c.Detail = err.Error()
	}
	r.Checks = append(r.Checks, c)
}

func main() {
	derpURL := flag.String("derp", "", "DERP URL, e.g. http://127.0.0.1:8080/derp")
	derpMapFile := flag.String("derpmap", "", "tailcfg.DERPMap JSON file; dial its lowest region like tailscaled does, and STUN its first node")
	keyA := flag.String("key-a", "", "privkey:<hex> of allowed client A (random if empty)")
	keyB := flag.String("key-b", "", "privkey:<hex> of allowed client B (random if empty)")
	keyDenied := flag.String("key-denied", "", "privkey:<hex> the server must reject (check skipped if empty)")
	stunAddrs := flag.String("stun", "", "comma-separated host:port STUN servers to query")
	timeout := flag.Duration("timeout", 10*time.Second, "per-step timeout")
	flag.Parse()

	r := &report{}
	var dial dialer
	if *derpURL != "" {
		dial = urlDialer(*derpURL)
	}
	if *derpMapFile != "" {
		region, err := loadRegion(*derpMapFile)
		r.add("derp map", err, "")
		if err != nil {
			finish(r)
		}
		dial = regionDialer(region)
		if n := region.Nodes[0]; n.STUNPort > 0 {
			*stunAddrs += "," + net.JoinHostPort(stunHost(n), fmt.Sprint(n.STUNPort))
		}
	}
	if dial != nil {
		probeDERP(r, dial, *keyA, *keyB, *keyDenied, *timeout)
	}
	for _, a := range strings.Split(*stunAddrs, ",") {
		if a != "" {
			addr, err := probeSTUN(a, *timeout)
			r.add("stun "+a, err, addr)
		}
	}
	finish(r)
}

// finish prints the report and exits, non-zero unless every check passed.
func finish(r *report) {
	r.OK = len(r.Checks) > 0
	for _, c := range r.Checks {
		r.OK = r.OK && c.OK
	}
	json.NewEncoder(os.Stdout).Encode(r)
	if !r.OK {
		os.Exit(1)
	}
	os.Exit(0)
}

// dialer makes a DERP client for a key; it connects lazily.
type dialer func(k key.NodePrivate) (*derphttp.Client, error)

func nopLogf(string, ...any) {}

func urlDialer(url string) dialer {
	return func(k key.NodePrivate) (*derphttp.Client, error) {
		return derphttp.NewClient(k, url, nopLogf, netmon.NewStatic())
	}
}

// regionDialer dials the way magicsock does: from the DERP map's node list (HostName, IPv4/IPv6, DERPPort).
// Plain HTTP needs TS_DEBUG_USE_DERP_HTTP=1 in the environment, as for tailscaled.
func regionDialer(region *tailcfg.DERPRegion) dialer {
	return func(k key.NodePrivate) (*derphttp.Client, error) {
		return derphttp.NewRegionClient(k, nopLogf, netmon.NewStatic(), func() *tailcfg.DERPRegion { return region }), nil
	}
}

// stunHost picks the STUN target the way netcheck does: STUNTestIP, else IPv4, else the host name.
func stunHost(n *tailcfg.DERPNode) string {
	switch {
	case n.STUNTestIP != "":
		return n.STUNTestIP
	case n.IPv4 != "" && n.IPv4 != "none":
		return n.IPv4
	}
	return n.HostName
}

// loadRegion decodes a DERP map with tailcfg's own types and returns its lowest-numbered region.
func loadRegion(file string) (*tailcfg.DERPRegion, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var m tailcfg.DERPMap
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	ids := m.RegionIDs()
	if len(ids) == 0 {
		return nil, errors.New("no regions")
	}
	region := m.Regions[ids[0]]
	if region == nil || len(region.Nodes) == 0 {
		return nil, errors.New("empty region")
	}
	return region, nil
}

func parseKey(s string) (key.NodePrivate, error) {
	if s == "" {
		return key.NewNode(), nil
	}
	var k key.NodePrivate
	err := k.UnmarshalText([]byte(s))
	return k, err
}

// peer is a connected derphttp client whose received messages arrive on a channel.
type peer struct {
	c    *derphttp.Client
	msgs chan derp.ReceivedMessage
	errs chan error
}

func connect(dial dialer, k key.NodePrivate, timeout time.Duration) (*peer, error) {
	c, err := dial(k)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		c.Close()
		return nil, err
	}
	p := &peer{c: c, msgs: make(chan derp.ReceivedMessage, 64), errs: make(chan error, 1)}
	go p.recvLoop()
	return p, nil
}

func (p *peer) recvLoop() {
	for {
		m, err := p.c.Recv()
		if err != nil {
			p.errs <- err
			return
		}
		// Copy packets: Recv's data aliases the client's buffer.
		if rp, ok := m.(derp.ReceivedPacket); ok {
			rp.Data = bytes.Clone(rp.Data)
			m = rp
		}
		p.msgs <- m
	}
}

// await returns the first message for which match is true, or an error at the deadline or on a read error.
func (p *peer) await(timeout time.Duration, match func(derp.ReceivedMessage) bool) (derp.ReceivedMessage, error) {
	deadline := time.After(timeout)
	for {
		select {
		case m := <-p.msgs:
			if match(m) {
				return m, nil
			}
		case err := <-p.errs:
			return nil, err
		case <-deadline:
			return nil, errors.New("timed out")
		}
	}
}

func isServerInfo(m derp.ReceivedMessage) bool { _, ok := m.(derp.ServerInfoMessage); return ok }

func packetFrom(src key.NodePublic, data []byte) func(derp.ReceivedMessage) bool {
	return func(m derp.ReceivedMessage) bool {
		rp, ok := m.(derp.ReceivedPacket)
		return ok && rp.Source == src && bytes.Equal(rp.Data, data)
	}
}

func peerGone(k key.NodePublic, reason derp.PeerGoneReasonType) func(derp.ReceivedMessage) bool {
	return func(m derp.ReceivedMessage) bool {
		pg, ok := m.(derp.PeerGoneMessage)
		return ok && pg.Peer == k && pg.Reason == reason
	}
}

// discoLike builds a packet the server classifies as a disco message (magic + key + nonce + body).
func discoLike() []byte {
	return append([]byte("TS💬"), make([]byte, 32+24+16)...)
}

func probeDERP(r *report, dial dialer, ka, kb, kd string, timeout time.Duration) {
	privA, errA := parseKey(ka)
	privB, errB := parseKey(kb)
	if err := errors.Join(errA, errB); err != nil {
		r.add("keys", err, "")
		return
	}
	a, err := connect(dial, privA, timeout)
	r.add("connect A", err, privA.Public().String())
	if err != nil {
		return
	}
	defer a.c.Close()
	b, err := connect(dial, privB, timeout)
	r.add("connect B", err, privB.Public().String())
	if err != nil {
		return
	}
	defer b.c.Close()

	_, err = a.await(timeout, isServerInfo)
	r.add("server info A", err, a.c.ServerPublicKey().String())
	_, err = b.await(timeout, isServerInfo)
	r.add("server info B", err, "")

	a.c.NotePreferred(true)
	payload := []byte("hello from A via tailplane derp")
	if err := a.c.Send(privB.Public(), payload); err != nil {
		r.add("relay A->B", err, "")
	} else {
		_, err = b.await(timeout, packetFrom(privA.Public(), payload))
		r.add("relay A->B", err, fmt.Sprintf("%d bytes", len(payload)))
	}
	big := bytes.Repeat([]byte{0xab}, derp.MaxPacketSize)
	if err := b.c.Send(privA.Public(), big); err != nil {
		r.add("relay B->A 64KiB", err, "")
	} else {
		_, err = a.await(timeout, packetFrom(privB.Public(), big))
		r.add("relay B->A 64KiB", err, "")
	}

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	err = a.c.Ping(ctx)
	cancel()
	r.add("ping/pong", err, "")

	nobody := key.NewNode().Public()
	if err := a.c.Send(nobody, discoLike()); err != nil {
		r.add("peer gone not-here", err, "")
	} else {
		_, err = a.await(timeout, peerGone(nobody, derp.PeerGoneReasonNotHere))
		r.add("peer gone not-here", err, "")
	}

	// A newer connection with A's key takes over; packets to A go to it.
	a2, err := connect(dial, privA, timeout)
	if err == nil {
		defer a2.c.Close()
		_, err = a2.await(timeout, isServerInfo)
	}
	if err == nil {
		msg := []byte("to the newest A")
		if err = b.c.Send(privA.Public(), msg); err == nil {
			_, err = a2.await(timeout, packetFrom(privB.Public(), msg))
		}
	}
	r.add("duplicate key: newer wins", err, "")

	// When every connection of A is gone, B (which A sent to) hears PeerGone(disconnected).
	a.c.Close()
	a2.c.Close()
	_, err = b.await(timeout, peerGone(privA.Public(), derp.PeerGoneReasonDisconnected))
	r.add("peer gone disconnected", err, "")

	if kd != "" {
		r.add("denied key rejected", probeDenied(dial, kd, timeout), "")
	}
}

// probeDenied passes when the server closes the connection instead of sending ServerInfo.
func probeDenied(dial dialer, kd string, timeout time.Duration) error {
	priv, err := parseKey(kd)
	if err != nil {
		return err
	}
	d, err := connect(dial, priv, timeout)
	if err != nil {
		return nil // rejected before the DERP handshake finished
	}
	defer d.c.Close()
	m, err := d.await(timeout, func(derp.ReceivedMessage) bool { return true })
	if err != nil {
		if err.Error() == "timed out" {
			return err
		}
		return nil
	}
	return fmt.Errorf("server accepted denied key: got %T", m)
}

func probeSTUN(hostPort string, timeout time.Duration) (string, error) {
	raddr, err := net.ResolveUDPAddr("udp", hostPort)
	if err != nil {
		return "", err
	}
	conn, err := net.ListenUDP("udp", nil)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	tx := stun.NewTxID()
	if _, err := conn.WriteToUDP(stun.Request(tx), raddr); err != nil {
		return "", err
	}
	conn.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 1500)
	n, _, err := conn.ReadFromUDP(buf)
	if err != nil {
		return "", err
	}
	gotTx, addr, err := stun.ParseResponse(buf[:n])
	if err != nil {
		return "", err
	}
	if gotTx != tx {
		return "", errors.New("transaction id mismatch")
	}
	local := conn.LocalAddr().(*net.UDPAddr)
	want := netip.AddrPortFrom(raddr.AddrPort().Addr().Unmap(), uint16(local.Port))
	if addr != want {
		return addr.String(), fmt.Errorf("mapped address %v, want %v", addr, want)
	}
	return addr.String(), nil
}

// Command gofleet is the bench's load generator: thousands of simulated nodes in one process, each speaking the
// control protocol through tailscale's own client stack (tailscale.com/control/ts2021: the /ts2021 upgrade, the
// Noise handshake, HTTP/2), registering with a pre-auth key, holding a streaming map poll whose zstd frames it
// decodes, and sending lite updates and logouts.
//
// It is driven over stdin/stdout by test/bench/loadgen/fleet.ts: one JSON command per line in, one JSON reply
// per line out, matched by "seq" (commands run concurrently, so replies come in any order). What the scenarios
// measure is evaluated here, as frames arrive: a "watch" names the updates each node must see, and "arrivals"
// reports when they came, so no frame crosses the pipe. Times are Unix milliseconds.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"sync"
	"time"

	"tailscale.com/tailcfg"
)

// command is one line on stdin; which fields matter depends on Op.
type command struct {
	Seq   int64  `json:"seq"`
	Op    string `json:"op"`
	H     int    `json:"h"`
	Index int    `json:"index"`
	Name  string `json:"name"`
	// AuthKey is the pre-auth key of a join.
	AuthKey string `json:"authKey"`
	// URL and ServerKey set the target (op "target").
	URL       string `json:"url"`
	ServerKey string `json:"serverKey"`
	// Concurrency bounds dials and registrations in flight (op "target").
	Concurrency int `json:"concurrency"`
	// Token names a watch; Groups are its conditions (op "watch"); After splits arrivals in two (op "arrivals").
	Token  string       `json:"token"`
	Groups []watchGroup `json:"groups"`
	After  float64      `json:"after"`
	// Until is the deadline of a wait for a watch to complete.
	Until float64 `json:"until"`
	// Keys and IDs name the peers whose conditions a watch drops (op "drop").
	Keys []string         `json:"keys"`
	IDs  []tailcfg.NodeID `json:"ids"`
}

func nowMs() float64 { return float64(time.Now().UnixNano()) / 1e6 }

// replies serialises the JSON lines written to stdout.
type replies struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func (r *replies) send(seq int64, body map[string]any, err error) {
	if body == nil {
		body = map[string]any{}
	}
	body["seq"] = seq
	if err != nil {
		body["error"] = err.Error()
	}
	line, mErr := json.Marshal(body)
	if mErr != nil {
		line = []byte(fmt.Sprintf(`{"seq":%d,"error":%q}`, seq, mErr.Error()))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.w.Write(line)
	r.w.WriteByte('\n')
	r.w.Flush()
}

func main() {
	// GOFLEET_CPUPROFILE names a pprof CPU profile of the whole run, written when stdin closes.
	if path := os.Getenv("GOFLEET_CPUPROFILE"); path != "" {
		file, err := os.Create(path)
		if err == nil {
			err = pprof.StartCPUProfile(file)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "gofleet: GOFLEET_CPUPROFILE:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	f := newFleet()
	out := &replies{w: bufio.NewWriter(os.Stdout)}
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	for {
		line, err := in.ReadBytes('\n')
		if len(line) > 0 {
			var c command
			if jErr := json.Unmarshal(line, &c); jErr != nil {
				out.send(-1, nil, fmt.Errorf("bad command: %w", jErr))
			} else {
				go func() {
					body, err := f.handle(&c)
					out.send(c.Seq, body, err)
				}()
			}
		}
		if err == io.EOF {
			// The driver is gone or done: close every connection so the server sees the nodes leave.
			f.closeAll()
			return
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "gofleet: reading commands:", err)
			os.Exit(1)
		}
	}
}

// Command noiseprobe dials a control server with tailscale's own ts2021 client and prints what it got back as JSON.
//
// It fetches the server's Noise key from /key, generates a fresh machine key, performs the /ts2021 upgrade and
// Noise handshake through tailscale.com/control/ts2021, sends one or more HTTP/2 requests over that connection,
// and prints {"machineKey", "serverKey", "results":[{"status","bodyLen","bodySha256","body"}]} or {"error"}.
// With -frames, each body is read the way the map poll reads it: [u32 little-endian length][zstd frame of a
// tailcfg.MapResponse], decoded with tailscale's own zstdframe and encoding/json, and returned in "frames".
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"tailscale.com/control/ts2021"
	"tailscale.com/net/tsdial"
	"tailscale.com/tailcfg"
	"tailscale.com/types/key"
	"tailscale.com/util/zstdframe"
)

type result struct {
	Status     int    `json:"status"`
	BodyLen    int    `json:"bodyLen"`
	BodySha256 string `json:"bodySha256"`
	Body       string `json:"body"`
	// Frames holds each decoded MapResponse, re-encoded as JSON, when -frames is set.
	Frames []json.RawMessage `json:"frames,omitempty"`
}

type output struct {
	MachineKey string   `json:"machineKey,omitempty"`
	ServerKey  string   `json:"serverKey,omitempty"`
	Results    []result `json:"results,omitempty"`
	Error      string   `json:"error,omitempty"`
}

func main() {
	server := flag.String("server", "", "control server URL, e.g. http://127.0.0.1:8080")
	path := flag.String("path", "/machine/register", "request path over Noise")
	body := flag.String("body", `{"Version":1}`, "JSON request body")
	version := flag.Uint("version", 0, "protocol version to offer (0 = this client's CurrentCapabilityVersion)")
	requests := flag.Int("requests", 1, "number of sequential requests over the same Noise connection")
	timeout := flag.Duration("timeout", 20*time.Second, "overall deadline")
	frames := flag.Bool("frames", false, "decode each body as length-prefixed zstd MapResponse frames")
	flag.Parse()

	out := output{}
	err := run(&out, *server, *path, []byte(*body), uint16(*version), *requests, *timeout, *frames)
	if err != nil {
		out.Error = err.Error()
	}
	enc := json.NewEncoder(os.Stdout)
	if encErr := enc.Encode(out); encErr != nil {
		log.Fatal(encErr)
	}
	if err != nil {
		os.Exit(2)
	}
}

func run(out *output, server, path string, body []byte, version uint16, requests int, timeout time.Duration, frames bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	serverKey, err := fetchServerKey(ctx, server)
	if err != nil {
		return err
	}
	out.ServerKey = serverKey.String()

	machine := key.NewMachine()
	out.MachineKey = machine.Public().String()

	logf := func(format string, args ...any) { log.Printf(format, args...) }
	client, err := ts2021.NewClient(ts2021.ClientOpts{
		ServerURL:       server,
		PrivKey:         machine,
		ServerPubKey:    serverKey,
		Dialer:          tsdial.NewFromFuncForDebug(logf, (&net.Dialer{}).DialContext),
		Logf:            logf,
		ProtocolVersion: version,
	})
	if err != nil {
		return fmt.Errorf("ts2021.NewClient: %w", err)
	}
	defer client.Close()

	for range requests {
		req, err := http.NewRequestWithContext(ctx, "POST", "https://noise"+path, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("request %s: %w", path, err)
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			return fmt.Errorf("reading body: %w", err)
		}
		sum := sha256.Sum256(b)
		r := result{Status: res.StatusCode, BodyLen: len(b), BodySha256: hex.EncodeToString(sum[:]), Body: string(b)}
		if frames {
			r.Body = ""
			if r.Frames, err = decodeFrames(b); err != nil {
				return err
			}
		}
		out.Results = append(out.Results, r)
	}
	return nil
}

// decodeFrames splits a map-poll body into frames and decodes each as controlclient does.
func decodeFrames(b []byte) ([]json.RawMessage, error) {
	var out []json.RawMessage
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, fmt.Errorf("frame %d: truncated length prefix", len(out))
		}
		size := binary.LittleEndian.Uint32(b[:4])
		if uint64(len(b)-4) < uint64(size) {
			return nil, fmt.Errorf("frame %d: length %d but only %d bytes left", len(out), size, len(b)-4)
		}
		msg, err := zstdframe.AppendDecode(nil, b[4:4+size])
		if err != nil {
			return nil, fmt.Errorf("frame %d: zstd: %w", len(out), err)
		}
		var resp tailcfg.MapResponse
		if err := json.Unmarshal(msg, &resp); err != nil {
			return nil, fmt.Errorf("frame %d: json: %w", len(out), err)
		}
		j, err := json.Marshal(resp)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
		b = b[4+size:]
	}
	return out, nil
}

func fetchServerKey(ctx context.Context, server string) (key.MachinePublic, error) {
	var zero key.MachinePublic
	req, err := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/key?v=%d", server, tailcfg.CurrentCapabilityVersion), nil)
	if err != nil {
		return zero, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return zero, fmt.Errorf("GET /key: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		return zero, fmt.Errorf("GET /key: status %d", res.StatusCode)
	}
	var keys tailcfg.OverTLSPublicKeyResponse
	if err := json.NewDecoder(io.LimitReader(res.Body, 64<<10)).Decode(&keys); err != nil {
		return zero, fmt.Errorf("GET /key: decoding: %w", err)
	}
	if keys.PublicKey.IsZero() {
		return zero, fmt.Errorf("GET /key: no noise key")
	}
	return keys.PublicKey, nil
}

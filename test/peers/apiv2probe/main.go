// Command apiv2probe drives tailplane's API v2 with Tailscale's own Go client (tailscale.com/client/tailscale/v2),
// the library behind Tailscale's Terraform provider and operator. It runs every call the API v2 test needs,
// checks each answer, and prints one JSON line per step; a step with "wait" pauses until the test writes a
// line on stdin (after it has joined a real tailscaled, or checked what the daemon sees).
//
//	apiv2probe -url URL (-key KEY | -client-id ID -client-secret SECRET) -hostname NAME -route CIDR [-mode full|refused]
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	tailscale "tailscale.com/client/tailscale/v2"
)

var (
	stdin = bufio.NewReader(os.Stdin)
	ctx   = context.Background()
)

// emit prints one step as a JSON line; with wait, it then blocks until the test answers with a line.
func emit(step string, fields map[string]any, wait bool) {
	out := map[string]any{"step": step, "wait": wait}
	for k, v := range fields {
		out[k] = v
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
	if wait {
		if _, err := stdin.ReadString('\n'); err != nil {
			fail("waiting for the test after %s: %v", step, err)
		}
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "apiv2probe: "+format+"\n", args...)
	os.Exit(1)
}

func check(err error, what string) {
	if err != nil {
		fail("%s: %v", what, err)
	}
}

func expect(ok bool, format string, args ...any) {
	if !ok {
		fail(format, args...)
	}
}

// statusOf is the HTTP status of an API error (0 for success or a non-API error).
func statusOf(err error) int {
	var apiErr tailscale.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Status
	}
	return 0
}

func expectStatus(err error, want int, what string) {
	expect(statusOf(err) == want, "%s: want HTTP %d, got %v", what, want, err)
	var apiErr tailscale.APIError
	if errors.As(err, &apiErr) {
		expect(apiErr.Message != "", "%s: the error has no message", what)
	}
}

func main() {
	base := flag.String("url", "", "server URL")
	key := flag.String("key", "", "API key")
	clientID := flag.String("client-id", "", "OAuth client id")
	clientSecret := flag.String("client-secret", "", "OAuth client secret")
	hostname := flag.String("hostname", "", "hostname of the tailscaled the test joins")
	route := flag.String("route", "", "subnet route that tailscaled advertises")
	mode := flag.String("mode", "full", "full: every endpoint; refused: a client lacking scopes")
	flag.Parse()
	u, err := url.Parse(*base)
	check(err, "parse -url")
	client := &tailscale.Client{BaseURL: u, APIKey: *key}
	if *clientID != "" {
		client = &tailscale.Client{BaseURL: u, Auth: &tailscale.OAuth{ClientID: *clientID, ClientSecret: *clientSecret}}
	}
	if *mode == "refused" {
		refused(client, u, *clientID, *clientSecret)
		emit("done", nil, false)
		return
	}
	authKey := keys(client)
	emit("join", map[string]any{"authKey": authKey.Key}, true)
	id := devices(client, *hostname, *route)
	emit("device", map[string]any{"id": id}, true)
	dns(client)
	emit("dns", nil, true)
	policy(client)
	users(client)
	check(client.Devices().Delete(ctx, id), "delete the device")
	_, err = client.Devices().Get(ctx, id)
	expect(tailscale.IsNotFound(err), "a deleted device must be not found, got %v", err)
	check(client.Keys().Delete(ctx, authKey.ID), "delete the auth key")
	emit("done", nil, false)
}

func keyRequest(tags []string, description string) tailscale.CreateKeyRequest {
	var r tailscale.CreateKeyRequest
	r.Capabilities.Devices.Create.Tags = tags
	r.Capabilities.Devices.Create.Preauthorized = true
	r.ExpirySeconds = 3600
	r.Description = description
	return r
}

func keys(c *tailscale.Client) *tailscale.Key {
	k, err := c.Keys().CreateAuthKey(ctx, keyRequest([]string{"tag:probe"}, "apiv2probe"))
	check(err, "create an auth key")
	expect(k.Key != "" && k.ID != "", "the created key must carry its secret and id: %+v", k)
	got, err := c.Keys().Get(ctx, k.ID)
	check(err, "get the auth key")
	expect(got.Key == "", "a read key must not show its secret")
	expect(got.Description == "apiv2probe" && slices.Equal(got.Capabilities.Devices.Create.Tags, []string{"tag:probe"}), "key read back: %+v", got)
	expect(got.Expires.After(time.Now().Add(50*time.Minute)), "key expiry about an hour ahead, got %v", got.Expires)
	list, err := c.Keys().List(ctx, true)
	check(err, "list auth keys")
	expect(slices.ContainsFunc(list, func(x tailscale.Key) bool { return x.ID == k.ID }), "the key list lacks %s", k.ID)
	_, err = c.Keys().CreateAuthKey(ctx, keyRequest(nil, ""))
	expectStatus(err, 400, "a key without tags")
	_, err = c.Keys().CreateAuthKey(ctx, keyRequest([]string{"not a tag"}, ""))
	expectStatus(err, 400, "a key with a malformed tag")
	spare, err := c.Keys().CreateAuthKey(ctx, keyRequest([]string{"tag:probe"}, "spare"))
	check(err, "create a second key")
	check(c.Keys().Delete(ctx, spare.ID), "delete the second key")
	_, err = c.Keys().Get(ctx, spare.ID)
	expect(tailscale.IsNotFound(err), "a deleted key must be not found, got %v", err)
	return k
}

func devices(c *tailscale.Client, hostname, route string) string {
	d := c.Devices()
	found, err := d.List(ctx, tailscale.WithFilter("hostname", []string{hostname}))
	check(err, "list devices filtered by hostname")
	expect(len(found) == 1, "want exactly the joined device for hostname %s, got %d", hostname, len(found))
	id := found[0].NodeID
	none, err := d.List(ctx, tailscale.WithFilter("hostname", []string{"no-such-host"}))
	check(err, "list devices with a filter that matches none")
	expect(len(none) == 0, "a filter matching nothing returned %d devices", len(none))
	all, err := d.List(ctx, tailscale.WithFields(tailscale.IncludeFieldsAll))
	check(err, "list devices with all fields")
	i := slices.IndexFunc(all, func(x tailscale.Device) bool { return x.NodeID == id })
	expect(i >= 0 && slices.Contains(all[i].AdvertisedRoutes, route), "fields=all must show the advertised route %s: %+v", route, all)

	dev, err := d.Get(ctx, id)
	check(err, "get the device")
	expect(dev.Hostname == hostname && len(dev.Addresses) == 2 && slices.Equal(dev.Tags, []string{"tag:probe"}), "device read back: %+v", dev)
	expect(dev.Authorized && dev.ConnectedToControl && dev.OS != "" && dev.ClientVersion != "", "device state: %+v", dev)
	_, err = d.Get(ctx, "999999")
	expect(tailscale.IsNotFound(err), "an unknown device must be not found, got %v", err)

	check(d.SetTags(ctx, id, []string{"tag:probe", "tag:probe2"}), "set tags")
	dev, err = d.Get(ctx, id)
	check(err, "get after set tags")
	expect(slices.Equal(dev.Tags, []string{"tag:probe", "tag:probe2"}), "tags after set: %v", dev.Tags)
	expectStatus(d.SetTags(ctx, id, []string{"bad tag"}), 400, "a malformed tag")

	routes, err := d.SubnetRoutes(ctx, id)
	check(err, "get routes")
	expect(slices.Equal(routes.Advertised, []string{route}) && len(routes.Enabled) == 0, "routes before approval: %+v", routes)
	check(d.SetSubnetRoutes(ctx, id, []string{route}), "enable the route")
	routes, err = d.SubnetRoutes(ctx, id)
	check(err, "get routes after approval")
	expect(slices.Equal(routes.Enabled, []string{route}), "routes after approval: %+v", routes)
	expectStatus(d.SetSubnetRoutes(ctx, id, []string{"10.0.0.0/33"}), 400, "an invalid route")

	check(d.SetAuthorized(ctx, id, true), "authorize")
	check(d.SetKey(ctx, id, tailscale.DeviceKey{KeyExpiryDisabled: false}), "turn key expiry on")
	dev, err = d.Get(ctx, id)
	check(err, "get after key expiry on")
	expect(!dev.KeyExpiryDisabled && dev.Expires.After(time.Now()), "key expiry on: %+v", dev)
	check(d.SetKey(ctx, id, tailscale.DeviceKey{KeyExpiryDisabled: true}), "turn key expiry off")
	dev, err = d.Get(ctx, id)
	check(err, "get after key expiry off")
	expect(dev.KeyExpiryDisabled, "key expiry off: %+v", dev)

	name := hostname + "-renamed"
	check(d.SetName(ctx, id, name), "rename")
	dev, err = d.GetWithAllFields(ctx, id)
	check(err, "get after rename")
	expect(strings.HasPrefix(dev.Name, name+"."), "name after rename: %s", dev.Name)
	expectStatus(d.SetName(ctx, id, "Not A Label!"), 400, "an invalid name")
	return id
}

func dns(c *tailscale.Client) {
	d := c.DNS()
	check(d.SetNameservers(ctx, []string{"9.9.9.9", "1.1.1.1"}), "set nameservers")
	ns, err := d.Nameservers(ctx)
	check(err, "get nameservers")
	expect(slices.Equal(ns, []string{"9.9.9.9", "1.1.1.1"}), "nameservers: %v", ns)
	expectStatus(d.SetNameservers(ctx, []string{"not-an-ip"}), 400, "an invalid nameserver")

	check(d.SetPreferences(ctx, tailscale.DNSPreferences{MagicDNS: true}), "set preferences")
	prefs, err := d.Preferences(ctx)
	check(err, "get preferences")
	expect(prefs.MagicDNS, "MagicDNS should be on")

	check(d.SetSearchPaths(ctx, []string{"corp.example"}), "set search paths")
	paths, err := d.SearchPaths(ctx)
	check(err, "get search paths")
	expect(slices.Equal(paths, []string{"corp.example"}), "search paths: %v", paths)

	check(d.SetSplitDNS(ctx, tailscale.SplitDNSRequest{"a.example": {"10.0.0.53"}}), "put split DNS")
	split, err := d.UpdateSplitDNS(ctx, tailscale.SplitDNSRequest{"b.example": {"10.0.0.54"}, "a.example": nil})
	check(err, "patch split DNS")
	expect(len(split) == 1 && slices.Equal(split["b.example"], []string{"10.0.0.54"}), "split DNS after patch: %v", split)
	split, err = d.SplitDNS(ctx)
	check(err, "get split DNS")
	expect(len(split) == 1 && slices.Equal(split["b.example"], []string{"10.0.0.54"}), "split DNS: %v", split)
}

// probePolicy lets everyone reach everything and keeps the probe's tags owned; its test passes.
func probePolicy(testAccept bool) tailscale.ACL {
	test := tailscale.ACLTest{Source: "alice@example.com"}
	if testAccept {
		test.Accept = []string{"tag:probe:80"}
	} else {
		test.Deny = []string{"tag:probe:80"}
	}
	return tailscale.ACL{
		ACLs:      []tailscale.ACLEntry{{Action: "accept", Source: []string{"*"}, Destination: []string{"*:*"}}},
		TagOwners: map[string][]string{"tag:probe": {"alice@example.com"}, "tag:probe2": {"alice@example.com"}},
		Tests:     []tailscale.ACLTest{test},
	}
}

const probeHuJSON = `// written by apiv2probe
{
  "tagOwners": { "tag:probe": ["alice@example.com"], "tag:probe2": ["alice@example.com"] },
  "acls": [{ "action": "accept", "src": ["*"], "dst": ["*:*"] }], // trailing comma next
}
`

func policy(c *tailscale.Client) {
	p := c.PolicyFile()
	raw, err := p.Raw(ctx)
	check(err, "get the policy as HuJSON")
	expect(raw.ETag != "" && raw.HuJSON != "", "raw policy: %+v", raw)
	acl, err := p.Get(ctx)
	check(err, "get the policy as JSON")
	expect(acl.ETag == raw.ETag && len(acl.TagOwners) > 0, "JSON policy: %+v", acl)

	check(p.Validate(ctx, probePolicy(true)), "validate a good policy")
	check(p.Validate(ctx, []tailscale.ACLTest{{Source: "alice@example.com", Accept: []string{"tag:probe:22"}}}), "validate tests against the live policy")
	err = p.Validate(ctx, probePolicy(false))
	expect(err != nil && strings.Contains(err.Error(), "test failed"), "validate a policy whose test fails: %v", err)
	err = p.Validate(ctx, "{ \"acls\": [ oops ] }")
	expect(err != nil && strings.Contains(err.Error(), ":1:"), "validate a syntax error (line:column): %v", err)

	expectStatus(p.Set(ctx, probePolicy(false), raw.ETag), 400, "writing a policy whose test fails")
	check(p.Set(ctx, probeHuJSON, raw.ETag), "write HuJSON with the current ETag")
	expectStatus(p.Set(ctx, probePolicy(true), raw.ETag), 412, "writing with a stale ETag")
	expectStatus(p.Set(ctx, probePolicy(true), "ts-default"), 412, "writing with ts-default after a policy was set")
	again, err := p.Raw(ctx)
	check(err, "read back the HuJSON")
	expect(again.HuJSON == probeHuJSON && again.ETag != raw.ETag, "the policy must be stored as sent, with a new ETag: %+v", again)
	out, err := p.SetAndGet(ctx, probePolicy(true), again.ETag)
	check(err, "write JSON with the current ETag")
	expect(out.ETag != "" && out.ETag != again.ETag && len(out.Tests) == 1, "set-and-get: %+v", out)
}

func users(c *tailscale.Client) {
	list, err := c.Users().List(ctx, nil, nil)
	check(err, "list users")
	i := slices.IndexFunc(list, func(u tailscale.User) bool { return u.LoginName == "alice" })
	expect(i >= 0, "alice is missing from %+v", list)
	u, err := c.Users().Get(ctx, list[i].ID)
	check(err, "get a user")
	expect(u.LoginName == "alice" && u.Role == tailscale.UserRoleMember && u.Status == tailscale.UserStatusActive, "user: %+v", u)
	shared := tailscale.UserTypeShared
	none, err := c.Users().List(ctx, &shared, nil)
	check(err, "list shared users")
	expect(len(none) == 0, "no user is shared, got %+v", none)
	_, err = c.Users().Get(ctx, "999999")
	expect(tailscale.IsNotFound(err), "an unknown user must be not found, got %v", err)
}

// refused checks that a client is held to its scopes: it may read devices, but not the policy or DNS, and
// it cannot obtain a token for a scope it was not granted.
func refused(c *tailscale.Client, u *url.URL, id, secret string) {
	_, err := c.Devices().List(ctx)
	check(err, "list devices with devices:core:read")
	_, err = c.PolicyFile().Raw(ctx)
	expectStatus(err, 403, "reading the policy without policy_file:read")
	expectStatus(c.DNS().SetNameservers(ctx, []string{"1.1.1.1"}), 403, "writing DNS without the dns scope")
	expectStatus(c.Devices().Delete(ctx, "1"), 403, "deleting a device with a read-only scope")
	greedy := &tailscale.Client{BaseURL: u, Auth: &tailscale.OAuth{ClientID: id, ClientSecret: secret, Scopes: []string{"policy_file"}}}
	_, err = greedy.Devices().List(ctx)
	expect(err != nil && strings.Contains(err.Error(), "invalid_scope"), "asking for an ungranted scope must fail with invalid_scope, got %v", err)
	wrong := &tailscale.Client{BaseURL: u, Auth: &tailscale.OAuth{ClientID: id, ClientSecret: secret + "x"}}
	_, err = wrong.Devices().List(ctx)
	expect(err != nil && strings.Contains(err.Error(), "invalid_client"), "a wrong secret must fail with invalid_client, got %v", err)
}

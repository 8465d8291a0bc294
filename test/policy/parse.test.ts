// Parser tests: HuJSON syntax, positions of errors (line:col), unknown and duplicate keys, unsupported sections.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseHujson } from '../../src/policy/hujson.ts';
import { parsePolicy, PolicyError } from '../../src/policy/index.ts';

test('HuJSON accepts comments and trailing commas, and records positions', () => {
  const n = parseHujson('// c\n{\n  /* x */ "a": [1, "b", true, null,],\n}', 'f');
  assert.equal(n.kind, 'object');
  if (n.kind !== 'object') return;
  assert.deepEqual(n.pos, { line: 2, col: 1 });
  assert.deepEqual(n.entries[0]!.keyPos, { line: 3, col: 11 });
  const arr = n.entries[0]!.value;
  assert.equal(arr.kind, 'array');
  if (arr.kind === 'array') assert.deepEqual(arr.items.map((i) => i.pos.col), [17, 20, 25, 31]);
});

const syntaxCases: [string, string, string][] = [
  ['{"a": 1', 'f:1:8: unterminated object', 'missing brace'],
  ['{\n  "a": tru\n}', 'f:2:8: unexpected character "t"', 'bad literal'],
  ['{\n  "a": "x\n}', 'f:2:8: unterminated string', 'newline in string'],
  ['{\n "a": 1,\n "a": 2\n}', 'f:3:2: duplicate key "a" (first defined at 2:2)', 'duplicate key'],
  ['{ /* open', 'f:1:3: unterminated /* comment', 'comment'],
  ['{"a": 1} x', 'f:1:10: unexpected content after the top-level value', 'trailing content'],
  ['{"a" 1}', 'f:1:6: expected ":" after key', 'missing colon'],
  ['[1 2]', 'f:1:4: expected "," or "]"', 'missing comma'],
  ['{"a": "\\q"}', 'f:1:8: invalid escape "\\q"', 'bad escape'],
  ['', 'f:1:1: unexpected end of input', 'empty'],
];
for (const [text, message, name] of syntaxCases) {
  test(`syntax error: ${name}`, () => {
    assert.throws(() => parseHujson(text, 'f'), (e: unknown) => e instanceof PolicyError && e.message === message);
  });
}

const shapeCases: [string, string][] = [
  ['{\n  "acl": []\n}', 'p:2:3: unknown key "acl" in the policy'],
  ['{\n  "derpMap": {}\n}', 'p:2:3: derpMap is not supported in the policy'],
  ['{\n  "postures": {}\n}', 'p:2:3: device posture ("postures") is not supported'],
  ['{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"], "bogus": 1}]}', 'p:1:62: unknown key "bogus" in an ACL'],
  ['{"acls": [{"action": "deny", "src": ["*"], "dst": ["*:*"]}]}', 'p:1:22: ACL action must be "accept"'],
  ['{"acls": [{"action": "accept", "src": ["*"]}]}', 'p:1:11: ACL is missing "dst"'],
  ['{"acls": [{"action": "accept", "src": "*", "dst": ["*:*"]}]}', 'p:1:39: src must be an array, not string'],
  ['{"acls": [{"action": "accept", "src": ["*"], "dst": ["*"]}]}', 'p:1:54: destination "*" needs ports'],
  ['{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:70000"]}]}', 'p:1:54: port 70000 out of range'],
  ['{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:90-80"]}]}', 'p:1:54: port range "90-80" is reversed'],
  ['{"acls": [{"action": "accept", "proto": "icmp", "src": ["*"], "dst": ["*:22"]}]}', 'p:1:71: protocol "icmp" has no ports'],
  ['{"acls": [{"action": "accept", "proto": "xyz", "src": ["*"], "dst": ["*:*"]}]}', 'p:1:41: unknown protocol "xyz"'],
  ['{"acls": [{"action": "accept", "src": ["10.0.0.1/8"], "dst": ["*:*"]}]}', 'p:1:40: prefix "10.0.0.1/8" has host bits set'],
  ['{"acls": [{"action": "accept", "src": ["autogroup:bogus"], "dst": ["*:*"]}]}', 'p:1:40: unknown autogroup "autogroup:bogus"'],
  ['{"grants": [{"src": ["*"], "dst": ["*"]}]}', 'p:1:13: grant needs a non-empty "ip" or "app"'],
  ['{"grants": [{"src": ["*"], "dst": ["*"], "ip": ["tcp:x"]}]}', 'p:1:49: invalid port "x"'],
  ['{"ssh": [{"action": "allow", "src": [], "dst": [], "users": []}]}', 'p:1:21: SSH action must be "accept" or "check"'],
  ['{"ssh": [{"action": "accept", "src": [], "dst": [], "users": [], "checkPeriod": "1h"}]}', 'p:1:81: checkPeriod is only allowed with action "check"'],
  ['{"ssh": [{"action": "check", "src": [], "dst": [], "users": [], "checkPeriod": "10x"}]}', 'p:1:80: checkPeriod "10x" must be "always" or a duration'],
  ['{"ssh": [{"action": "check", "src": [], "dst": [], "users": [], "checkPeriod": "200h"}]}', 'p:1:80: checkPeriod "200h" is above the maximum (168h)'],
  ['{"ssh": [{"action": "accept", "src": [], "dst": [], "users": [], "recorder": []}]}', 'p:1:66: SSH session recording ("recorder") is not supported'],
  ['{"hosts": {"a b": "10.0.0.1"}}', 'p:1:12: host name "a b" is invalid'],
  ['{"hosts": {"h": "not-an-ip"}}', 'p:1:17: host "h" "not-an-ip" is not an IP address or CIDR prefix'],
  ['{"groups": {"admins": []}}', 'p:1:13: groups key "admins" must look like "group:name"'],
  ['{"tests": [{"src": "alice@", "accept": ["web"]}]}', 'p:1:41: destination "web" needs ports'],
  ['{"tests": [{"src": "alice@", "accept": ["web:1-2"]}]}', 'p:1:41: test destination "web:1-2" needs a single port'],
  ['{"randomizeClientPort": "yes"}', 'p:1:25: randomizeClientPort must be true or false'],
  ['{"autoApprovers": {"routes": {"10.0.0.0/33": []}}}', 'p:1:31: invalid prefix length in "10.0.0.0/33"'],
  ['{"nodeAttrs": [{"target": ["*"]}]}', 'p:1:16: nodeAttrs entry needs "attr" or "ipPool"'],
  ['{"acls": [{"action": "accept", "src": ["alice"], "dst": ["*:*"]}]}', 'p:1:40: host "alice" is not defined in hosts (users are written "name@")'],
];
for (const [text, prefix] of shapeCases) {
  test(`shape error: ${prefix}`, () => {
    assert.throws(() => parsePolicy(text, 'p'), (e: unknown) => {
      assert.ok(e instanceof PolicyError);
      assert.ok(e.message.startsWith(prefix), `got: ${e.message}`);
      return true;
    });
  });
}

test('all problems are reported, each on its own line, in source order', () => {
  const text = '{\n "acls": [\n  {"action": "x", "src": ["*"], "dst": ["*:*"]},\n  {"action": "accept", "src": ["*"], "dst": ["*"]}\n ]\n}';
  try {
    parsePolicy(text, 'p');
    assert.fail('expected an error');
  } catch (e) {
    assert.ok(e instanceof PolicyError);
    assert.equal(e.errors.length, 2);
    assert.deepEqual(e.message.split('\n').map((l) => l.split(': ')[0]), ['p:3:14', 'p:4:46']);
    assert.equal(e.line, 3);
  }
});

test('"#" keys in rules are ignored; every section parses', () => {
  const p = parsePolicy(`{
    "groups": {"group:a": ["alice@"]},
    "hosts": {"h": "10.0.0.0/8", "h6": "fd00::/8"},
    "tagOwners": {"tag:x": ["group:a", "autogroup:admin"]},
    "ipsets": {"ipset:lan": ["10.0.0.0/8", "h"]},
    "acls": [{"#note": "x", "action": "accept", "proto": "tcp", "src": ["group:a"], "dst": ["[fd7a::1]:22", "fd7a::2/128:22", "h:80,443,1000-2000"]}],
    "grants": [{"src": ["*"], "dst": ["tag:x"], "ip": ["tcp:443", "icmp:*", "53"], "app": {"example.com/cap/x": [{"a": 1}]}}],
    "ssh": [{"action": "check", "src": ["group:a"], "dst": ["tag:x"], "users": ["root", "autogroup:nonroot", "localpart:*@example.com"], "checkPeriod": "always", "acceptEnv": ["GIT_*"]}],
    "autoApprovers": {"routes": {"10.0.0.0/8": ["tag:x"]}, "exitNode": ["group:a"]},
    "nodeAttrs": [{"target": ["autogroup:member"], "attr": ["magicdns-aaaa"]}],
    "tests": [{"src": "alice@", "proto": "tcp", "accept": ["tag:x:443"], "deny": ["tag:x:80"]}],
    "sshTests": [{"src": "alice@", "dst": ["tag:x"], "check": ["root"]}],
    "randomizeClientPort": true,
    "disableIPv4": false,
  }`, 'p');
  assert.equal(p.rules.length, 2);
  assert.deepEqual(p.rules[0]!.dst.map((d) => d.alias.text), ['fd7a::1', 'fd7a::2/128', 'h']);
  assert.deepEqual(p.rules[0]!.dst[2]!.specs[0]!.ports, [{ first: 80, last: 80 }, { first: 443, last: 443 }, { first: 1000, last: 2000 }]);
  assert.deepEqual(p.rules[1]!.dst[0]!.specs.map((s) => s.protos), [[6], [1], undefined]);
  assert.equal(p.ssh[0]!.checkPeriodMs, 0);
  assert.equal(p.randomizeClientPort, true);
});

/** The desired state of a tailnet, as code declares it, and its validation (every problem names the path to the bad field). */
import { isValidCidr } from '../net/ip.ts';

export interface DesiredUser {
  /** Login name; matches the live user of the same name. */
  readonly name: string;
  readonly displayName?: string;
  readonly email?: string;
}

/**
 * A node the code expects; nodes register themselves, so the engine only edits them. Matched to a live node by
 * `name` against its MagicDNS name first, then its hostname. An attribute left out is not managed.
 */
export interface DesiredNode {
  readonly name: string;
  readonly givenName?: string;
  readonly tags?: readonly string[];
  readonly approvedRoutes?: readonly string[];
  /** true: the node key never expires; false: it expires (re-enabled with a 180-day expiry). */
  readonly keyExpiryDisabled?: boolean;
}

export interface AclRule {
  readonly action: 'accept';
  readonly src: readonly string[];
  readonly dst: readonly string[];
  readonly proto?: string;
}

export interface Grant {
  readonly src: readonly string[];
  readonly dst: readonly string[];
  readonly ip?: readonly string[];
  readonly app?: Readonly<Record<string, readonly unknown[]>>;
  readonly via?: readonly string[];
}

export interface SshRule {
  readonly action: 'accept' | 'check';
  readonly src: readonly string[];
  readonly dst: readonly string[];
  readonly users: readonly string[];
  readonly checkPeriod?: string;
  readonly acceptEnv?: readonly string[];
}

export interface AutoApprovers {
  /** Route prefix -> who may advertise it without an admin's approval. */
  readonly routes?: Readonly<Record<string, readonly string[]>>;
  readonly exitNode?: readonly string[];
}

export interface NodeAttr {
  readonly target: readonly string[];
  readonly attr: readonly string[];
}

export interface PolicyTest {
  readonly src: string;
  readonly proto?: string;
  readonly accept?: readonly string[];
  readonly deny?: readonly string[];
}

export interface SshTest {
  readonly src: string;
  readonly dst: readonly string[];
  readonly accept?: readonly string[];
  readonly check?: readonly string[];
  readonly deny?: readonly string[];
}

/** The shape of GET /api/v1/dns; fields left out are not managed. */
export interface DesiredDns {
  readonly magicDns?: boolean;
  readonly baseDomain?: string;
  readonly nameservers?: readonly string[];
  readonly overrideLocalDns?: boolean;
  readonly splitDns?: Readonly<Record<string, readonly string[]>>;
  readonly searchDomains?: readonly string[];
  readonly extraRecords?: readonly { name: string; type: 'A' | 'AAAA'; value: string }[];
}

/**
 * A pre-auth key. The server keeps only a prefix of the secret, so a desired key matches any live, unexpired key
 * with the same signature (user or tags, reusable, ephemeral); keys are create-only: never updated nor deleted.
 */
export interface DesiredPreAuthKey {
  /** Stable name in code (the server does not store it). */
  readonly name: string;
  readonly user?: string;
  readonly tags?: readonly string[];
  readonly reusable?: boolean;
  readonly ephemeral?: boolean;
  /** A lifetime from creation ("90d", "12h", "30m", "2w") or an RFC 3339 time. */
  readonly expiration?: string;
}

export interface DesiredState {
  /** Delete live users the state does not declare (default false: they are reported as unmanaged). */
  readonly prune?: boolean;
  readonly users?: readonly DesiredUser[];
  /** "group:name" -> member user names ("alice" is written "alice@" in the policy). */
  readonly groups?: Readonly<Record<string, readonly string[]>>;
  /** "tag:name" -> owners (users, groups, tags, autogroups); rendered as the policy's tagOwners. */
  readonly tags?: Readonly<Record<string, readonly string[]>>;
  readonly hosts?: Readonly<Record<string, string>>;
  readonly acls?: readonly AclRule[];
  readonly grants?: readonly Grant[];
  readonly ssh?: readonly SshRule[];
  readonly autoApprovers?: AutoApprovers;
  readonly nodeAttrs?: readonly NodeAttr[];
  readonly tests?: readonly PolicyTest[];
  readonly sshTests?: readonly SshTest[];
  readonly dns?: DesiredDns;
  readonly nodes?: readonly DesiredNode[];
  readonly preAuthKeys?: readonly DesiredPreAuthKey[];
}

/** The sections that make up the policy document; the policy is managed when any of them is declared. */
export const policySections = ['groups', 'tags', 'hosts', 'acls', 'grants', 'ssh', 'autoApprovers', 'nodeAttrs', 'tests', 'sshTests'] as const;

export interface Problem {
  readonly path: string;
  readonly message: string;
}

export class DesiredStateError extends Error {
  constructor(
    readonly problems: readonly Problem[],
    source = 'desired state',
  ) {
    super(`invalid ${source}:\n${problems.map((p) => `  ${p.path || '(top level)'}: ${p.message}`).join('\n')}`);
    this.name = 'DesiredStateError';
  }
}

const userName = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,62}$/;
const tagName = /^tag:[a-z0-9][a-z0-9-]*$/i;
const groupName = /^group:[A-Za-z0-9][A-Za-z0-9._-]*$/;
const dnsLabel = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const lifetime = /^[1-9][0-9]*[smhdw]$/;

type Check = (v: unknown, path: string) => void;

/** Validates an untrusted value (a parsed file, a module's export, a synthesized object) as a DesiredState. */
export function validateDesired(value: unknown, source?: string): DesiredState {
  const problems: Problem[] = [];
  const fail = (path: string, message: string) => void problems.push({ path, message });
  const at = (path: string, key: string | number) =>
    typeof key === 'number' ? `${path}[${key}]` : /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? (path ? `${path}.${key}` : key) : `${path}[${JSON.stringify(key)}]`;

  const string = (pattern?: RegExp, what?: string): Check => (v, path) => {
    if (typeof v !== 'string') return fail(path, `expected a string, got ${typeOf(v)}`);
    if (pattern && !pattern.test(v)) fail(path, `${JSON.stringify(v)} is not ${what}`);
  };
  const boolean: Check = (v, path) => void (typeof v !== 'boolean' && fail(path, `expected true or false, got ${typeOf(v)}`));
  const list = (item: Check, nonEmpty = false): Check => (v, path) => {
    if (!Array.isArray(v)) return fail(path, `expected a list, got ${typeOf(v)}`);
    if (nonEmpty && v.length === 0) fail(path, 'must not be empty');
    v.forEach((x, i) => item(x, at(path, i)));
  };
  const strings = (nonEmpty = false) => list(string(), nonEmpty);
  const map = (key: (k: string, path: string) => void, val: Check): Check => (v, path) => {
    if (!isPlain(v)) return fail(path, `expected an object, got ${typeOf(v)}`);
    for (const [k, x] of Object.entries(v)) {
      key(k, at(path, k));
      val(x, at(path, k));
    }
  };
  const keyLike = (pattern: RegExp, what: string) => (k: string, path: string) =>
    void (!pattern.test(k) && fail(path, `key ${JSON.stringify(k)} is not ${what}`));
  const object = (fields: Record<string, Check>, required: string[] = []): Check => (v, path) => {
    if (!isPlain(v)) return fail(path, `expected an object, got ${typeOf(v)}`);
    for (const k of Object.keys(v)) if (!(k in fields)) fail(at(path, k), `unknown field (expected one of: ${Object.keys(fields).join(', ')})`);
    for (const k of required) if (v[k] === undefined) fail(at(path, k), 'is required');
    for (const [k, check] of Object.entries(fields)) if (v[k] !== undefined) check(v[k], at(path, k));
  };
  const unique = (field: string): Check => (v, path) => {
    if (!Array.isArray(v)) return;
    const seen = new Set<unknown>();
    v.forEach((x, i) => {
      const name = isPlain(x) ? x[field] : undefined;
      if (name !== undefined && seen.has(name)) fail(at(at(path, i), field), `duplicate ${field} ${JSON.stringify(name)}`);
      seen.add(name);
    });
  };
  const both = (...checks: Check[]): Check => (v, path) => checks.forEach((c) => c(v, path));
  const prefix: Check = (v, path) => void (typeof v === 'string' && !isValidCidr(v) && fail(path, `${JSON.stringify(v)} is not a CIDR prefix such as 10.0.0.0/24`));
  const timeOrLifetime: Check = (v, path) => {
    if (typeof v !== 'string') return fail(path, `expected a string, got ${typeOf(v)}`);
    if (!lifetime.test(v) && Number.isNaN(Date.parse(v))) fail(path, `${JSON.stringify(v)} is neither a lifetime like "90d" nor an RFC 3339 time`);
  };
  const preAuthKey: Check = (v, path) => {
    object(
      { name: string(), user: string(userName, 'a user name'), tags: list(string(tagName, 'a tag like "tag:name"'), true), reusable: boolean, ephemeral: boolean, expiration: timeOrLifetime },
      ['name'],
    )(v, path);
    if (isPlain(v) && (v.user === undefined) === (v.tags === undefined)) fail(path, 'give exactly one of "user" or "tags"');
  };

  object(
    {
      prune: boolean,
      users: both(list(object({ name: string(userName, 'a valid user name'), displayName: string(), email: string() }, ['name'])), unique('name')),
      groups: map(keyLike(groupName, 'a group name like "group:name"'), strings()),
      tags: map(keyLike(tagName, 'a tag like "tag:name"'), strings()),
      hosts: map(keyLike(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'a host name'), string()),
      acls: list(object({ action: string(/^accept$/, '"accept"'), src: strings(true), dst: strings(true), proto: string() }, ['action', 'src', 'dst'])),
      grants: list(object({ src: strings(true), dst: strings(true), ip: strings(), app: map(() => {}, list(() => {})), via: strings() }, ['src', 'dst'])),
      ssh: list(
        object(
          { action: string(/^(accept|check)$/, '"accept" or "check"'), src: strings(true), dst: strings(true), users: strings(true), checkPeriod: string(), acceptEnv: strings() },
          ['action', 'src', 'dst', 'users'],
        ),
      ),
      autoApprovers: object({ routes: map((k, p) => prefix(k, p), strings()), exitNode: strings() }),
      nodeAttrs: list(object({ target: strings(true), attr: strings(true) }, ['target', 'attr'])),
      tests: list(object({ src: string(), proto: string(), accept: strings(), deny: strings() }, ['src'])),
      sshTests: list(object({ src: string(), dst: strings(true), accept: strings(), check: strings(), deny: strings() }, ['src', 'dst'])),
      dns: object({
        magicDns: boolean,
        baseDomain: string(),
        nameservers: strings(),
        overrideLocalDns: boolean,
        splitDns: map(() => {}, strings()),
        searchDomains: strings(),
        extraRecords: list(object({ name: string(), type: string(/^(A|AAAA)$/, '"A" or "AAAA"'), value: string() }, ['name', 'type', 'value'])),
      }),
      nodes: both(
        list(
          object(
            {
              name: string(),
              givenName: string(dnsLabel, 'a DNS label (a-z, 0-9, "-")'),
              tags: list(string(tagName, 'a tag like "tag:name"')),
              approvedRoutes: list(both(string(), prefix)),
              keyExpiryDisabled: boolean,
            },
            ['name'],
          ),
        ),
        unique('name'),
      ),
      preAuthKeys: both(list(preAuthKey), unique('name')),
    },
  )(value, '');
  if (problems.length > 0) throw new DesiredStateError(problems, source);
  return value as DesiredState;
}

export function isPlain(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
}

/** Reads a topology file (the JSON `tailplane nodes export` writes) and checks its shape field by field. */
import { readFileSync } from 'node:fs';
import type { Topology, TopologyNode, TopologyUser } from '../policy/index.ts';
import { CliError } from './args.ts';

type Obj = Record<string, unknown>;

/** Throws a CliError naming the file and the field (`topo.json: nodes[2].ipv4: expected a string`). */
export function readTopologyFile(file: string): Topology {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new CliError(`cannot read topology ${file}: ${(err as Error).message}`);
  }
  const fail = (where: string, what: string): never => {
    throw new CliError(`${file}: ${where}: expected ${what}`);
  };
  const root = object(data, 'the file', fail);
  const users = list(root.users, 'users', fail).map((u, i) => user(object(u, `users[${i}]`, fail), `users[${i}]`, fail));
  const nodes = list(root.nodes, 'nodes', fail).map((n, i) => node(object(n, `nodes[${i}]`, fail), `nodes[${i}]`, fail));
  // The compiler indexes nodes by id and people name them on the command line: both must be unique.
  nodes.forEach((n, i) => {
    if (nodes.findIndex((m) => m.id === n.id) !== i) fail(`nodes[${i}].id`, `a unique id (${n.id} is repeated)`);
    if (nodes.findIndex((m) => m.name === n.name) !== i) fail(`nodes[${i}].name`, `a unique name (${n.name} is repeated)`);
  });
  return { users, nodes };
}

type Fail = (where: string, what: string) => never;

function object(v: unknown, where: string, fail: Fail): Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : fail(where, 'an object');
}

function list(v: unknown, where: string, fail: Fail): unknown[] {
  return Array.isArray(v) ? v : fail(where, 'an array');
}

const string = (v: unknown, where: string, fail: Fail): string => (typeof v === 'string' ? v : fail(where, 'a string'));
const id = (v: unknown, where: string, fail: Fail): number => (Number.isSafeInteger(v) ? (v as number) : fail(where, 'an integer id'));
const strings = (v: unknown, where: string, fail: Fail): string[] => list(v, where, fail).map((s, i) => string(s, `${where}[${i}]`, fail));

/** A user; `idpGroups` (exported when oidc.policy_groups is on) keeps offline checks seeing the live group members. */
function user(u: Obj, where: string, fail: Fail): TopologyUser {
  return {
    id: id(u.id, `${where}.id`, fail),
    name: string(u.name, `${where}.name`, fail),
    ...(u.email === undefined ? {} : { email: string(u.email, `${where}.email`, fail) }),
    ...(u.idpGroups === undefined ? {} : { idpGroups: strings(u.idpGroups, `${where}.idpGroups`, fail) }),
  };
}

function node(n: Obj, where: string, fail: Fail): TopologyNode {
  const base = {
    id: id(n.id, `${where}.id`, fail),
    name: string(n.name, `${where}.name`, fail),
    tags: strings(n.tags ?? [], `${where}.tags`, fail),
    ipv4: string(n.ipv4 ?? '', `${where}.ipv4`, fail),
    ipv6: string(n.ipv6 ?? '', `${where}.ipv6`, fail),
    approvedRoutes: strings(n.approvedRoutes ?? [], `${where}.approvedRoutes`, fail),
  };
  return n.user === undefined ? base : { ...base, user: string(n.user, `${where}.user`, fail) };
}

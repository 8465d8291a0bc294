/** tailplane as a bench server: a `tailplane serve` child process driven through its admin API. */
import { api, spawnServer, type ChildServer } from '../../helpers/server.ts';
import { blockOf, isTagged, policyText, type PolicyKind } from '../policy.ts';
import { keyTarget, type BenchKeys, type BenchServer } from './server.ts';

/**
 * Server env: no STUN port (other tests may hold 3478); with BENCH_PROFILE_DIR set, the server preloads the
 * CPU profiler (node refuses --cpu-prof in NODE_OPTIONS) and writes a .cpuprofile there when it exits;
 * BENCH_SERVER_NODE_OPTIONS adds node options, e.g. a heap limit above Node's default (~4 GB) for 50,000 nodes.
 */
const nodeOptions = [
  ...(process.env.BENCH_PROFILE_DIR ? [`--import ${import.meta.resolve('tsx')}`, `--import ${import.meta.resolve('../cpu-profile.ts')}`] : []),
  ...(process.env.BENCH_SERVER_NODE_OPTIONS ? [process.env.BENCH_SERVER_NODE_OPTIONS] : []),
];
export const serverEnv: Record<string, string> = {
  TAILPLANE_DERP_STUN_LISTEN_ADDR: '',
  ...(nodeOptions.length ? { NODE_OPTIONS: nodeOptions.join(' ') } : {}),
};

async function must(server: ChildServer, method: string, path: string, body?: unknown) {
  const r = await api(server, method, path, body);
  if (r.status !== 200) throw new Error(`${method} ${path}: HTTP ${r.status} ${JSON.stringify(r.json)}`);
  return r.json;
}

/** Users, the policy and reusable pre-auth keys: per block a user key, an ephemeral one and a tag key (grouped). */
export async function provision(server: ChildServer, kind: PolicyKind, blocks: number): Promise<BenchKeys> {
  const key = async (body: object): Promise<string> => (await must(server, 'POST', '/api/v1/preauthkey', { reusable: true, ...body })).preAuthKey.key;
  const admin = (await must(server, 'POST', '/api/v1/user', { name: 'admin' })).user;
  if (kind === 'allow-all') {
    const [k, eph] = [await key({ user: String(admin.id) }), await key({ user: String(admin.id), ephemeral: true })];
    return { node: () => k, ephemeral: () => eph };
  }
  const users: { key: string; ephemeral: string }[] = [];
  for (let k = 0; k < blocks; k++) {
    const { user } = await must(server, 'POST', '/api/v1/user', { name: `u${k}` });
    users.push({ key: await key({ user: String(user.id) }), ephemeral: await key({ user: String(user.id), ephemeral: true }) });
  }
  await must(server, 'PUT', '/api/v1/policy', { policy: policyText(kind, blocks, 0) });
  const tags: string[] = [];
  for (let k = 0; k < blocks; k++) tags.push(await key({ aclTags: [`tag:t${k}`] }));
  return {
    node: (i) => (isTagged(i) ? tags[blockOf(i)]! : users[blockOf(i)]!.key),
    ephemeral: (i) => users[blockOf(i)]!.ephemeral,
  };
}

export async function startTailplane(): Promise<BenchServer> {
  let server = await spawnServer({ env: serverEnv });
  return {
    name: 'tailplane',
    target: () => keyTarget(server.url),
    pid: () => server.process.pid!,
    provision: (kind, blocks) => provision(server, kind, blocks),
    setPolicy: async (text) => void (await must(server, 'PUT', '/api/v1/policy', { policy: text })),
    stop: async () => {
      await server.stop();
      // A request the server failed is a bug the scenario figures would hide: show it.
      const failed = server.log().split('\n').filter((l) => l.includes('control request failed'));
      if (failed.length) console.error(`tailplane: ${failed.length} control requests failed, first: ${failed[0]}`);
    },
    async start() {
      server = await spawnServer({ dataDir: server.dataDir, env: serverEnv });
    },
  };
}

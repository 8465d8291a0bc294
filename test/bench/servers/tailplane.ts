/** tailplane as a bench server: a `tailplane serve` child process driven through its admin API. */
import { api, spawnServer, type ChildServer } from '../../helpers/server.ts';
import { blockOf, isTagged, policyText, type PolicyKind } from '../policy.ts';
import { keyTarget, type BenchServer } from './server.ts';

/**
 * Server env: no STUN port (other tests may hold 3478); with BENCH_PROFILE_DIR set, the server preloads the
 * CPU profiler (node refuses --cpu-prof in NODE_OPTIONS) and writes a .cpuprofile there when it exits.
 */
const serverEnv: Record<string, string> = {
  TAILPLANE_DERP_STUN_LISTEN_ADDR: '',
  ...(process.env.BENCH_PROFILE_DIR
    ? { NODE_OPTIONS: `--import ${import.meta.resolve('tsx')} --import ${import.meta.resolve('../cpu-profile.ts')}` }
    : {}),
};

async function must(server: ChildServer, method: string, path: string, body?: unknown) {
  const r = await api(server, method, path, body);
  if (r.status !== 200) throw new Error(`${method} ${path}: HTTP ${r.status} ${JSON.stringify(r.json)}`);
  return r.json;
}

/** Users, the policy and reusable pre-auth keys: per block a user key and a tag key (grouped), or one key. */
async function provision(server: ChildServer, kind: PolicyKind, blocks: number): Promise<(index: number) => string> {
  await must(server, 'POST', '/api/v1/user', { name: 'admin' });
  const text = policyText(kind, blocks, 0);
  if (kind === 'allow-all') {
    const { preAuthKey } = await must(server, 'POST', '/api/v1/preauthkey', { user: '1', reusable: true });
    return () => preAuthKey.key;
  }
  const keys: { user: string; tag: string }[] = [];
  for (let k = 0; k < blocks; k++) {
    const { user } = await must(server, 'POST', '/api/v1/user', { name: `u${k}` });
    keys.push({ user: '', tag: '' });
    keys[k]!.user = (await must(server, 'POST', '/api/v1/preauthkey', { user: String(user.id), reusable: true })).preAuthKey.key;
  }
  await must(server, 'PUT', '/api/v1/policy', { policy: text });
  for (let k = 0; k < blocks; k++) {
    keys[k]!.tag = (await must(server, 'POST', '/api/v1/preauthkey', { reusable: true, aclTags: [`tag:t${k}`] })).preAuthKey.key;
  }
  return (i) => (isTagged(i) ? keys[blockOf(i)]!.tag : keys[blockOf(i)]!.user);
}

export async function startTailplane(): Promise<BenchServer> {
  let server = await spawnServer({ env: serverEnv });
  return {
    name: 'tailplane',
    target: () => keyTarget(server.url),
    pid: () => server.process.pid!,
    provision: (kind, blocks) => provision(server, kind, blocks),
    setPolicy: async (text) => void (await must(server, 'PUT', '/api/v1/policy', { policy: text })),
    stop: async () => void (await server.stop()),
    async start() {
      server = await spawnServer({ dataDir: server.dataDir, env: serverEnv });
    },
  };
}

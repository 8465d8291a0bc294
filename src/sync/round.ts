/**
 * One sync round: read the desired state (a Git commit or a file), plan it against the live tailnet, and in
 * `enforce` mode apply the whole plan in one batch — only when every part of it is valid (the policy validates
 * and its tests pass), and under the write lease so no person's `apply` interleaves. A failed round writes
 * nothing; it names the commit and the `file:line:col` to fix.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { extname, join, relative, resolve } from 'node:path';
import type { AdminClient } from '../client/admin-client.ts';
import { tailnetApi } from '../client/tailnet-api.ts';
import {
  applyPlanAtomically,
  driftReport,
  loadDesired,
  planChanges,
  readLive,
  renderDriftMarkdown,
  renderPolicy,
  type DesiredState,
  type DriftItem,
} from '../engine/index.ts';
import { fetchCommit, type GitSource } from './git.ts';
import { locateProblems, type Located } from './position.ts';

export type SyncMode = 'enforce' | 'report';

export type SyncSource = ({ readonly kind: 'git'; readonly path: string } & GitSource) | { readonly kind: 'file'; readonly file: string };

/** The lease every engine writer (sync rounds, `tailplane apply`) takes for its writes. */
export const writeLease = 'apply';

export interface RoundOutcome {
  readonly startedAt: string;
  readonly finishedAt: string;
  /** The Git commit, or `sha256:<hex>` of the file's content. */
  readonly revision?: string;
  /** in-sync: nothing to do; applied: drift corrected; drift: found, reported only; failed: nothing written. */
  readonly result: 'in-sync' | 'applied' | 'drift' | 'failed';
  /** What differed from the desired state when the round started (applied or reported). */
  readonly drift: readonly DriftItem[];
  readonly markdown?: string;
  readonly error?: { readonly message: string; readonly problems: readonly Located[] };
  /** Ids of the pre-auth keys this round created (their secrets are never reported). */
  readonly createdKeys?: readonly string[];
}

export interface RoundDeps {
  readonly client: AdminClient;
  readonly source: SyncSource;
  readonly mode: SyncMode;
  /** This process's lease-holder name, and how long its write lease lasts (a crashed holder blocks no longer). */
  readonly holder: string;
  readonly leaseSeconds: number;
}

interface Loaded {
  readonly revision: string;
  /** The file as people name it: the path inside the repository, or the path given. */
  readonly display: string;
  readonly text?: string;
  readonly desired: DesiredState;
}

class RoundError extends Error {
  constructor(
    message: string,
    readonly revision: string | undefined,
    readonly problems: readonly Located[] = [],
  ) {
    super(message);
  }
}

const isModule = (file: string) => ['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs'].includes(extname(file));

async function load(source: SyncSource): Promise<Loaded> {
  let file: string;
  let revision: string;
  let display: string;
  let bytes: Buffer | undefined;
  if (source.kind === 'git') {
    const { commit, dir } = await fetchCommit(source);
    file = join(dir, source.path);
    if (relative(dir, file).startsWith('..')) throw new RoundError(`--path ${source.path} leaves the repository`, commit);
    revision = commit;
    display = source.path;
  } else {
    file = resolve(source.file);
    display = source.file;
    // Read once: the revision must name exactly the content applied, even when the file is being rewritten.
    bytes = readBytes(file, display, undefined);
    revision = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  }
  const text = isModule(file) ? undefined : (bytes ?? readBytes(file, display, revision)).toString('utf8');
  try {
    const desired = await loadDesired(file, { version: revision, text });
    return { revision, display, text, desired };
  } catch (err) {
    // Messages quote the checked-out path; people know the file by its path in the repository.
    const message = (err as Error).message.split(file).join(display);
    const problems = [...message.matchAll(/(\S+):(\d+):(\d+): (.*)/g)].map((m) => ({
      where: `${m[1]}:${m[2]}:${m[3]}`, file: m[1], line: Number(m[2]), col: Number(m[3]), detail: m[4]!,
    }));
    throw new RoundError(message, revision, problems);
  }
}

function readBytes(file: string, display: string, revision: string | undefined): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new RoundError(`cannot read ${display}: ${(err as Error).message}`, revision);
  }
}

/** Plans the loaded state and, in enforce mode, applies the whole plan in one batch fenced by the write lease. */
async function planAndApply(deps: RoundDeps, loaded: Loaded, startedAt: string): Promise<RoundOutcome> {
  const { revision } = loaded;
  const live = await readLive(deps.client);
  const plan = planChanges(loaded.desired, live);
  const report = driftReport(plan, { source: `${loaded.display}@${shortRev(revision)}` });
  const base = { startedAt, revision, drift: report.items, markdown: renderDriftMarkdown(report) };
  const finished = () => new Date().toISOString();
  const locate = (problems: readonly string[]) => locateProblems(problems, renderPolicy(loaded.desired) ?? '', loaded.display, loaded.text);
  const policy = plan.changes.find((c) => c.kind === 'policy');
  if (policy?.kind === 'policy' && policy.problems.length > 0) {
    const problems = locate(policy.problems);
    throw new RoundError(`the desired policy is refused:\n${problems.map((p) => `${p.where}: ${p.detail}`).join('\n')}`, revision, problems);
  }
  if (plan.changes.length === 0) return { ...base, result: 'in-sync', finishedAt: finished() };
  if (deps.mode === 'report') return { ...base, result: 'drift', finishedAt: finished() };
  const lease = { name: writeLease, holder: deps.holder };
  const result = await applyPlanAtomically(deps.client, plan, { policyEtag: live.policyEtag, lease, revision }).catch((err: Error) => {
    throw new RoundError(`the server refused the plan: ${err.message}`, revision, locate([err.message]));
  });
  return { ...base, result: 'applied', createdKeys: result.createdKeys.map((k) => k.id), finishedAt: finished() };
}

/** Runs one round; never throws (a failure is the outcome `failed`). */
export async function runRound(deps: RoundDeps): Promise<RoundOutcome> {
  const startedAt = new Date().toISOString();
  let revision: string | undefined;
  try {
    const loaded = await load(deps.source);
    revision = loaded.revision;
    if (deps.mode === 'report') return await planAndApply(deps, loaded, startedAt);
    // Held from reading the live state to the batch: a person's apply cannot land in between.
    const api = tailnetApi(deps.client);
    await api.acquireLease(writeLease, deps.holder, deps.leaseSeconds);
    try {
      return await planAndApply(deps, loaded, startedAt);
    } finally {
      await api.releaseLease(writeLease, deps.holder).catch(() => undefined);
    }
  } catch (err) {
    const problems = err instanceof RoundError ? err.problems : [];
    return {
      startedAt,
      finishedAt: new Date().toISOString(),
      revision: err instanceof RoundError ? (err.revision ?? revision) : revision,
      result: 'failed',
      drift: [],
      error: { message: (err as Error).message, problems },
    };
  }
}

export const shortRev = (rev: string) => (rev.startsWith('sha256:') ? rev.slice(0, 19) : rev.slice(0, 12));

/**
 * Fetches one ref of a Git repository with the real `git`: a shallow fetch into a cache repository, each commit
 * checked out into its own tree (so a TypeScript desired state is imported fresh per commit). Credentials come
 * from the environment and never reach a log: URLs are shown without their user:password part, git never
 * prompts, and an HTTPS token travels in git's environment config, not on the command line.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export interface GitSource {
  /** A URL (https://, ssh://, git@host:path, file://) or a local path. */
  readonly url: string;
  readonly ref: string;
  /** Where the cache repository and the checked-out trees live. */
  readonly cacheDir: string;
  /** HTTPS token (TAILPLANE_SYNC_GIT_TOKEN) sent as basic auth, user TAILPLANE_SYNC_GIT_USER or "git". */
  readonly token?: string;
  readonly tokenUser?: string;
  /** SSH private key file (TAILPLANE_SYNC_GIT_SSH_KEY). */
  readonly sshKey?: string;
}

export interface Checkout {
  readonly commit: string;
  /** The commit's tree on disk. */
  readonly dir: string;
}

export class GitError extends Error {}

/** The URL as it may be shown: without a password or token. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/]*@/i, '$1***@');
}

/** Every URL-looking credential in a text (git's own messages quote the URL) is masked. */
const redact = (text: string, secrets: readonly string[]) =>
  secrets.filter(Boolean).reduce((t, s) => t.split(s).join('***'), text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^@/\s]*@/gi, '$1***@'));

function gitEnv(src: GitSource): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_ASKPASS: 'true', LC_ALL: 'C' };
  if (src.sshKey) env.GIT_SSH_COMMAND = `ssh -i '${src.sshKey.replace(/'/g, `'\\''`)}' -o IdentitiesOnly=yes -o BatchMode=yes`;
  else env.GIT_SSH_COMMAND ??= 'ssh -o BatchMode=yes';
  if (src.token) {
    const basic = Buffer.from(`${src.tokenUser ?? 'git'}:${src.token}`).toString('base64');
    env.GIT_CONFIG_COUNT = '1';
    env.GIT_CONFIG_KEY_0 = 'http.extraHeader';
    env.GIT_CONFIG_VALUE_0 = `Authorization: Basic ${basic}`;
  }
  return env;
}

function git(src: GitSource, args: string[], cwd?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('git', args, { cwd, env: gitEnv(src), timeout: 120_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout.trim());
      const why = (stderr || err.message).trim().split('\n').slice(-3).join(' ');
      const command = args.find((a) => !a.startsWith('-') && !a.includes('/'));
      reject(new GitError(redact(`git ${command} failed: ${why}`, [src.token ?? ''])));
    });
  });
}

/** Fetches `ref` (depth 1) and checks its commit out into `<cacheDir>/trees/<sha>`. */
export async function fetchCommit(src: GitSource): Promise<Checkout> {
  const repo = join(src.cacheDir, 'repo.git');
  if (!existsSync(join(repo, 'HEAD'))) {
    mkdirSync(repo, { recursive: true });
    await git(src, ['init', '--bare', '--quiet', repo]);
  }
  // The URL goes on the command line of a local process only; its messages are redacted above.
  await git(src, ['--git-dir', repo, 'fetch', '--quiet', '--depth=1', '--no-tags', '--force', src.url, `${src.ref}`]);
  const commit = await git(src, ['--git-dir', repo, 'rev-parse', 'FETCH_HEAD^{commit}']);
  const trees = join(src.cacheDir, 'trees');
  const dir = join(trees, commit);
  if (!existsSync(join(dir, '.complete'))) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    await git(src, ['--git-dir', repo, '--work-tree', dir, 'checkout', '--quiet', '--force', commit, '--', '.']);
    mkdirSync(join(dir, '.complete'));
  }
  pruneTrees(trees, commit);
  return { commit, dir };
}

/** Rounds run one at a time, so only the current commit's tree is still needed. */
function pruneTrees(trees: string, current: string): void {
  for (const d of readdirSync(trees)) if (d !== current) rmSync(join(trees, d), { recursive: true, force: true });
}

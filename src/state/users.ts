/**
 * Users of the tailnet: create, rename, update, delete (refused while the user still owns nodes).
 */
import type { User } from '../domain/types.ts';
import { isPolicyName } from '../policy/index.ts';
import { fieldChanges, idpGroupChanges, type AuditNote } from '../audit/derive.ts';
import type { Core } from './core.ts';
import { conflict, invalid, notFound } from './errors.ts';

const validName = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,62}$/;

/** C0 and C1 control characters (NUL, ESC, …) and DEL: never part of a name, and dangerous in a terminal. */
const controlChars = /[\u0000-\u001f\u007f-\u009f]/;
const maxDisplayName = 256;
/** The longest address SMTP can carry. */
const maxEmail = 254;

/** Display names and e-mail addresses are printed by the CLI and the web page: short, printable text only. */
function checkProfile(p: { displayName?: string; email?: string }): void {
  const check = (field: string, value: string | undefined, max: number) => {
    if (value === undefined) return;
    if (value.length > max) throw invalid(`${field} is ${value.length} characters long: at most ${max} are allowed`);
    if (controlChars.test(value)) throw invalid(`${field} contains a control character (such as NUL or ESC): use printable text`);
  };
  check('displayName', p.displayName, maxDisplayName);
  check('email', p.email, maxEmail);
  if (p.email && /\s/.test(p.email)) throw invalid('email must not contain spaces');
}

export function createUsers(core: Core, now: () => Date) {
  const { ix } = core;
  const byName = (name: string) => [...ix.users.values()].find((u) => u.name === name);
  const get = (id: number): User => {
    const u = ix.users.get(id);
    if (!u) throw notFound(`user ${id} not found`);
    return u;
  };
  const checkName = (name: string) => {
    if (!validName.test(name)) {
      throw invalid(`invalid user name ${JSON.stringify(name.slice(0, 80))}: use letters, digits and . _ @ + - (at most 63, starting with a letter or digit)`);
    }
    if (byName(name)) throw conflict(`user "${name}" already exists`);
  };
  return {
    list: (): User[] => [...ix.users.values()],
    get,
    byName,
    /** The user an OIDC identity (issuer and subject) logs in as. */
    byProviderId: (providerId: string) => [...ix.users.values()].find((u) => u.providerId === providerId),
    create(input: { name: string; displayName?: string; email?: string; providerId?: string; idpGroups?: readonly string[] }): User {
      checkName(input.name);
      checkProfile(input);
      const idpGroups = normalGroups(input.idpGroups);
      const fields = {
        name: input.name,
        displayName: input.displayName ?? '',
        email: input.email ?? '',
        createdAt: now().toISOString(),
        ...(input.providerId ? { providerId: input.providerId } : {}),
        ...(idpGroups?.length ? { idpGroups } : {}),
      };
      return core.write((tx) => {
        const user = Object.freeze({ id: tx.insertUser(fields), ...fields });
        return { result: user, apply: () => ix.users.set(user.id, user), changes: [{ kind: 'user-added', user }] };
      });
    },
    rename(id: number, newName: string): User {
      const before = get(id);
      const user = { ...before, name: newName };
      if (before.name === newName) return before;
      checkName(newName);
      return core.write((tx) => {
        tx.updateUser(user);
        const frozen = Object.freeze(user);
        return { result: frozen, apply: () => ix.users.set(id, frozen), changes: [{ kind: 'user-updated', user: frozen }], audit: [updateNote(before, frozen)] };
      });
    },
    /**
     * Sets a user's display name, e-mail and IdP groups (fields left out keep their value). IdP groups are
     * stored sorted and without repeats, so the same groups in another order are no change.
     */
    update(id: number, patch: { displayName?: string; email?: string; idpGroups?: readonly string[] }): User {
      const before = get(id);
      checkProfile(patch);
      const idpGroups = normalGroups(patch.idpGroups);
      const given = Object.fromEntries(Object.entries({ ...patch, idpGroups }).filter(([, v]) => v !== undefined));
      const user: User = Object.freeze({ ...before, ...given });
      if (user.displayName === before.displayName && user.email === before.email && sameList(user.idpGroups, before.idpGroups)) return before;
      return core.write((tx) => {
        tx.updateUser(user);
        return { result: user, apply: () => ix.users.set(id, user), changes: [{ kind: 'user-updated', user }], audit: [updateNote(before, user)] };
      });
    },
    remove(id: number): void {
      const user = get(id);
      const owned = [...ix.nodes.values()].filter((n) => n.userId === id);
      if (owned.length > 0) {
        throw conflict(`user "${user.name}" still owns ${owned.length} node(s): delete or retag them first`);
      }
      core.write((tx) => {
        tx.deleteUser(id);
        const keys = [...ix.preAuthKeys.values()].filter((k) => k.record.userId === id);
        return {
          result: undefined,
          apply: () => {
            ix.users.delete(id);
            for (const k of keys) ix.preAuthKeys.delete(k.record.id); // ON DELETE CASCADE in the store
          },
          changes: [{ kind: 'user-removed', user }],
        };
      });
    },
  };
}

export type Users = ReturnType<typeof createUsers>;

/**
 * IdP groups as stored: sorted, without repeats, each one a policy could name (`group:<name>`); the OIDC login
 * filters the others out, so one here is a caller's bug.
 */
function normalGroups(groups: readonly string[] | undefined): readonly string[] | undefined {
  if (!groups) return undefined;
  const bad = groups.find((g) => !isIdpPolicyGroup(g));
  if (bad !== undefined) throw invalid(`IdP group ${JSON.stringify(bad.slice(0, 80))} cannot be a policy group name (letters, digits, . _ -; at most ${maxIdpGroup})`);
  return Object.freeze([...new Set(groups)].sort());
}

const maxIdpGroup = 128;

/** Whether an IdP group can be stored with its user: a policy could name it as `group:<name>`. */
export const isIdpPolicyGroup = (g: string) => isPolicyName(g) && g.length <= maxIdpGroup;

const sameList = (a: readonly string[] = [], b: readonly string[] = []) => a.length === b.length && a.every((x, i) => x === b[i]);

/** The audit entry of a rename or profile change: each changed field, before → after; IdP groups as +joined -left. */
function updateNote(before: User, after: User): AuditNote {
  const { idpGroups: was = [], ...restBefore } = before;
  const { idpGroups: is = [], ...restAfter } = after;
  const parts = [fieldChanges(restBefore, restAfter)].filter((p) => p !== 'no change');
  if (!sameList(was, is)) parts.push(idpGroupChanges(was, is));
  return { action: 'user.update', object: `user:${after.id}`, summary: parts.join('; ') || 'no change' };
}

/**
 * Bench tailnet layouts: "grouped" splits nodes into blocks of 100 (half owned by the block's user, half
 * tagged for the block) with group→tag rules, so each node reaches ~100 peers; "allow-all" is the default policy.
 */

export type PolicyKind = 'grouped' | 'allow-all';

/** Nodes per block: each node's peers are its block. */
export const blockSize = 100;

export const blockOf = (index: number) => Math.floor(index / blockSize);
/** Even indexes in a block are user-owned, odd ones tagged. */
export const isTagged = (index: number) => index % 2 === 1;

/** The policy text; `revision` 1 adds a port to every rule, so every node's packet filter changes. */
export function policyText(kind: PolicyKind, blocks: number, revision: number): string | undefined {
  const extra = revision > 0 ? ',9000' : '';
  if (kind === 'allow-all') {
    return revision === 0 ? undefined : JSON.stringify({ acls: [{ action: 'accept', src: ['*'], dst: ['*:*'] }, { action: 'accept', src: ['*'], dst: [`*:9000`] }] });
  }
  const ids = Array.from({ length: blocks }, (_, k) => k);
  const groups: Record<string, string[]> = { 'group:admins': ['admin@'] };
  const tagOwners: Record<string, string[]> = {};
  for (const k of ids) {
    groups[`group:g${k}`] = [`u${k}@`];
    tagOwners[`tag:t${k}`] = ['group:admins'];
  }
  const acls = ids.flatMap((k) => [
    { action: 'accept', src: [`group:g${k}`], dst: [`tag:t${k}:22,80,443,8000-8100${extra}`] },
    { action: 'accept', src: [`group:g${k}`], dst: [`group:g${k}:22${extra}`] },
    { action: 'accept', src: [`tag:t${k}`], dst: [`tag:t${k}:443,5432${extra}`] },
  ]);
  return JSON.stringify({ groups, tagOwners, acls }, null, 1);
}

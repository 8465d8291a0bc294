/** The policy engine's error type: every problem names the file, 1-based line and column, and what is wrong. */

/** A 1-based source position. */
export interface Pos {
  readonly line: number;
  readonly col: number;
}

/** One problem in a policy file; `message` reads `file:line:col: detail`, and `errors` lists all problems found. */
export class PolicyError extends Error {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly detail: string;
  /** Every problem found in the same pass (this one first); a single-problem error lists itself. */
  readonly errors: readonly PolicyError[];

  constructor(file: string, pos: Pos, detail: string, others: readonly PolicyError[] = []) {
    const first = `${file}:${pos.line}:${pos.col}: ${detail}`;
    super([first, ...others.map((e) => e.message)].join('\n'));
    this.name = 'PolicyError';
    this.file = file;
    this.line = pos.line;
    this.col = pos.col;
    this.detail = detail;
    this.errors = [this, ...others];
  }
}

/** Collects errors for one file so a pass can report all of them, in source order. */
export interface ErrorSink {
  readonly file: string;
  add(pos: Pos, detail: string): void;
  readonly list: PolicyError[];
}

export function errorSink(file: string): ErrorSink {
  const list: PolicyError[] = [];
  return { file, list, add: (pos, detail) => void list.push(new PolicyError(file, pos, detail)) };
}

/** Sorts by position and folds a non-empty list into one throwable error. */
export function combine(errors: readonly PolicyError[]): PolicyError {
  const sorted = sortErrors(errors);
  const [first, ...rest] = sorted;
  return new PolicyError(first!.file, first!, first!.detail, rest);
}

export function sortErrors(errors: readonly PolicyError[]): PolicyError[] {
  return [...errors].sort((a, b) => a.line - b.line || a.col - b.col);
}

/** Diagnostics in the tfplugin6 shape, and an error type that carries one through a resource's code. */

export interface Diagnostic {
  severity: 'ERROR' | 'WARNING';
  summary: string;
  detail: string;
  attribute?: { steps: { attribute_name: string }[] };
}

/** An error a resource throws to become a diagnostic, optionally pointing at one attribute. */
export class DiagnosticError extends Error {
  constructor(
    readonly summary: string,
    readonly detail: string,
    readonly attribute?: string,
  ) {
    super(`${summary}: ${detail}`);
  }
}

export function errorDiag(summary: string, detail: string, attribute?: string): Diagnostic {
  return { severity: 'ERROR', summary, detail, ...(attribute ? { attribute: { steps: [{ attribute_name: attribute }] } } : {}) };
}

export function warningDiag(summary: string, detail: string, attribute?: string): Diagnostic {
  return { ...errorDiag(summary, detail, attribute), severity: 'WARNING' };
}

/** Turns anything thrown by a handler into a diagnostic; API errors carry the server's message. */
export function diagFromError(err: unknown, summary: string): Diagnostic {
  if (err instanceof DiagnosticError) return errorDiag(err.summary, err.detail, err.attribute);
  return errorDiag(summary, err instanceof Error ? err.message : String(err));
}

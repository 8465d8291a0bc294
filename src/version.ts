/** The tailplane release, reported by `tailplane version` and the API. */
export const version = '0.1.0';

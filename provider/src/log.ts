/** Logging for a plugin process: JSON hclog lines on stderr (stdout belongs to the go-plugin handshake). */

export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  log(level: Level, message: string, fields?: Record<string, unknown>): void;
}

/** Terraform re-levels stderr lines that carry @level/@message, so TF_LOG=debug shows them properly. */
export function createLogger(module = 'provider.tailplane', write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  return {
    log(level, message, fields = {}) {
      write(JSON.stringify({ '@level': level, '@message': message, '@module': module, '@timestamp': new Date().toISOString(), ...fields }) + '\n');
    },
  };
}

/**
 * A preload that CPU-profiles the process it is loaded into (node refuses --cpu-prof in NODE_OPTIONS); the
 * bench loads it into the server when BENCH_PROFILE_DIR is set.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';

const dir = process.env.BENCH_PROFILE_DIR ?? '/tmp/tailplane-prof';
const session = new Session();
session.connect();
session.post('Profiler.enable');
session.post('Profiler.setSamplingInterval', { interval: 1000 });
session.post('Profiler.start');
let written = false;
const write = () => {
  if (written) return;
  written = true;
  // The in-process inspector answers synchronously, so this also works from an 'exit' handler.
  session.post('Profiler.stop', (err, res) => {
    if (err) return;
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `server-${process.pid}.cpuprofile`), JSON.stringify(res.profile));
  });
};
process.on('beforeExit', write);
process.on('exit', write);

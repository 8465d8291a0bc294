/** CPU time and memory of a process from /proc (Linux): user+system CPU seconds, current and peak RSS. */
import { readFileSync } from 'node:fs';

export interface ProcSample {
  readonly cpuSec: number;
  readonly rssMiB: number;
  readonly peakRssMiB: number;
}

/** Linux's USER_HZ: /proc/<pid>/stat counts CPU time in these ticks, 100 on every mainstream kernel config. */
const ticksPerSec = 100;

export function sampleProc(pid: number): ProcSample {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name (which may contain spaces): utime is the 14th field, stime the 15th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuSec = (Number(fields[11]) + Number(fields[12])) / ticksPerSec;
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
  return { cpuSec, rssMiB: kib('VmRSS') / 1024, peakRssMiB: kib('VmHWM') / 1024 };
}

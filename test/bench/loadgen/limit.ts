/** A concurrency limiter: at most `max` tasks run at once, the rest wait in arrival order. */

export type Limiter = <T>(task: () => Promise<T>) => Promise<T>;

export function createLimiter(max: number): Limiter {
  let running = 0;
  const waiting: (() => void)[] = [];
  const release = () => {
    running--;
    waiting.shift()?.();
  };
  return async (task) => {
    if (running >= max) await new Promise<void>((res) => waiting.push(res));
    running++;
    try {
      return await task();
    } finally {
      release();
    }
  };
}

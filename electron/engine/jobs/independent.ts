/**
 * Independent trainings run concurrently, one per core. At Ψ's batch of 128 the GEMMs are too
 * small for threads to help (a 128×1024×128 SGEMM: 66 GFLOP/s on one thread, 57 on two), while
 * two single-threaded trainings side by side do 142: so every task runs with single-threaded
 * BLAS (OpenBLAS rounds differently with more threads, so the thread count is fixed, not
 * derived from the concurrency), and every native training runs on its own libuv thread.
 * Results come back in task order, and no number depends on the schedule: each task owns its
 * model and seeds.
 */
import { getThreads, setThreads } from '../native/index.js';

/**
 * Runs tasks `concurrency` at a time; resolves with their results in task order. After a
 * failure no new task starts, the running ones finish, and the first error is thrown.
 */
export async function runIndependent<T>(tasks: (() => Promise<T>)[], concurrency: number): Promise<T[]> {
  const k = Math.max(1, Math.min(Math.floor(concurrency), tasks.length));
  const total = getThreads();
  const results: T[] = new Array(tasks.length);
  let next = 0;
  let failure: { err: unknown } | null = null;
  const lane = async () => {
    while (!failure && next < tasks.length) {
      const i = next++;
      try {
        results[i] = await tasks[i]();
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  setThreads(1);
  try {
    await Promise.all(Array.from({ length: k }, lane));
  } finally {
    setThreads(total);
  }
  if (failure) throw (failure as { err: unknown }).err;
  return results;
}

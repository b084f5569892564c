/**
 * Independent trainings run concurrently, one per core. At Ψ's batch of 128 the GEMMs are too
 * small for threads to help (a 128×1024×128 SGEMM: 66 GFLOP/s on one thread, 57 on two), while
 * two single-threaded trainings side by side do 142: so every task runs with single-threaded
 * BLAS, and every native training runs on its own libuv thread. The thread count is fixed at
 * one, not derived from the concurrency, and each task owns its model and seeds, so no number
 * depends on the schedule; results come back in task order.
 */
import { getThreads, setThreads } from '../native/index.js';

export interface GraphTask<T> {
  run: () => Promise<T>;
  /** Tasks (by index, all earlier in the list) that must have finished before this one starts. */
  after?: number[];
}

/**
 * Runs tasks `concurrency` at a time, each as soon as a lane is free and the tasks it comes
 * after have finished, earliest in the list first; resolves with their results in task order.
 * Dependencies point backwards only, so the list order is a valid order and one lane runs the
 * tasks exactly in it. After a failure no new task starts, the running ones finish, and the
 * first error is thrown.
 */
export async function runGraph<T>(tasks: GraphTask<T>[], concurrency: number): Promise<T[]> {
  tasks.forEach((t, i) => {
    for (const j of t.after ?? [])
      if (!Number.isInteger(j) || j < 0 || j >= i) throw new RangeError(`task ${i} comes after task ${j}: a task can only wait for tasks earlier in the list (0 to ${i - 1})`);
  });
  const k = Math.max(1, Math.min(Math.floor(concurrency), tasks.length));
  const total = getThreads();
  const results: T[] = new Array(tasks.length);
  const pending: ((() => Promise<T>) | null)[] = tasks.map((t) => t.run);
  const done = new Array<boolean>(tasks.length).fill(false);
  let failure: { err: unknown } | null = null;
  // Lanes with nothing ready wait here until a running task finishes.
  let waiters: (() => void)[] = [];
  const wakeAll = () => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  const ready = (i: number) => pending[i] !== null && (tasks[i].after ?? []).every((j) => done[j]);
  let running = 0;
  const lane = async () => {
    while (!failure) {
      let i = -1;
      for (let j = 0; j < pending.length && i < 0; j++) if (ready(j)) i = j;
      if (i < 0) {
        // Dependencies point backwards, so with nothing ready and nothing running all is done.
        if (running === 0) return;
        await new Promise<void>((r) => waiters.push(r));
        continue;
      }
      const run = pending[i]!;
      pending[i] = null;
      running++;
      try {
        results[i] = await run();
        done[i] = true;
      } catch (err) {
        failure ??= { err };
      } finally {
        running--;
        wakeAll();
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

/** Tasks with no order among them, `concurrency` at a time (see runGraph). */
export function runIndependent<T>(tasks: (() => Promise<T>)[], concurrency: number): Promise<T[]> {
  return runGraph(tasks.map((run) => ({ run })), concurrency);
}

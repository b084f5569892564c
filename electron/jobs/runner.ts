/**
 * Runs long work (import, extraction, Ω and Ψ training, reproduction) in worker threads and
 * turns their messages into JobEvents. Used alike by Electron's main process and web mode.
 */
import { randomUUID } from 'node:crypto';
import { totalmem } from 'node:os';
import { Worker } from 'node:worker_threads';

import type { Db } from '../engine/db.js';
import { EmbaugError, errorInfo } from '../engine/errors.js';
import { failRunsOfThread } from '../engine/runs/index.js';
import type { JobEvent, JobInfo } from '../ipc/contract.js';
import type { JobArgs, JobKind } from './args.js';
import { CHECKS } from './checks.js';
import type { JobResults } from './tasks.js';
import type { WorkerInput, WorkerMessage } from './worker.js';

// Built code runs worker.js; the TypeScript sources need tsx inside the thread (worker-boot.mjs).
const WORKER = new URL(import.meta.url.endsWith('.ts') ? './worker-boot.mjs' : './worker.js', import.meta.url);

export interface RunnerOptions {
  /** The server's own connection: runs a crashed worker left "running" are marked failed on it. */
  db: Db;
  dbPath: string;
  threads: number;
  settings: WorkerInput['settings'];
  /**
   * The heap of one job's worker (MB): a runaway job fails as a job, and the server and
   * the other jobs go on. Embeddings and images live outside the heap (typed arrays).
   */
  maxHeapMb?: number;
  /** Seconds a job of a kind may run, beside JOB_TIMEOUT_S (tests shorten them). */
  timeouts?: Partial<Record<JobKind, number>>;
}

/** A quarter of the machine's memory, at most V8's usual 4 GB heap. */
export const DEFAULT_JOB_HEAP_MB = Math.max(512, Math.min(4096, Math.floor(totalmem() / 2 ** 20 / 4)));

function title(kind: JobKind, args: JobArgs[JobKind]): string {
  const a = args as unknown as Record<string, unknown>;
  switch (kind) {
    case 'import': return `Import ${a.name}`;
    case 'extract': return `Extract ${(a.augs as string[]).join(', ')}`;
    case 'omega': return `Train Ω ${(a.augs as string[]).join(', ')}`;
    case 'head': return `Train Ψ (${a.mode})`;
    case 'reproduce': return 'Reproduce the paper';
    case 'advise': return 'Advise: augment or not?';
    case 'export': return `Export run ${a.runId}`;
    case 'curate': return `Find ${a.what === 'labels' ? 'label errors' : a.what === 'map' ? 'a map' : a.what}`;
  }
}

/**
 * How long a job of this kind may run before it is failed: an export writes a few megabytes
 * and checks them, so one that takes minutes is stuck on the file system it writes to.
 */
export const JOB_TIMEOUT_S: Partial<Record<JobKind, number>> = { export: 300 };

/** Cores a job of this kind holds while it runs (see JobRunner.start). */
export const coresOf = (kind: JobKind, threads: number) => (kind === 'head' ? 1 : threads);

export class JobRunner {
  #jobs = new Map<string, { info: JobInfo; worker: Worker | null; cores: number; launch: () => void }>();
  #listeners = new Set<(e: JobEvent) => void>();

  constructor(readonly opts: RunnerOptions) {}

  onEvent(fn: (e: JobEvent) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  #emit(e: JobEvent): void {
    for (const l of this.#listeners) l(e);
  }

  /**
   * Queues a job; it starts as soon as the cores it needs are free, in the order asked. A
   * head trains with single-threaded BLAS (at Ψ's batch a second thread slows it: see
   * engine/jobs/independent.ts), so it takes one core and heads run side by side, one per
   * core; every other kind takes them all and runs alone. OpenBLAS's thread count is one per
   * process, so a job that sets it to more than one must never share the process with a head.
   */
  start<K extends JobKind>(kind: K, args: JobArgs[K]): JobInfo {
    const info: JobInfo = { id: randomUUID(), kind, title: title(kind, args), status: 'queued', startedAt: new Date().toISOString(), progress: null };
    this.#jobs.set(info.id, { info, worker: null, cores: coresOf(kind, this.opts.threads), launch: () => this.#launch(info, kind, args) });
    this.#emit({ type: 'queued', job: { ...info } });
    try {
      (CHECKS[kind] as (db: Db, a: JobArgs[K]) => void)(this.opts.db, args);
    } catch (err) {
      // Refused: listed as a failed job with the reason, and nothing ran.
      Object.assign(info, { status: 'failed', error: errorInfo(err) });
      this.#emit({ type: 'finished', job: { ...info } });
      return { ...info };
    }
    this.#pump();
    return { ...this.#jobs.get(info.id)!.info };
  }

  #busy(): number {
    let n = 0;
    for (const j of this.#jobs.values()) if (j.info.status === 'running') n += j.cores;
    return n;
  }

  #pump(): void {
    for (const j of this.#jobs.values()) {
      if (j.info.status !== 'queued') continue;
      // First come, first served: a job that needs every core is not overtaken by later heads.
      if (this.#busy() + j.cores > this.opts.threads && this.#busy() > 0) return;
      j.launch();
    }
  }

  #launch<K extends JobKind>(info: JobInfo, kind: K, args: JobArgs[K]): void {
    const job = this.#jobs.get(info.id)!;
    const cores = job.cores;
    info.status = 'running';
    info.startedAt = new Date().toISOString();
    const input: WorkerInput = { kind, args, dbPath: this.opts.dbPath, threads: this.opts.threads, blasThreads: cores, settings: this.opts.settings };
    const heapMb = this.opts.maxHeapMb ?? DEFAULT_JOB_HEAP_MB;
    const worker = new Worker(WORKER, { workerData: input, resourceLimits: { maxOldGenerationSizeMb: heapMb } });
    const thread = worker.threadId;
    job.worker = worker;
    let settled = false;
    const limit = this.opts.timeouts?.[kind] ?? JOB_TIMEOUT_S[kind];
    const timer = limit === undefined ? null : setTimeout(() => {
      // Not awaited: a thread stuck in a system call cannot be stopped, but the job is over.
      void worker.terminate();
      failRunsOfThread(this.opts.db, thread, `the job took longer than ${limit} s and was stopped`);
      finish('failed', { error: { code: 'E_TIMEOUT', message: `${info.title} took longer than ${limit} s and was stopped: the destination may be a slow or special file system (a network share that stopped answering, /proc): choose a folder on a local disk.` } });
    }, limit * 1000);
    const finish = (status: JobInfo['status'], patch: { result?: JobResults[K]; error?: JobInfo['error'] }) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      Object.assign(info, { status, ...patch });
      this.#emit({ type: 'finished', job: { ...info } });
      this.#pump();
    };
    worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'progress') {
        info.progress = m.progress;
        this.#emit({ type: 'progress', jobId: info.id, progress: m.progress });
      } else if (m.type === 'epoch') this.#emit({ type: 'epoch', jobId: info.id, series: m.series, stats: m.stats });
      else if (m.type === 'log') this.#emit({ type: 'log', jobId: info.id, line: m.line });
      // The worker ran TASKS[kind]: its result is that task's, through JSON.
      else if (m.type === 'done') finish('completed', { result: m.result as JobResults[K] });
      else if (m.type === 'error') finish(m.error.code === 'E_CANCELLED' ? 'cancelled' : 'failed', { error: m.error });
    });
    // A worker that dies without its last message (out of memory, a crash) fails its job
    // here, and the runs it left "running" are marked failed at once, with the reason.
    const crashed = (code: string, message: string) => {
      if (settled) return;
      try {
        failRunsOfThread(this.opts.db, thread, message);
      } catch (err) {
        console.error(`could not mark the runs of job ${info.id} as failed: ${(err as Error).message}`);
      }
      finish('failed', { error: { code, message } });
    };
    worker.on('error', (err) =>
      (err as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY'
        ? crashed('E_OUT_OF_MEMORY', `the job ran out of memory (its heap is limited to ${heapMb} MB) and was stopped; the workbench goes on`)
        : crashed('E_WORKER', `the job's worker failed: ${err.message}`),
    );
    worker.on('exit', (code) => crashed('E_WORKER', `the job's worker stopped (exit code ${code}) before it finished`));
    this.#emit({ type: 'started', job: { ...info } });
  }

  cancel(id: string): JobInfo {
    const j = this.#jobs.get(id);
    if (!j) throw new EmbaugError('E_NOT_FOUND', `There is no job ${id}.`);
    if (j.info.status === 'running') j.worker!.postMessage({ type: 'cancel' });
    else if (j.info.status === 'queued') {
      j.info.status = 'cancelled';
      j.info.error = { code: 'E_CANCELLED', message: 'cancelled before it started' };
      this.#emit({ type: 'finished', job: { ...j.info } });
    }
    return { ...j.info };
  }

  list(): JobInfo[] {
    return [...this.#jobs.values()].map((j) => ({ ...j.info })).reverse();
  }

  /** Waits for a job to finish; for tests and the CLI. */
  wait(id: string): Promise<JobInfo> {
    const j = this.#jobs.get(id);
    if (!j) return Promise.reject(new EmbaugError('E_NOT_FOUND', `There is no job ${id}.`));
    if (j.info.status !== 'running' && j.info.status !== 'queued') return Promise.resolve({ ...j.info });
    return new Promise((resolve) => {
      const off = this.onEvent((e) => {
        if (e.type === 'finished' && e.job.id === id) {
          off();
          resolve(e.job);
        }
      });
    });
  }

  async close(): Promise<void> {
    for (const j of this.#jobs.values()) if (j.info.status === 'queued') j.info.status = 'cancelled';
    for (const j of this.#jobs.values()) if (j.info.status === 'running') j.worker!.postMessage({ type: 'cancel' });
    await Promise.all([...this.#jobs.values()].map((j) => j.worker?.terminate()));
  }
}

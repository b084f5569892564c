/**
 * Runs long work (import, extraction, Ω and Ψ training, reproduction) in worker threads and
 * turns their messages into JobEvents. Used alike by Electron's main process and web mode.
 */
import { randomUUID } from 'node:crypto';
import { totalmem } from 'node:os';
import { Worker } from 'node:worker_threads';

import type { Db } from '../engine/db.js';
import { EmbaugError } from '../engine/errors.js';
import { failRunsOfThread } from '../engine/runs/index.js';
import type { JobEvent, JobInfo } from '../ipc/contract.js';
import type { JobArgs, JobKind } from './args.js';
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
    case 'curate': return `Find ${a.what === 'labels' ? 'label errors' : a.what === 'map' ? 'a map' : a.what}`;
  }
}

export class JobRunner {
  #jobs = new Map<string, { info: JobInfo; worker: Worker }>();
  #listeners = new Set<(e: JobEvent) => void>();

  constructor(readonly opts: RunnerOptions) {}

  onEvent(fn: (e: JobEvent) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  #emit(e: JobEvent): void {
    for (const l of this.#listeners) l(e);
  }

  start<K extends JobKind>(kind: K, args: JobArgs[K]): JobInfo {
    const info: JobInfo = { id: randomUUID(), kind, title: title(kind, args), status: 'running', startedAt: new Date().toISOString(), progress: null };
    const input: WorkerInput = { kind, args, dbPath: this.opts.dbPath, threads: this.opts.threads, settings: this.opts.settings };
    const heapMb = this.opts.maxHeapMb ?? DEFAULT_JOB_HEAP_MB;
    const worker = new Worker(WORKER, { workerData: input, resourceLimits: { maxOldGenerationSizeMb: heapMb } });
    const thread = worker.threadId;
    this.#jobs.set(info.id, { info, worker });
    let settled = false;
    const finish = (status: JobInfo['status'], patch: { result?: JobResults[K]; error?: JobInfo['error'] }) => {
      if (settled) return;
      settled = true;
      Object.assign(info, { status, ...patch });
      this.#emit({ type: 'finished', job: { ...info } });
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
    return { ...info };
  }

  cancel(id: string): JobInfo {
    const j = this.#jobs.get(id);
    if (!j) throw new EmbaugError('E_NOT_FOUND', `There is no job ${id}.`);
    if (j.info.status === 'running') j.worker.postMessage({ type: 'cancel' });
    return { ...j.info };
  }

  list(): JobInfo[] {
    return [...this.#jobs.values()].map((j) => ({ ...j.info })).reverse();
  }

  /** Waits for a job to finish; for tests and the CLI. */
  wait(id: string): Promise<JobInfo> {
    const j = this.#jobs.get(id);
    if (!j) return Promise.reject(new EmbaugError('E_NOT_FOUND', `There is no job ${id}.`));
    if (j.info.status !== 'running') return Promise.resolve({ ...j.info });
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
    for (const j of this.#jobs.values()) if (j.info.status === 'running') j.worker.postMessage({ type: 'cancel' });
    await Promise.all([...this.#jobs.values()].map((j) => j.worker.terminate()));
  }
}

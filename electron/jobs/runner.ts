/**
 * Runs long work (import, extraction, Ω and Ψ training, reproduction) in worker threads and
 * turns their messages into JobEvents. Used alike by Electron's main process and web mode.
 */
import { randomUUID } from 'node:crypto';
import { Worker } from 'node:worker_threads';

import { EmbaugError } from '../engine/errors.js';
import type { JobArgs, JobEvent, JobInfo, JobKind } from '../ipc/contract.js';
import type { WorkerInput, WorkerMessage } from './worker.js';

// Built code runs worker.js; the TypeScript sources need tsx inside the thread (worker-boot.mjs).
const WORKER = new URL(import.meta.url.endsWith('.ts') ? './worker-boot.mjs' : './worker.js', import.meta.url);

export interface RunnerOptions {
  dbPath: string;
  threads: number;
  settings: WorkerInput['settings'];
}

function title(kind: JobKind, args: JobArgs[JobKind]): string {
  const a = args as unknown as Record<string, unknown>;
  switch (kind) {
    case 'import': return `Import ${a.name}`;
    case 'extract': return `Extract ${(a.augs as string[]).join(', ')}`;
    case 'omega': return `Train Ω ${(a.augs as string[]).join(', ')}`;
    case 'head': return `Train Ψ (${a.mode})`;
    case 'reproduce': return 'Reproduce the paper';
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
    const worker = new Worker(WORKER, { workerData: input });
    this.#jobs.set(info.id, { info, worker });
    let settled = false;
    const finish = (status: JobInfo['status'], patch: Partial<JobInfo>) => {
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
      else if (m.type === 'done') finish('completed', { result: m.result });
      else if (m.type === 'error') finish(m.error.code === 'E_CANCELLED' ? 'cancelled' : 'failed', { error: m.error });
    });
    worker.on('error', (err) => finish('failed', { error: { code: 'E_INTERNAL', message: err.message } }));
    worker.on('exit', (code) => finish('failed', { error: { code: 'E_INTERNAL', message: `the job's worker stopped (exit code ${code}) before it finished` } }));
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

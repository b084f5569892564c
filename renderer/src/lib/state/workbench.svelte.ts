/**
 * The workbench's shared state: what the engine holds (data sets, backbones, runs), the jobs
 * in flight with their progress and per-epoch series, and the current view. The only caller
 * of the API besides the views' one-off queries.
 */
import type { BackboneInfo } from '../../../../electron/engine/backbones/index.js';
import type { DatasetInfo } from '../../../../electron/engine/datasets/index.js';
import type { EpochStats } from '../../../../electron/engine/native/index.js';
import type { Api, JobArgs, JobEvent, JobInfo, JobKind } from '../../../../electron/ipc/contract.js';
import { bridge, call } from '../api.js';

export type View = 'start' | 'datasets' | 'curation' | 'backbones' | 'embeddings' | 'omega' | 'heads' | 'runs' | 'paper';

export const VIEWS: { id: View; label: string }[] = [
  { id: 'start', label: 'Quick start' },
  { id: 'datasets', label: 'Datasets' },
  { id: 'curation', label: 'Curation' },
  { id: 'backbones', label: 'Backbones' },
  { id: 'embeddings', label: 'Embeddings' },
  { id: 'omega', label: 'Augmentations (Ω)' },
  { id: 'heads', label: 'Heads (Ψ)' },
  { id: 'runs', label: 'Runs' },
  { id: 'paper', label: 'Paper' },
];

const viewOf = (hash: string): View => VIEWS.find((v) => `#${v.id}` === hash.split('?')[0])?.id ?? 'start';
const paramsOf = (hash: string) => new URLSearchParams(hash.split('?')[1] ?? '');

export class Workbench {
  // The view lives in the URL (#runs), so a reload or a shared link opens it; a newcomer
  // starts at the quick start.
  #view = $state<View>(viewOf(typeof location === 'undefined' ? '' : location.hash));
  get view(): View {
    return this.#view;
  }
  set view(v: View) {
    this.#view = v;
    if (typeof history !== 'undefined' && viewOf(location.hash) !== v) history.replaceState(null, '', `#${v}`);
  }
  /** A main selection of the current view, kept in the URL beside it (#curation?dataset=2). */
  param(name: string): string | null {
    return typeof location === 'undefined' ? null : paramsOf(location.hash).get(name);
  }
  setParams(values: Record<string, string | number | null>): void {
    if (typeof history === 'undefined') return;
    const q = paramsOf(location.hash);
    for (const [k, v] of Object.entries(values)) v === null || v === '' ? q.delete(k) : q.set(k, String(v));
    const hash = `#${this.#view}${q.size ? `?${q}` : ''}`;
    if (location.hash !== hash) history.replaceState(null, '', hash);
  }
  info = $state.raw<Api['system:info']['res'] | null>(null);
  datasets = $state.raw<DatasetInfo[]>([]);
  backbones = $state.raw<BackboneInfo[]>([]);
  jobs = $state<JobInfo[]>([]);
  /** Per job, per series name, the epochs seen so far. */
  series = $state<Record<string, Record<string, EpochStats[]>>>({});
  logs = $state<Record<string, string[]>>({});
  /** Bumped whenever a job finishes, so views can reload what they show. */
  generation = $state(0);
  connectionError = $state<string | null>(null);

  async refresh(): Promise<void> {
    try {
      [this.info, this.datasets, this.backbones] = await Promise.all([call('system:info', undefined), call('datasets:list', undefined), call('backbones:list', undefined)]);
      this.jobs = await call('jobs:list', undefined);
      this.connectionError = null;
    } catch (err) {
      this.connectionError = (err as Error).message;
    }
  }

  /**
   * Subscribes to job events; returns the cleanup. While a job is pending the job list is also
   * read back every few seconds, so an event lost on the way (a dropped connection, a page
   * that was busy) cannot leave a job shown as running after the server finished it.
   */
  connect(): () => void {
    const off = bridge.onJobEvent((e) => this.#onEvent(e));
    const timer = setInterval(() => {
      if (this.jobs.some((j) => j.status === 'queued' || j.status === 'running')) void this.#syncJobs();
    }, 3000);
    return () => {
      off();
      clearInterval(timer);
    };
  }

  async #syncJobs(): Promise<void> {
    let server: JobInfo[];
    try {
      server = await call('jobs:list', undefined);
    } catch {
      return;
    }
    for (const s of server) {
      const mine = this.jobs.find((j) => j.id === s.id);
      if (!mine) this.jobs.unshift(s);
      else if (mine.status !== s.status) this.#onEvent({ type: s.status === 'queued' || s.status === 'running' ? 'started' : 'finished', job: s });
    }
  }

  #onEvent(e: JobEvent): void {
    if (e.type === 'queued' || e.type === 'started') {
      // A queued job starts later: the same job, now running.
      const known = this.jobs.find((j) => j.id === e.job.id);
      if (known) Object.assign(known, e.job);
      else this.jobs.unshift(e.job);
      return;
    }
    const id = e.type === 'finished' ? e.job.id : e.jobId;
    const job = this.jobs.find((j) => j.id === id);
    if (e.type === 'progress' && job) job.progress = e.progress;
    else if (e.type === 'epoch') {
      const s = (this.series[id] ??= {});
      (s[e.series] ??= []).push(e.stats);
    } else if (e.type === 'log') (this.logs[id] ??= []).push(e.line);
    else if (e.type === 'finished') {
      if (job) Object.assign(job, e.job);
      else this.jobs.unshift(e.job);
      this.#waiters.get(id)?.(e.job);
      this.#waiters.delete(id);
      this.generation++;
      void this.refresh();
    }
  }

  async startJob<K extends JobKind>(kind: K, args: JobArgs[K]): Promise<JobInfo> {
    const job = await call('jobs:start', { kind, args } as Api['jobs:start']['req']);
    if (!this.jobs.some((j) => j.id === job.id)) this.jobs.unshift(job);
    return job;
  }

  #waiters = new Map<string, (j: JobInfo) => void>();

  /** Starts a job and resolves with it once it has finished, whichever way. */
  async runJob<K extends JobKind>(kind: K, args: JobArgs[K]): Promise<JobInfo> {
    const job = await this.startJob(kind, args);
    const known = this.job(job.id);
    if (known && known.status !== 'queued' && known.status !== 'running') return known;
    return new Promise((resolve) => this.#waiters.set(job.id, resolve));
  }

  async cancel(id: string): Promise<void> {
    await call('jobs:cancel', { id });
  }

  /** Whether a job is still to finish (queued or running): its Start button stays disabled. */
  pending(id: string | null): boolean {
    const s = this.job(id)?.status;
    return s === 'queued' || s === 'running';
  }

  job(id: string | null): JobInfo | undefined {
    return id ? this.jobs.find((j) => j.id === id) : undefined;
  }
}

export const workbench = new Workbench();

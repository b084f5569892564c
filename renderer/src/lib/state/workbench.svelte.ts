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

export type View = 'datasets' | 'curation' | 'backbones' | 'embeddings' | 'omega' | 'heads' | 'runs' | 'paper';

export const VIEWS: { id: View; label: string }[] = [
  { id: 'datasets', label: 'Datasets' },
  { id: 'curation', label: 'Curation' },
  { id: 'backbones', label: 'Backbones' },
  { id: 'embeddings', label: 'Embeddings' },
  { id: 'omega', label: 'Augmentations (Ω)' },
  { id: 'heads', label: 'Heads (Ψ)' },
  { id: 'runs', label: 'Runs' },
  { id: 'paper', label: 'Paper' },
];

export class Workbench {
  view = $state<View>('datasets');
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

  /** Subscribes to job events; returns the cleanup. */
  connect(): () => void {
    return bridge.onJobEvent((e) => this.#onEvent(e));
  }

  #onEvent(e: JobEvent): void {
    if (e.type === 'started') {
      if (!this.jobs.some((j) => j.id === e.job.id)) this.jobs.unshift(e.job);
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
      this.generation++;
      void this.refresh();
    }
  }

  async startJob<K extends JobKind>(kind: K, args: JobArgs[K]): Promise<JobInfo> {
    const job = await call('jobs:start', { kind, args } as Api['jobs:start']['req']);
    if (!this.jobs.some((j) => j.id === job.id)) this.jobs.unshift(job);
    return job;
  }

  async cancel(id: string): Promise<void> {
    await call('jobs:cancel', { id });
  }

  job(id: string | null): JobInfo | undefined {
    return id ? this.jobs.find((j) => j.id === id) : undefined;
  }
}

export const workbench = new Workbench();

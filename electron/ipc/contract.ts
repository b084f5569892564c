/**
 * The one contract between the UI and the engine: channel names (`area:verb`), their request
 * and response types, and the job events. Main (Electron IPC), preload, web mode and the
 * renderer all import it, so a change breaks the build rather than the user.
 */
import type { BackboneInfo, Candidates } from '../engine/backbones/index.js';
import type { DatasetInfo, DatasetVersion, Edit, FolderListing, FolderPreview, ImageDetail } from '../engine/datasets/index.js';
import type { CacheStats } from '../engine/embeddings/index.js';
import type { ClassNeighbours } from '../engine/curation/index.js';
import type { Progress } from '../engine/jobs/index.js';
import type { BackendInfo, EpochStats } from '../engine/native/index.js';
import type { ArchShape, Eq8Result, PaperNumbers, ReproduceResult } from '../engine/paper/index.js';
import type { RunFilter, RunRecord, Series } from '../engine/runs/index.js';
import type { JobArgs, JobKind } from '../jobs/args.js';
import type { JobResults } from '../jobs/tasks.js';

export type * from '../jobs/args.js';
export type { JobResults } from '../jobs/tasks.js';

export type Result<T> = { ok: true; value: T } | { ok: false; error: { code: string; message: string } };

/** A light image reference for curation results. */
export interface CuratedImage {
  idx: number;
  sha256: string;
  label: number;
  split: string;
}

interface JobState {
  id: string;
  title: string;
  /** queued: waiting for cores (see JobRunner); running; then one of the final three. */
  status: 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';
  startedAt: string;
  progress: Progress | null;
  error?: { code: string; message: string };
}

/** A job and, once completed, its result, typed by the job's kind. */
export type JobInfo = { [K in JobKind]: JobState & { kind: K; result?: JobResults[K] } }[JobKind];

/** Events streamed to the UI while jobs run. */
export type JobEvent =
  | { type: 'queued'; job: JobInfo }
  | { type: 'started'; job: JobInfo }
  | { type: 'progress'; jobId: string; progress: Progress }
  | { type: 'epoch'; jobId: string; series: string; stats: EpochStats }
  | { type: 'log'; jobId: string; line: string }
  | { type: 'finished'; job: JobInfo };

export interface ImagePage {
  total: number;
  images: ImageDetail[];
}

export interface Thumb {
  sha256: string;
  /** A data: URL the page can show under its CSP (img-src 'self' data:). */
  url: string;
}

export interface ReproductionSummary {
  runId: number;
  startedAt: string;
  out: string | null;
  /** table2.json as `reproduce` wrote it (the result without curves and Eq. 8), with the paper's numbers as this version has them. */
  table2: (Omit<ReproduceResult, 'curves' | 'eq8'> & { paper: PaperNumbers }) | null;
  /** The paper's Table II compared with ours by shape, per architecture both have. */
  paperShape: ArchShape[];
  eq8: Eq8Result | null;
}

/** A backbone shipped in the workbench's models folder: added with one click, no path typed. */
export interface BundledBackbone {
  file: string;
  name: string;
  architecture: string;
  baseAugmentation: string | null;
  baseTop1: number | null;
  dim: number | null;
  /** Already in the database (by its file's hash, as the manifest states it). */
  added: boolean;
}

/** Every request/response pair, by channel. */
export interface Api {
  'system:info': { req: void; res: { version: string; dbPath: string; backends: BackendInfo[]; threads: number; mode: 'electron' | 'web' } };
  'datasets:list': { req: void; res: DatasetInfo[] };
  'datasets:histogram': { req: { id: number }; res: { split: string; label: number; count: number }[] };
  'datasets:images': { req: { id: number; split?: string; label?: number; offset: number; limit: number }; res: ImagePage };
  'datasets:thumbs': { req: { shas: string[] }; res: Thumb[] };
  'backbones:list': { req: void; res: BackboneInfo[] };
  'backbones:add': { req: { onnxPath: string; manifestPath?: string; manifest?: unknown; name?: string }; res: BackboneInfo };
  'backbones:candidates': { req: { onnxPath: string }; res: Candidates };
  'backbones:addClassifier': { req: { onnxPath: string; tensor?: string; height?: number; width?: number; mean?: number[]; std?: number[]; normalisedInGraph?: boolean; name?: string }; res: BackboneInfo };
  'embeddings:stats': { req: void; res: CacheStats };
  'datasets:versions': { req: { id: number }; res: DatasetVersion[] };
  'datasets:edit': { req: { id: number; edits: Edit[]; note?: string }; res: DatasetVersion };
  'datasets:restore': { req: { id: number; hash: string }; res: DatasetVersion };
  'runs:list': { req: RunFilter; res: RunRecord[] };
  'runs:get': { req: { id: number }; res: RunRecord & { metrics: Series } };
  'runs:compare': { req: { ids: number[] }; res: { runs: RunRecord[]; differs: string[]; metrics: Record<number, Series> } };
  /** The latest curation results of a data set's current version on a backbone, by what they found. */
  'curation:neighbours': { req: { dataset: number; backbone: string; idx: number; labels: number[]; k?: number }; res: ClassNeighbours[] };
  'curation:latest': { req: { dataset: number; backbone: string }; res: { what: string; runId: number; at: string; result: JobResults['curate'] }[] };
  'runs:update': { req: { id: number; tags?: string[]; note?: string | null }; res: RunRecord };
  'runs:delete': { req: { ids?: number[]; group?: string }; res: { deleted: number[] } };
  'paper:latest': { req: void; res: ReproductionSummary | null };
  'fs:list': { req: { path?: string; ext?: string[] }; res: FolderListing };
  /** The desktop app's native folder dialog; null when the user cancels. */
  'dialog:folder': { req: void; res: string | null };
  'dialog:file': { req: { extensions: string[] }; res: string | null };
  'fs:preview': { req: { path: string }; res: FolderPreview };
  'backbones:bundled': { req: void; res: BundledBackbone[] };
  'backbones:addBundled': { req: { file: string }; res: BackboneInfo };
  'heads:classify': { req: { runId: number; image: string }; res: { classNames: string[]; probabilities: number[]; predicted: number } };
  'jobs:start': { req: { [K in JobKind]: { kind: K; args: JobArgs[K] } }[JobKind]; res: JobInfo };
  'jobs:cancel': { req: { id: string }; res: JobInfo };
  'jobs:list': { req: void; res: JobInfo[] };
}

export type Channel = keyof Api;
export const CHANNELS: readonly Channel[] = [
  'system:info', 'datasets:list', 'datasets:histogram', 'datasets:images', 'datasets:thumbs', 'backbones:list', 'backbones:add', 'backbones:candidates', 'backbones:addClassifier',
  'embeddings:stats', 'datasets:versions', 'datasets:edit', 'datasets:restore', 'runs:list', 'runs:get', 'runs:compare', 'curation:latest', 'curation:neighbours', 'runs:update', 'runs:delete', 'paper:latest', 'fs:list', 'dialog:folder', 'dialog:file', 'fs:preview', 'backbones:bundled', 'backbones:addBundled', 'heads:classify', 'jobs:start', 'jobs:cancel', 'jobs:list',
];

/** What the preload exposes as window.embaug, and what the web client implements. */
export interface EmbaugBridge {
  call<C extends Channel>(channel: C, req: Api[C]['req']): Promise<Result<Api[C]['res']>>;
  onJobEvent(listener: (e: JobEvent) => void): () => void;
}

export const JOB_EVENT_CHANNEL = 'jobs:event';

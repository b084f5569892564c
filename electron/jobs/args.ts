/** What each kind of job takes: the arguments the UI sends and the task table receives. */
import type { ImportKind } from '../engine/datasets/index.js';
import type { FineTuneMode, OmegaForm, OmegaSampling } from '../engine/training/index.js';

export interface ImportJobArgs {
  kind: ImportKind;
  path: string;
  name: string;
  testFraction?: number;
}
export interface ExtractJobArgs {
  dataset: number;
  backbone: string;
  augs: string[];
  split?: string;
  limit?: number;
}
export interface OmegaJobArgs {
  backbone: string;
  dataset: number;
  classes?: number[];
  augs: string[];
  epochs: number;
  form: OmegaForm | 'auto';
  lr: number;
  limit?: number;
  /** Also fit what the stochastic forms sample from (Ω + Gaussian residual, …), kept with the run. */
  stochastic?: boolean;
}
export interface HeadJobArgs {
  backbone: string;
  dataset: number;
  classes?: number[];
  mode: FineTuneMode;
  augs: string[];
  /** Ω runs to use in embed mode, by augmentation key. */
  omegaRuns?: Record<string, number>;
  /** How embed mode applies Ω: its mean (default) or a stochastic form its run keeps. */
  sampling?: OmegaSampling;
  epochs: number;
  lr: number;
  optimizer: 'sgd' | 'adam';
  batch: number;
  seed: number;
  limit?: number;
}
export interface CurateJobArgs {
  what: 'duplicates' | 'labels' | 'outliers' | 'map';
  dataset: number;
  backbone: string;
  threshold?: number;
  method?: 'pca' | 'umap';
  split?: string;
  limit?: number;
}

export interface ReproduceJobArgs {
  epochs: number;
  seeds: number;
  subset?: number;
  /** The few-shot protocol: this many target training images per class, drawn per seed. */
  perClass?: number;
  augSets?: string[];
  archs?: string[];
  /** Base models by their training augmentation ('none', 'hflip'); both by default. */
  bases?: string[];
}

export interface AdviseJobArgs {
  dataset: number;
  backbone: string;
  augs: string[];
  folds?: number;
  /** Score on this split of the data set (over seeds) instead of k-fold on the training split. */
  valSplit?: string;
}

export interface ExportJobArgs {
  runId: number;
  outDir: string;
  name?: string;
  merged?: boolean;
  /** Replace files of the same names (the user said so). */
  force?: boolean;
}

export interface JobArgs {
  import: ImportJobArgs;
  extract: ExtractJobArgs;
  omega: OmegaJobArgs;
  head: HeadJobArgs;
  reproduce: ReproduceJobArgs;
  curate: CurateJobArgs;
  advise: AdviseJobArgs;
  export: ExportJobArgs;
}
export type JobKind = keyof JobArgs;

/** What `study` returns and writes (study.json): the types shared by the runner and its report. */
import type { Acc } from '../paper/index.js';

/** Images per class of the target task's training split, or all of it. */
export type Budget = number | 'full';

export interface StudyCell {
  arch: string;
  /** The base model's augmentation: 'none' or 'hflip'. */
  base: string;
  budget: Budget;
  /** The fine-tuning augmentation; null for the arms that use none (none, noise, mixup, ISDA). */
  aug: string | null;
  arm: string;
  trainImages: number;
  /** Chosen on the validation splits of the first draws (their mean curve). */
  chosen: { lr: number; epochs: number; valAccuracy: number };
  /** The validation curves the choice was made from (mean over the draws), per learning rate. */
  selection: { lr: number; curve: [number, number][] }[];
  /** Test accuracy per seed (each seed its own draw and initial weights). */
  accuracy: Acc;
  /** Φ passes of one head (Ω's own, once per backbone and augmentation, are counted apart). */
  phiPasses: number;
  /** Wall seconds of one head, measured with the others running beside it, one per core. */
  seconds: number;
  /** Wall seconds plus the cached views it used at the measured cost of a Φ pass on one core. */
  computeSeconds: number;
  runIds: number[];
}

export interface StudyOmega {
  arch: string;
  base: string;
  aug: string;
  chosen: string;
  /** cos(Φ(x), Φ(g(x))) on held-out base pairs: how invariant Φ already is to g. */
  invariance: number;
  /** cos(Ω(Φ(x)), Φ(g(x))) on the same pairs. */
  cosine: number;
  heldOutMse: number;
  identityMse: number;
  seconds: number;
  phiPasses: number;
}

export interface StudyResult {
  protocol: string;
  protocolDescription: string;
  budgets: Budget[];
  /** Classes of the target task. */
  classes: number;
  augs: string[];
  arms: { key: string; label: string }[];
  lrs: number[];
  omegaImages: number;
  /** Seeds per budget. */
  seeds: Record<string, number>;
  cells: StudyCell[];
  omega: StudyOmega[];
  /** Seconds per Φ pass on one core, per architecture/base. */
  phiSecondsPerImage: Record<string, number>;
  runId: number;
  seconds: number;
  /** Only from a cluster shard (StudyOptions.shard): the plan's order, and each cell's step in it. */
  part?: { archs: string[]; bases: string[]; cellSteps: number[] };
}

/** What `reproduce` returns and writes: the types shared by the pipeline and its report. */
import type { CompositeFidelity, OmegaResult } from '../training/index.js';
import type { Eq8Result } from './eq8.js';
import type { HeavyTiming } from './heavy.js';
import type { ProtocolName } from './protocols.js';

/**
 * One architecture's accuracies: by scenario key (`none_none`, `pixel_embed`, `base_hflip`, …)
 * for the hflip set and the base models, and by augmentation set (`vflip`, `both`) for the others.
 */
export type ArchResult = Record<string, Acc | Record<string, Acc>>;

/** A scenario's accuracy, for the hflip set or the given other augmentation set. */
export function accOf(arch: ArchResult | undefined, key: string, augSet = 'hflip'): Acc | undefined {
  const v = augSet === 'hflip' ? arch?.[key] : (arch?.[augSet] as Record<string, Acc> | undefined)?.[key];
  return v && 'mean' in v ? (v as Acc) : undefined;
}

export interface Acc {
  mean: number;
  std: number;
  runs: number[];
}

export interface HeadCurve {
  arch: string;
  base: string;
  augSet: string;
  scenario: string;
  seed: number;
  history: { epoch: number; loss: number; accuracy: number | null; valAccuracy: number | null }[];
}

export interface OmegaCurve {
  arch: string;
  base: string;
  aug: string;
  form: string;
  history: { epoch: number; loss: number; valLoss: number | null }[];
}

/**
 * What each few-shot mode costs in Φ passes, and what that is in wall time with our backbone
 * and with a ResNet-50-sized one. Target side per head; the Ω side once per backbone.
 */
export interface FewShotCompute {
  trainImages: number;
  epochs: number;
  phiPasses: Record<'none' | 'pixel-cached' | 'pixel-random' | 'embed' | 'noise', number>;
  /** Base pairs Ω is trained on, once per backbone and augmentation, for every target task after. */
  omegaPhiPasses: number;
  ours: { backbone: string; secondsPerImage: number } | null;
  heavy: HeavyTiming;
}

/** One head of the plan and what it reached: the unit a cluster shard computes. */
export interface HeadOutcome {
  /** Its number in the plan (the pairs' own work is numbered first). */
  step: number;
  arch: string;
  base: string;
  augSet: string;
  scenario: string;
  seed: number;
  testAccuracy: number;
  history: HeadCurve['history'];
}

/** Wall seconds of a reproduction's phases (ReproduceResult.phases). */
export interface ReproducePhases {
  extracting: number;
  training: number;
  eq8: number;
  compute: number;
}

/** What a shard of a reproduction computed: its base accuracies and heads. */
export interface ReproducePart {
  /** The plan's architectures, in order. */
  archs: string[];
  bases: { arch: string; base: string; accuracy: number }[];
  heads: HeadOutcome[];
}

export interface ReproduceResult {
  protocol: ProtocolName;
  protocolDescription: string;
  epochs: number;
  seeds: number;
  subset: number | null;
  perClass: number | null;
  augSets: string[];
  architectures: Record<string, ArchResult>;
  omega: Record<string, Record<string, Record<string, Omit<OmegaResult, 'params' | 'sizes' | 'stochastic'>>>>;
  /** Per architecture, base and composite augmentation: its own Ω against the chain of its ops' Ωs. */
  composites: Record<string, Record<string, Record<string, CompositeFidelity>>>;
  eq8: Eq8Result | null;
  compute: FewShotCompute | null;
  curves: { heads: HeadCurve[]; omega: OmegaCurve[] };
  runId: number;
  seconds: number;
  /**
   * Wall seconds of each phase: the views extracted with every core, the trainings one per core,
   * Eq. 8's timing runs and the few-shot compute timing (both alone on the machine, as timings must be).
   */
  phases: ReproducePhases;
  /** Only from a cluster shard (ReproduceOptions.shard): its part, before tabulation. */
  part?: ReproducePart;
}

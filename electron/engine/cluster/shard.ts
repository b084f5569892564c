/**
 * Shards: a deterministic split of one command's work into N parts, so a job array on a
 * cluster (one task per part) computes what one process would. Extraction is split by image
 * hash (every part gets a balanced share, whatever the data set's order); a grid by planned
 * step. Each part writes its own files into the output folder, named `<kind>-<k>-of-<n>.*`,
 * and `merge` brings them into a database.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { EmbaugError } from '../errors.js';
import type { OnProgress, Progress } from '../jobs/index.js';
import { writeFileAtomic } from '../paths.js';

export interface Shard {
  /** This part, 0 ≤ k < n. */
  k: number;
  n: number;
}

/** What a grid job (`reproduce`, the study) takes besides its own options. */
export interface GridRunOptions {
  /** Total cores to use. */
  threads?: number;
  /** Trainings at once (default: threads); 1 is the sequential schedule. Changes no result. */
  concurrency?: number;
  /**
   * Run only this shard's part of the plan (cluster job arrays): the result then carries the
   * part, and no report is written; `mergeShards` assembles the parts and writes it.
   */
  shard?: Shard;
  signal?: AbortSignal;
  onProgress?: OnProgress;
  log?: (line: string) => void;
}

/** "K/N" (as `--shard` takes it) → a shard; K counts from 0, as Slurm's array task ids do. */
export function parseShard(text: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const k = m ? Number(m[1]) : NaN, n = m ? Number(m[2]) : NaN;
  if (!m || n < 1 || k >= n || n > 100000)
    throw new EmbaugError('E_ARG', `--shard takes K/N with 0 ≤ K < N (the part K of N, counted from 0 as Slurm's SLURM_ARRAY_TASK_ID is), got "${text}"`);
  return { k, n };
}

/** The part an image belongs to: its hash's first 32 bits, modulo N. */
export const shardOfSha = (sha: string, n: number) => Number.parseInt(sha.slice(0, 8), 16) % n;

/** The kinds of shard output, and the file that marks a part done. */
export const SHARD_KINDS = { extract: '.parquet', reproduce: '.json', study: '.json' } as const;
export type ShardKind = keyof typeof SHARD_KINDS;

export const shardName = (kind: ShardKind, s: Shard) => `${kind}-${s.k}-of-${s.n}`;
export const shardFile = (dir: string, kind: ShardKind, s: Shard) => join(dir, `${shardName(kind, s)}${SHARD_KINDS[kind]}`);

export interface ShardScan {
  kind: ShardKind;
  n: number;
  /** Parts whose files are there. */
  done: number[];
  missing: number[];
}

/** The shard files in a folder, by kind and N: which parts are done and which are missing. */
export function scanShards(dir: string): ShardScan[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    throw new EmbaugError('E_NOT_FOUND', `Cannot read the shard folder ${dir} (${(err as NodeJS.ErrnoException).code}): pass the --out folder the shards wrote to.`);
  }
  const found = new Map<string, Set<number>>();
  for (const name of names) {
    const m = /^(extract|reproduce|study)-(\d+)-of-(\d+)\.(parquet|json)$/.exec(name);
    if (!m || SHARD_KINDS[m[1] as ShardKind] !== `.${m[4]}`) continue;
    const key = `${m[1]}/${m[3]}`;
    (found.get(key) ?? found.set(key, new Set()).get(key)!).add(Number(m[2]));
  }
  return [...found].map(([key, parts]) => {
    const [kind, n] = key.split('/');
    const all = Array.from({ length: Number(n) }, (_, k) => k);
    return { kind: kind as ShardKind, n: Number(n), done: all.filter((k) => parts.has(k)), missing: all.filter((k) => !parts.has(k)) };
  });
}

export interface ShardProgress extends Progress {
  updatedAt: string;
}

/**
 * Progress of a running part, written to `<dir>/progress/<kind>-<k>-of-<n>.json` at most once
 * a second, so `cluster status` can show done/total, rate and ETA of every task.
 */
export function progressFile(dir: string, kind: ShardKind, s: Shard, also?: OnProgress): OnProgress {
  const path = join(dir, 'progress', `${shardName(kind, s)}.json`);
  let last = 0;
  return (p) => {
    also?.(p);
    const now = Date.now();
    if (now - last < 1000 && p.done < p.total) return;
    last = now;
    writeFileAtomic(path, JSON.stringify({ ...p, updatedAt: new Date(now).toISOString() } satisfies ShardProgress));
  };
}

export function readProgress(dir: string, kind: ShardKind, s: Shard): ShardProgress | null {
  try {
    return JSON.parse(readFileSync(join(dir, 'progress', `${shardName(kind, s)}.json`), 'utf8')) as ShardProgress;
  } catch {
    return null;
  }
}

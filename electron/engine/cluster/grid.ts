/**
 * One part of a grid (a reproduction or a study) for a job array. The user's database is only
 * read: it is copied (SQLite's online backup) to the task's local scratch folder, the part
 * runs there as it would locally (Ω, heads, runs, cached views), and what it made is written
 * into the output folder: its runs as JSON lines and its results, `<kind>-<k>-of-<n>.json`
 * last, which marks the part done. `merge` loads the runs and, once every part is there,
 * writes the report a single process would have written.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { openDb, type Db } from '../db.js';
import { EmbaugError } from '../errors.js';
import { reproduce, tabulate, writeReport, type ReproduceOptions, type ReproduceResult } from '../paper/index.js';
import { study, writeStudyReport, type StudyOptions, type StudyResult } from '../study/index.js';
import { BASES } from '../paper/scenarios.js';
import { outputFolder, writeFileAtomic } from '../paths.js';
import { dumpRuns, loadRuns, type RunDump } from '../runs/index.js';
import { type Shard, type ShardKind, progressFile, shardFile, shardName } from './shard.js';

export type GridKind = Exclude<ShardKind, 'extract'>;
type Results = { reproduce: ReproduceResult; study: StudyResult };
type Options = { reproduce: ReproduceOptions; study: StudyOptions };
/** The options that decide a grid's numbers: every part of one array must share them. */
export type GridOptions<K extends GridKind> = Omit<Options[K], 'signal' | 'onProgress' | 'log' | 'shard'>;

export interface ShardFileContent<K extends GridKind = GridKind> {
  format: 1;
  kind: K;
  shard: Shard;
  /** The writer's id: its runs' origins start with it. */
  origin: string;
  options: GridOptions<K>;
  result: Results[K];
}

/** Per kind: how a part runs, and how the parts become the result one process would give. */
const GRIDS: { [K in GridKind]: { run: (db: Db, o: Options[K] & { shard: Shard }) => Promise<Results[K]>; assemble: (parts: Results[K][], runIds: number[]) => Results[K]; write: (out: string, r: Results[K]) => Promise<void> } } = {
  reproduce: { run: reproduce, assemble: assembleReproduce, write: writeReport },
  study: { run: study, assemble: assembleStudy, write: writeStudyReport },
};

const runsFile = (out: string, kind: GridKind, s: Shard) => join(out, `${shardName(kind, s)}.runs.jsonl`);

/** Where a task keeps its private copy of the database: the node's local scratch. */
const scratchRoot = () => process.env.SLURM_TMPDIR ?? process.env.TMPDIR ?? tmpdir();

export async function gridShard<K extends GridKind>(
  dbPath: string,
  kind: K,
  o: Options[K] & { shard: Shard },
): Promise<{ path: string; skipped: boolean; seconds: number }> {
  const path = shardFile(outputFolder(o.out), kind, o.shard);
  if (existsSync(path)) return { path, skipped: true, seconds: 0 };
  const t0 = performance.now();
  const scratch = mkdtempSync(join(scratchRoot(), 'embaug-shard-'));
  try {
    const copy = join(scratch, 'shard.db');
    const main = openDb(dbPath, { readonly: true });
    try {
      await main.backup(copy);
    } finally {
      main.close();
    }
    const db = openDb(copy);
    try {
      const before = counts(db);
      const withProgress = { ...o, onProgress: progressFile(o.out, kind, o.shard, o.onProgress) } as Options[K] & { shard: Shard };
      const result = await GRIDS[kind].run(db, withProgress);
      const after = counts(db);
      if (after.datasets !== before.datasets || after.backbones !== before.backbones)
        throw new EmbaugError('E_ARG', `The database ${dbPath} lacks the data set or backbones this ${kind} uses, so each task would import its own: prepare it once first (embaug cluster slurm does; or embaug ${kind} --prepare with the same options), then run the tasks again.`);
      const origin = randomUUID();
      const runs = dumpRuns(db, before.lastRun, origin);
      writeFileAtomic(runsFile(o.out, kind, o.shard), runs.map((r) => JSON.stringify(r)).join('\n') + '\n');
      const { signal: _s, onProgress: _p, log: _l, shard, ...options } = o;
      writeFileAtomic(path, JSON.stringify({ format: 1, kind, shard, origin, options, result } satisfies ShardFileContent<K>));
      return { path, skipped: false, seconds: (performance.now() - t0) / 1000 };
    } finally {
      db.close();
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

function counts(db: Db) {
  return db.prepare('SELECT (SELECT count(*) FROM datasets) AS datasets, (SELECT count(*) FROM backbones) AS backbones, (SELECT coalesce(max(id), 0) FROM runs) AS lastRun').get() as {
    datasets: number; backbones: number; lastRun: number;
  };
}

export interface GridMerge {
  kind: GridKind;
  n: number;
  runsAdded: number;
  runsExisting: number;
  /** The report folder, once every part is there. */
  report: string | null;
}

/**
 * Loads the runs of the parts that are there and, when all n are, assembles and writes the
 * report (Table II or the study's, curves) into the folder, as one process would have.
 */
export async function mergeGrid<K extends GridKind>(db: Db, dir: string, kind: K, n: number, done: number[]): Promise<GridMerge> {
  const parts = done.map((k) => {
    const s = { k, n };
    const content = JSON.parse(readFileSync(shardFile(dir, kind, s), 'utf8')) as ShardFileContent<K>;
    const lines = readFileSync(runsFile(dir, kind, s), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as RunDump);
    return { content, lines };
  });
  const first = parts[0].content;
  for (const p of parts)
    if (JSON.stringify(p.content.options) !== JSON.stringify(first.options))
      throw new EmbaugError('E_IMPORT', `${shardName(kind, p.content.shard)} was run with other options than ${shardName(kind, first.shard)} (${JSON.stringify(p.content.options)} vs ${JSON.stringify(first.options)}): the parts of one ${kind} must share them; keep each array's parts in a folder of its own.`);
  let runsAdded = 0, runsExisting = 0;
  const topIds: number[] = [];
  for (const p of parts) {
    const r = loadRuns(db, p.lines, shardFile(dir, kind, p.content.shard));
    runsAdded += r.added;
    runsExisting += r.existing;
    topIds.push(r.ids.get(p.content.result.runId) ?? p.content.result.runId);
  }
  if (done.length < n) return { kind, n, runsAdded, runsExisting, report: null };
  const g = GRIDS[kind];
  await g.write(dir, g.assemble(parts.map((p) => p.content.result), topIds));
  return { kind, n, runsAdded, runsExisting, report: dir };
}

/** Part 0 holds the plan's shared fields, Eq. 8 and the compute table; the rest in plan order. */
function assembleReproduce(results: ReproduceResult[], runIds: number[]): ReproduceResult {
  const zero = results[0];
  const slowest = (f: (r: ReproduceResult) => number) => Math.max(...results.map(f));
  const result: ReproduceResult = {
    ...zero, architectures: {}, omega: {}, composites: {}, curves: { heads: [], omega: [] }, runId: runIds[0], seconds: slowest((r) => r.seconds),
    phases: { extracting: slowest((r) => r.phases.extracting), training: slowest((r) => r.phases.training), eq8: slowest((r) => r.phases.eq8), compute: slowest((r) => r.phases.compute) },
  };
  delete result.part;
  const archs = zero.part!.archs;
  for (const a of archs)
    for (const { aug: b } of BASES)
      for (const r of results) {
        if (r.omega[a]?.[b]) ((result.omega[a] ??= {})[b] = r.omega[a][b]);
        if (r.composites[a]?.[b]) ((result.composites[a] ??= {})[b] = r.composites[a][b]);
        result.curves.omega.push(...r.curves.omega.filter((c) => c.arch === a && c.base === b));
      }
  tabulate(result, { archs, bases: results.flatMap((r) => r.part!.bases), heads: results.flatMap((r) => r.part!.heads) });
  return result;
}

/** Cells by their step in the plan; Ω summaries and Φ timings by (architecture, base, augmentation). */
function assembleStudy(results: StudyResult[], runIds: number[]): StudyResult {
  const zero = results[0];
  const { archs, bases } = zero.part!;
  const cells = results.flatMap((r) => r.cells.map((c, i) => ({ c, step: r.part!.cellSteps[i] }))).sort((a, b) => a.step - b.step).map((x) => x.c);
  const pairOrder = (arch: string, base: string) => archs.indexOf(arch) * bases.length + bases.indexOf(base);
  const omega = results.flatMap((r) => r.omega).sort((a, b) => pairOrder(a.arch, a.base) - pairOrder(b.arch, b.base) || zero.augs.indexOf(a.aug) - zero.augs.indexOf(b.aug));
  const phi = Object.assign({}, ...results.map((r) => r.phiSecondsPerImage)) as Record<string, number>;
  const phiSecondsPerImage = Object.fromEntries(archs.flatMap((a) => bases.map((b) => `${a}/${b}`)).filter((k) => k in phi).map((k) => [k, phi[k]]));
  const result: StudyResult = { ...zero, cells, omega, phiSecondsPerImage, runId: runIds[0], seconds: Math.max(...results.map((r) => r.seconds)) };
  delete result.part;
  return result;
}

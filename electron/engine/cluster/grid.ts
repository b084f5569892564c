/**
 * One part of a reproduction for a job array. The user's database is only read: it is copied
 * (SQLite's online backup) to the task's local scratch folder, the part runs there as it
 * would locally (Ω, heads, runs, cached views), and what it made is written into the output
 * folder: its runs as JSON lines and its results, `reproduce-<k>-of-<n>.json` last, which
 * marks the part done. `merge` loads the runs and, once every part is there, writes the
 * report a single process would have written.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { openDb, type Db } from '../db.js';
import { EmbaugError } from '../errors.js';
import { reproduce, tabulate, writeReport, type ReproduceOptions, type ReproduceResult } from '../paper/index.js';
import { BASES } from '../paper/scenarios.js';
import { writeFileAtomic } from '../paths.js';
import { dumpRuns, loadRuns, type RunDump } from '../runs/index.js';
import { type Shard, progressFile, shardFile, shardName } from './shard.js';

/** The options that decide a reproduction's numbers: every part of one array must share them. */
export type GridOptions = Omit<ReproduceOptions, 'signal' | 'onProgress' | 'log' | 'shard'>;

export interface ShardFileContent {
  format: 1;
  shard: Shard;
  /** The writer's id: its runs' origins start with it. */
  origin: string;
  options: GridOptions;
  result: ReproduceResult;
}

const runsFile = (out: string, s: Shard) => join(out, `${shardName('reproduce', s)}.runs.jsonl`);

/** Where a task keeps its private copy of the database: the node's local scratch. */
const scratchRoot = () => process.env.SLURM_TMPDIR ?? process.env.TMPDIR ?? tmpdir();

export async function reproduceShard(
  dbPath: string,
  o: ReproduceOptions & { shard: Shard },
): Promise<{ path: string; skipped: boolean; heads: number; seconds: number }> {
  const path = shardFile(o.out, 'reproduce', o.shard);
  if (existsSync(path)) return { path, skipped: true, heads: 0, seconds: 0 };
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
      const result = await reproduce(db, { ...o, onProgress: progressFile(o.out, 'reproduce', o.shard, o.onProgress) });
      const after = counts(db);
      if (after.datasets !== before.datasets || after.backbones !== before.backbones)
        throw new EmbaugError('E_ARG', `The database ${dbPath} lacks the data set or backbones this reproduction uses, so each task would import its own: prepare it once first (embaug cluster slurm does; or embaug reproduce --prepare with the same options), then run the tasks again.`);
      const origin = randomUUID();
      const runs = dumpRuns(db, before.lastRun, origin);
      writeFileAtomic(runsFile(o.out, o.shard), runs.map((r) => JSON.stringify(r)).join('\n') + '\n');
      const { signal: _s, onProgress: _p, log: _l, shard, ...options } = o;
      writeFileAtomic(path, JSON.stringify({ format: 1, shard, origin, options, result } satisfies ShardFileContent));
      return { path, skipped: false, heads: result.part?.heads.length ?? 0, seconds: (performance.now() - t0) / 1000 };
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
  n: number;
  runsAdded: number;
  runsExisting: number;
  /** The report folder, once every part is there. */
  report: string | null;
  result: ReproduceResult | null;
}

/**
 * Loads the runs of the parts that are there and, when all n are, assembles and writes the
 * report (Table II, curves, Eq. 8) into the folder, as one process would have.
 */
export async function mergeGrid(db: Db, dir: string, n: number, done: number[]): Promise<GridMerge> {
  const parts = done.map((k) => {
    const s = { k, n };
    const content = JSON.parse(readFileSync(shardFile(dir, 'reproduce', s), 'utf8')) as ShardFileContent;
    const lines = readFileSync(runsFile(dir, s), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as RunDump);
    return { content, lines };
  });
  const first = parts[0].content;
  for (const p of parts)
    if (JSON.stringify(p.content.options) !== JSON.stringify(first.options))
      throw new EmbaugError('E_IMPORT', `${shardName('reproduce', p.content.shard)} was run with other options than ${shardName('reproduce', first.shard)} (${JSON.stringify(p.content.options)} vs ${JSON.stringify(first.options)}): the parts of one reproduction must share them; keep each array's parts in a folder of its own.`);
  let runsAdded = 0, runsExisting = 0;
  const topIds: number[] = [];
  for (const p of parts) {
    const r = loadRuns(db, p.lines, shardFile(dir, 'reproduce', p.content.shard));
    runsAdded += r.added;
    runsExisting += r.existing;
    topIds.push(r.ids.get(p.content.result.runId) ?? p.content.result.runId);
  }
  if (done.length < n) return { n, runsAdded, runsExisting, report: null, result: null };
  // Every part holds the plan's shared fields; Eq. 8 and the compute table come from part 0.
  const results = parts.map((p) => p.content.result);
  const zero = results.find((_, i) => parts[i].content.shard.k === 0)!;
  const result: ReproduceResult = { ...zero, architectures: {}, omega: {}, composites: {}, curves: { heads: [], omega: [] }, runId: topIds[done.indexOf(0)], seconds: Math.max(...results.map((r) => r.seconds)) };
  delete result.part;
  const archs = zero.part!.archs;
  // In the plan's order (architecture, then base), as one process fills them.
  for (const a of archs)
    for (const { aug: b } of BASES)
      for (const r of results) {
        if (r.omega[a]?.[b]) ((result.omega[a] ??= {})[b] = r.omega[a][b]);
        if (r.composites[a]?.[b]) ((result.composites[a] ??= {})[b] = r.composites[a][b]);
        result.curves.omega.push(...r.curves.omega.filter((c) => c.arch === a && c.base === b));
      }
  tabulate(result, { archs, bases: results.flatMap((r) => r.part!.bases), heads: results.flatMap((r) => r.part!.heads) });
  await writeReport(dir, result);
  return { n, runsAdded, runsExisting, report: dir, result };
}

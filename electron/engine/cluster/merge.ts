/**
 * `merge DIR`: the shard files of an output folder into the database. Idempotent: vectors an
 * embedding set holds and runs already merged (by origin) are not added again, so merging
 * twice, or merging while some parts are still running and again after, is safe. Parts that
 * are missing are named by number.
 */
import type { Db } from '../db.js';
import { importSetRows, readEmbeddingsParquet } from '../embeddings/index.js';
import { type OnProgress, ProgressMeter } from '../jobs/index.js';
import { type GridMerge, mergeGrid } from './grid.js';
import { type ShardKind, scanShards, shardFile } from './shard.js';

export interface MergeResult {
  dir: string;
  extract: { n: number; files: number; rows: number; added: number }[];
  /** Reproductions and studies. */
  grids: GridMerge[];
  /** Parts with no file yet, by kind and N. */
  missing: { kind: ShardKind; n: number; parts: number[] }[];
}

export async function mergeShards(db: Db, dir: string, onProgress?: OnProgress): Promise<MergeResult> {
  const scans = scanShards(dir);
  const out: MergeResult = { dir, extract: [], grids: [], missing: [] };
  const meter = new ProgressMeter('merging shard files', scans.reduce((a, s) => a + s.done.length, 0), 'files', onProgress);
  for (const s of scans) {
    if (s.missing.length) out.missing.push({ kind: s.kind, n: s.n, parts: s.missing });
    if (s.kind === 'extract') {
      let rows = 0, added = 0;
      for (const k of s.done) {
        const path = shardFile(dir, 'extract', { k, n: s.n });
        for (const r of importSetRows(db, readEmbeddingsParquet(path).sets, path)) {
          rows += r.rows;
          added += r.added;
        }
        meter.tick();
      }
      out.extract.push({ n: s.n, files: s.done.length, rows, added });
    } else if (s.done.length) {
      out.grids.push(await mergeGrid(db, dir, s.kind, s.n, s.done));
      meter.tick(s.done.length);
    }
  }
  return out;
}

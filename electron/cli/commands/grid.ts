/** What reproduce and study share on the command line: preparing a database, and one shard. */
import { gridShard, parseShard, type GridKind } from '../../engine/cluster/index.js';
import { prepareGrid, type ReproduceOptions } from '../../engine/paper/index.js';
import { STUDY_ARCHS, type StudyOptions } from '../../engine/study/index.js';
import { UsageError } from '../args.js';
import type { Ctx } from '../context.js';

/** The data sets and backbones a grid reads, put into the database (before any shard runs). */
export async function prepareFor(ctx: Ctx, kind: GridKind, o: ReproduceOptions | StudyOptions): Promise<{ families: string[] }> {
  return prepareGrid(ctx.db(), kind === 'study' ? { ...o, archs: o.archs ?? STUDY_ARCHS } : o);
}

/** `--prepare` or `--shard K/N`, when given: true when one of them was the whole job. */
export async function prepareOrShard(ctx: Ctx, kind: GridKind, values: Record<string, unknown>, o: ReproduceOptions | StudyOptions): Promise<boolean> {
  if (values.prepare) {
    const p = await prepareFor(ctx, kind, o);
    ctx.out(p, `ready: the data sets and the backbones of ${p.families.join(', ')} are in ${ctx.dbPath}`);
    return true;
  }
  if (!values.shard) return false;
  if (!values.out) throw new UsageError('--shard needs --out: the folder (on storage every task sees) the parts write to');
  const shard = parseShard(String(values.shard));
  const s = kind === 'study' ? await gridShard(ctx.dbPath, 'study', { ...(o as StudyOptions), shard }) : await gridShard(ctx.dbPath, 'reproduce', { ...(o as ReproduceOptions), shard });
  ctx.out(s, s.skipped ? `${s.path} is there already: this part is done` : `wrote ${s.path} in ${s.seconds.toFixed(0)} s`);
  return true;
}

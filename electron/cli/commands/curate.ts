import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

import { embeddingMap, findDuplicates, findLabelErrors, findOutliers } from '../../engine/curation/index.js';
import { classHistogram, diffVersions, editDataset, exportDataset, getDataset, listVersions, restoreVersion, type Edit, type Target } from '../../engine/datasets/index.js';
import { outputFile } from '../../engine/paths.js';
import { UsageError, intOpt, numOpt, parse } from '../args.js';
import { type Ctx, table } from '../context.js';

export const CURATE_HELP = `embaug curate <command> --dataset D [--backbone B]
  duplicates [--threshold 0.8] [--neighbours 5]
                                  exact (same pixels) and near duplicates: each image's nearest
                                  by embedding and by pixel fingerprint, kept where the aligned
                                  pair's detail correlation ≥ threshold; leaks across splits
  labels [--split S] [--folds 5] [--epochs 20] [--top 50]
                                  likely label errors from out-of-fold probabilities (k-fold heads)
  outliers [--top 50]             images far from the rest of their class
  balance                         images per class and split
  map [--method pca|umap] [--out points.csv]   a 2-D map of the embeddings`;

export const VERSIONS_HELP = `embaug data edit NAME (--relabel SEL --to LABEL | --exclude SEL | --include SEL | --move SEL --split S
                       | --tag SEL --tags a,b | --untag SEL --tags a,b | --note SEL --text T
                       | --rename-class L --name N | --merge-class FROM --into TO) [--message M]
      SEL: image indices (3,17,42) or a filter (split=test,label=3,tag=checked). Each edit makes a new version.
  embaug data versions NAME            versions, newest last
  embaug data diff NAME A B            added, removed, relabelled, moved images between two versions
  embaug data restore NAME HASH        make an earlier version current again
  embaug data export NAME --format folder|wds --out DIR   the current version, with a manifest`;

function selection(v: string): Target {
  if (/^\d+(,\d+)*$/.test(v)) return v.split(',').map(Number);
  const f: { split?: string; label?: number; tag?: string } = {};
  for (const kv of v.split(',')) {
    const [k, x] = kv.split('=');
    // The conditions of a filter all hold at once: a second label= would silently replace the first.
    if (Object.hasOwn(f, k)) throw new UsageError(`selector "${v}" gives ${k}= twice: a filter selects the images that meet all its conditions; make one edit per ${k}`);
    if (x === undefined || x === '') throw new UsageError(`selector "${kv}" gives no value: write ${k}=VALUE`);
    if (k === 'split') f.split = x;
    else if (k === 'label') {
      if (!/^\d+$/.test(x)) throw new UsageError(`selector "${kv}": a label is a class number (see embaug data show NAME)`);
      f.label = Number(x);
    }
    else if (k === 'tag') f.tag = x;
    else throw new UsageError(`unknown selector "${k}": use image indices, or split=, label=, tag=`);
  }
  return f;
}

export async function dataVersionCommand(ctx: Ctx, sub: string, rest: string[]): Promise<boolean> {
  if (!['edit', 'versions', 'diff', 'restore', 'export'].includes(sub)) return false;
  const { values, positionals } = parse(rest, {
    relabel: { type: 'string' }, to: { type: 'string' }, exclude: { type: 'string' }, include: { type: 'string' }, move: { type: 'string' },
    split: { type: 'string' }, tag: { type: 'string' }, untag: { type: 'string' }, tags: { type: 'string' }, note: { type: 'string' }, text: { type: 'string' },
    'rename-class': { type: 'string' }, name: { type: 'string' }, 'merge-class': { type: 'string' }, into: { type: 'string' }, message: { type: 'string' },
    format: { type: 'string' }, out: { type: 'string' },
  }, { diff: 3, restore: 2 }[sub] ?? 1);
  const name = positionals[0];
  const ref = name && /^\d+$/.test(name) ? Number(name) : name;
  if (!ref) throw new UsageError(`data ${sub} takes a data set name\n${VERSIONS_HELP}`);
  const db = ctx.db();
  if (sub === 'edit') {
    const edits: Edit[] = [];
    const needs = (edit: string, flag: string, v: unknown) => {
      if (v === undefined || v === '') throw new UsageError(`--${edit} needs --${flag}\n${VERSIONS_HELP}`);
    };
    if (values.relabel) needs('relabel', 'to', values.to);
    if (values.move) needs('move', 'split', values.split);
    if (values.tag || values.untag) needs(values.tag ? 'tag' : 'untag', 'tags', values.tags);
    if (values['rename-class'] !== undefined) needs('rename-class', 'name', values.name);
    if (values['merge-class'] !== undefined) needs('merge-class', 'into', values.into);
    if (values.relabel) edits.push({ op: 'relabel', images: selection(values.relabel as string), label: intOpt(values.to, 'to')! });
    if (values.exclude) edits.push({ op: 'exclude', images: selection(values.exclude as string) });
    if (values.include) edits.push({ op: 'include', images: selection(values.include as string) });
    if (values.move) edits.push({ op: 'move', images: selection(values.move as string), split: String(values.split ?? '') });
    if (values.tag) edits.push({ op: 'tag', images: selection(values.tag as string), tags: String(values.tags ?? '').split(',').filter(Boolean) });
    if (values.untag) edits.push({ op: 'untag', images: selection(values.untag as string), tags: String(values.tags ?? '').split(',').filter(Boolean) });
    if (values.note) edits.push({ op: 'note', images: selection(values.note as string), note: String(values.text ?? '') });
    if (values['rename-class'] !== undefined) edits.push({ op: 'renameClass', label: intOpt(values['rename-class'], 'rename-class')!, name: String(values.name ?? '') });
    if (values['merge-class'] !== undefined) edits.push({ op: 'mergeClasses', from: intOpt(values['merge-class'], 'merge-class')!, into: intOpt(values.into, 'into')! });
    if (edits.length === 0) throw new UsageError(`data edit needs an edit\n${VERSIONS_HELP}`);
    const v = editDataset(db, ref, edits, values.message as string | undefined);
    ctx.out(v, `new version ${v.hash.slice(0, 16)}… (${v.imageCount} images, ${v.classes.length} classes): ${v.note}`);
  } else if (sub === 'versions') {
    const vs = listVersions(db, ref);
    const current = getDataset(db, ref).version;
    ctx.out(vs, () => table([['id', 'hash', 'images', 'classes', 'created', 'note'], ...vs.map((v) => [v.id, `${v.hash.slice(0, 12)}${v.hash === current ? ' *' : ''}`, v.imageCount, v.classes.length, v.createdAt.slice(0, 19), v.note])]));
  } else if (sub === 'diff') {
    if (positionals.length !== 3) throw new UsageError('data diff takes NAME A B');
    const d = diffVersions(db, ref, positionals[1], positionals[2]);
    ctx.out(d, `added ${d.added.length}, removed ${d.removed.length}, relabelled ${d.relabelled.length}, moved ${d.moved.length}${d.classes ? `, classes ${JSON.stringify(d.classes.from)} → ${JSON.stringify(d.classes.to)}` : ''}`);
  } else if (sub === 'restore') {
    if (!positionals[1]) throw new UsageError('data restore takes NAME HASH');
    const v = restoreVersion(db, ref, positionals[1]);
    ctx.out(v, `restored: current version ${v.hash.slice(0, 16)}…`);
  } else {
    const format = values.format as 'folder' | 'wds';
    if (format !== 'folder' && format !== 'wds') throw new UsageError('--format must be folder or wds');
    if (!values.out) throw new UsageError('data export needs --out DIR');
    const e = await exportDataset(db, ref, { format, out: resolve(values.out as string) });
    ctx.out(e, `exported ${e.images} images of version ${e.version.slice(0, 16)}… to ${e.out}`);
  }
  return true;
}

export async function curate(ctx: Ctx, argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  const { values } = parse(rest, {
    dataset: { type: 'string' }, backbone: { type: 'string' }, threshold: { type: 'string' }, neighbours: { type: 'string' }, split: { type: 'string' }, folds: { type: 'string' },
    epochs: { type: 'string' }, top: { type: 'string' }, method: { type: 'string' }, out: { type: 'string' },
  });
  if (!values.dataset) throw new UsageError(`curate needs --dataset\n${CURATE_HELP}`);
  const dataset = /^\d+$/.test(values.dataset as string) ? Number(values.dataset) : (values.dataset as string);
  const db = ctx.db();
  const top = intOpt(values.top, 'top', 50)!;
  if (sub === 'balance') {
    const ds = getDataset(db, dataset);
    const h = classHistogram(db, ds.id);
    ctx.out(h, () => table([['class', 'split', 'images'], ...h.map((x) => [ds.classes[x.label], x.split, x.count])]));
    return;
  }
  if (!values.backbone) throw new UsageError(`curate ${sub} needs --backbone\n${CURATE_HELP}`);
  const common = { dataset, backbone: values.backbone as string, threads: ctx.threads, signal: ctx.signal, onProgress: ctx.progress };
  if (sub === 'duplicates') {
    const r = await findDuplicates(db, { ...common, threshold: numOpt(values.threshold, 'threshold'), neighbours: intOpt(values.neighbours, 'neighbours') });
    ctx.out(r, () => [`${r.exact.length} exact and ${r.near.length} near-duplicate groups (threshold ${r.threshold}); ${r.leaks} leak across splits`,
      ...[...r.exact, ...r.near].slice(0, top).map((g) => `${g.kind}${g.leak ? ' LEAK' : ''} (${g.similarity.toFixed(3)}): ${g.images.map((i) => `#${i.idx} ${i.split} ${i.source}`).join(' | ')}`)].join('\n'));
  } else if (sub === 'labels') {
    const r = await findLabelErrors(db, { ...common, selection: values.split ? { split: values.split as string } : undefined, folds: intOpt(values.folds, 'folds', 5), epochs: intOpt(values.epochs, 'epochs', 20) });
    const ds = getDataset(db, dataset);
    ctx.out({ ...r, ranked: r.ranked.slice(0, top) }, () => [`out-of-fold accuracy ${(100 * r.outOfFoldAccuracy).toFixed(1)}% over ${r.folds} folds; most suspect first:`,
      table([['image', 'given', 'p(given)', 'predicted', 'p(predicted)', 'source'], ...r.ranked.slice(0, top).map((x) => [x.image.idx, ds.classes[x.image.label], x.givenProbability.toFixed(3), ds.classes[x.predicted], x.predictedProbability.toFixed(3), x.image.source])])].join('\n'));
  } else if (sub === 'outliers') {
    const r = await findOutliers(db, common);
    ctx.out(r.slice(0, top), () => table([['image', 'label', 'distance', 'z', 'source'], ...r.slice(0, top).map((o) => [o.image.idx, o.image.label, o.distance.toFixed(3), o.z.toFixed(2), o.image.source])]));
  } else if (sub === 'map') {
    const method = (values.method as string | undefined) ?? 'pca';
    if (method !== 'pca' && method !== 'umap') throw new UsageError('--method must be pca or umap');
    // Checked before the map is computed: an existing file is the user's and is not replaced.
    const out = values.out === undefined ? undefined : outputFile(values.out as string);
    const r = await embeddingMap(db, { ...common, method });
    if (out) writeFileSync(out, `idx,label,split,x,y\n${r.points.map((p) => `${p.image.idx},${p.image.label},${p.image.split},${p.x},${p.y}`).join('\n')}\n`);
    ctx.out({ method: r.method, explained: r.explained, points: r.points.length }, `${r.points.length} points (${r.method}${r.explained ? `, ${(100 * (r.explained[0] + r.explained[1])).toFixed(1)}% of the variance` : ''})${out ? ` written to ${out}` : ''}`);
  } else throw new UsageError(`unknown command "curate ${sub ?? ''}"\n${CURATE_HELP}`);
}

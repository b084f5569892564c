import { resolve } from 'node:path';

import { ARCHIVES, classHistogram, getCifar, getDataset, importDataset, listDatasets, type ImportKind } from '../../engine/datasets/index.js';
import { UsageError, intOpt, numOpt, parse } from '../args.js';
import { type Ctx, table } from '../context.js';
import { VERSIONS_HELP, dataVersionCommand } from './curate.js';

export const DATA_HELP = `embaug data <command>
  import <path> --kind folder|wds|cifar [--name NAME] [--test-fraction 0.2] [--split-seed 0] [--max-pixels N]
      Import a data set: an image folder (root/<class>/* or root/<split>/<class>/*), WebDataset
      shards (image + .cls or .json label), or the official CIFAR-10/100 binary files. All or
      nothing: a failed import leaves the database as it was. Prints what was skipped and why
      (unreadable files, links, bad labels, images in two classes, images over --max-pixels,
      default EMBAUG_MAX_PIXELS or 50000000, refused from their header).
  get cifar10|cifar100 [--cache DIR] [--url URL --md5 SUM]
      Download the official binary archive (MD5-checked, resumable) into the user cache
      (EMBAUG_CACHE or --cache overrides it) and import it; --url/--md5 name a mirror.
  list                       Data sets with their image counts and versions.
  show <name|id>             Classes, counts per split and class, import report.
${VERSIONS_HELP}`;

export async function data(ctx: Ctx, argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub === 'import') {
    const { values, positionals } = parse(rest, {
      kind: { type: 'string' },
      name: { type: 'string' },
      'test-fraction': { type: 'string' },
      'split-seed': { type: 'string' },
      'max-pixels': { type: 'string' },
    }, 1);
    if (positionals.length !== 1) throw new UsageError('data import takes one path: embaug data import <path> --kind folder|wds|cifar');
    const kind = values.kind as ImportKind | undefined;
    if (!kind || !['folder', 'wds', 'cifar'].includes(kind)) throw new UsageError('--kind must be folder, wds or cifar');
    const stray = ['test-fraction', 'split-seed'].filter((f) => values[f] !== undefined);
    if (kind !== 'folder' && stray.length) throw new UsageError(`--${stray[0]} splits an image folder that has no train/test folders; ${kind === 'wds' ? 'WebDataset shards' : 'CIFAR files'} carry their own splits: leave it out`);
    const path = resolve(positionals[0]);
    const ds = await importDataset(ctx.db(), {
      kind,
      path,
      name: (values.name as string | undefined) ?? path.split('/').filter(Boolean).pop()!,
      splitRule: { test: numOpt(values['test-fraction'], 'test-fraction', 0.2)!, seed: intOpt(values['split-seed'], 'split-seed', 0)! },
      signal: ctx.signal,
      onProgress: ctx.progress,
      threads: ctx.threads,
      maxPixels: intOpt(values['max-pixels'], 'max-pixels') || undefined,
    });
    ctx.out(ds, () => {
      const r = ds.report;
      const lines = [
        `imported "${ds.name}" (id ${ds.id}): ${ds.imageCount} images, ${ds.classes.length} classes, splits ${JSON.stringify(r.perSplit)}`,
        `version ${ds.version.slice(0, 16)}…`,
      ];
      if (Object.keys(r.converted).length) lines.push(`converted to 8-bit RGB: ${JSON.stringify(r.converted)}`);
      if (Object.keys(r.sizes).length > 1) lines.push(`mixed sizes: ${JSON.stringify(r.sizes)} (resized to the backbone's input at extraction)`);
      if (r.emptyClasses.length) lines.push(`empty classes left out: ${r.emptyClasses.join(', ')}`);
      if (r.skipped.length) {
        lines.push(`skipped ${r.skipped.length}:`);
        for (const s of r.skipped.slice(0, 20)) lines.push(`  ${s.source}: ${s.reason}`);
        if (r.skipped.length > 20) lines.push(`  … and ${r.skipped.length - 20} more (--json lists all)`);
      }
      return lines.join('\n');
    });
    return;
  }
  if (sub === 'get') {
    const { values, positionals } = parse(rest, { cache: { type: 'string' }, url: { type: 'string' }, md5: { type: 'string' } }, 1);
    const name = positionals[0];
    if (name !== 'cifar10' && name !== 'cifar100') throw new UsageError('data get takes cifar10 or cifar100');
    if (!!values.url !== !!values.md5) throw new UsageError('--url and --md5 go together: a mirror needs its checksum');
    const archive = values.url ? { ...ARCHIVES[name], url: values.url as string, md5: values.md5 as string } : undefined;
    const ds = await getCifar(ctx.db(), name, { cache: values.cache ? resolve(values.cache as string) : undefined, archive, signal: ctx.signal, onProgress: ctx.progress });
    ctx.out(ds, `data set "${ds.name}" (id ${ds.id}): ${ds.imageCount} images, ${ds.classes.length} classes, splits ${JSON.stringify(ds.report.perSplit)}`);
    return;
  }
  if (sub === 'list') {
    parse(rest, {});
    const list = listDatasets(ctx.db({ readOnly: true }));
    ctx.out(list, () =>
      list.length === 0
        ? 'no data sets yet: embaug data import <path> --kind folder|wds|cifar'
        : table([['id', 'name', 'kind', 'images', 'classes', 'version'], ...list.map((d) => [d.id, d.name, d.kind, d.imageCount, d.classes.length, d.version.slice(0, 12)])]),
    );
    return;
  }
  if (sub === 'show') {
    const ref = parse(rest, {}, 1).positionals[0];
    if (!ref) throw new UsageError('data show takes a data set name or id');
    const ds = getDataset(ctx.db({ readOnly: true }), /^\d+$/.test(ref) ? Number(ref) : ref);
    const hist = classHistogram(ctx.db(), ds.id);
    ctx.out({ ...ds, histogram: hist }, () => {
      const splits = [...new Set(hist.map((h) => h.split))];
      const rows = ds.classes.map((c, i) => [`${i} ${c}`, ...splits.map((s) => hist.find((h) => h.split === s && h.label === i)?.count ?? 0)]);
      return `${ds.name}: ${ds.imageCount} images from ${ds.source}\n${table([['class', ...splits], ...rows])}`;
    });
    return;
  }
  if (await dataVersionCommand(ctx, sub, rest)) return;
  throw new UsageError(`unknown command "data ${sub ?? ''}"\n${DATA_HELP}`);
}

/**
 * The two protocols. `paper`: base CIFAR-100, target CIFAR-10 (the paper's). `cifar10-split`:
 * base = CIFAR-10 classes 0–4, target = classes 5–9 (Yosinski et al. 2014, the transfer study
 * the paper cites), for machines where CIFAR-100 cannot be had.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { addBackbone, parseManifest, type BackboneInfo, type Manifest } from '../backbones/index.js';
import { getDataset, importDataset, listDatasets, type DatasetInfo, type Selection } from '../datasets/index.js';
import type { Db } from '../db.js';
import { EmbaugError } from '../errors.js';
import type { OnProgress } from '../jobs/index.js';
import * as v from '../validate.js';

export type ProtocolName = 'cifar10-split' | 'paper';

export interface Task {
  dataset: DatasetInfo;
  train: Selection;
  test: Selection;
}

export interface Protocol {
  name: ProtocolName;
  base: Task;
  target: Task;
  description: string;
}

/** Local copies the workbench knows how to import, per data set, in order of preference. */
const LOCAL: Record<'cifar10' | 'cifar100', { dir: string; kind: 'wds' | 'cifar' }[]> = {
  cifar10: [{ dir: 'cifar10-wds', kind: 'wds' }, { dir: 'cifar-10-batches-bin', kind: 'cifar' }],
  cifar100: [{ dir: 'cifar100-wds', kind: 'wds' }, { dir: 'cifar-100-binary', kind: 'cifar' }],
};

/** The data set by name, imported from the data folder on first use. */
export async function ensureDataset(db: Db, name: 'cifar10' | 'cifar100', dataDir: string, onProgress?: OnProgress): Promise<DatasetInfo> {
  const existing = listDatasets(db).find((d) => d.name === name);
  if (existing) return existing;
  for (const c of LOCAL[name]) {
    const path = join(dataDir, c.dir);
    if (existsSync(path)) return importDataset(db, { kind: c.kind, path, name, onProgress });
  }
  throw new EmbaugError(
    'E_NOT_FOUND',
    `${name} is not in the database and not under ${dataDir} (looked for ${LOCAL[name].map((c) => c.dir).join(', ')}). ` +
      `Download it with \`embaug data get ${name}\`, or point --data (or EMBAUG_DATA) at a folder that holds it.`,
  );
}

export async function resolveProtocol(db: Db, name: ProtocolName, dataDir: string, subset?: number, onProgress?: OnProgress): Promise<Protocol> {
  const lim = (s: Selection): Selection => (subset ? { ...s, limit: subset, balanced: true } : s);
  if (name === 'cifar10-split') {
    const c10 = await ensureDataset(db, 'cifar10', dataDir, onProgress);
    const base = [0, 1, 2, 3, 4], target = [5, 6, 7, 8, 9];
    return {
      name,
      description: 'base task: CIFAR-10 classes 0–4; target task: classes 5–9 (class-split protocol)',
      base: { dataset: c10, train: lim({ split: 'train', classes: base }), test: lim({ split: 'test', classes: base }) },
      target: { dataset: c10, train: lim({ split: 'train', classes: target }), test: lim({ split: 'test', classes: target }) },
    };
  }
  const c100 = await ensureDataset(db, 'cifar100', dataDir, onProgress);
  const c10 = await ensureDataset(db, 'cifar10', dataDir, onProgress);
  return {
    name,
    description: 'base task: CIFAR-100; target task: CIFAR-10 (the paper\'s protocol)',
    base: { dataset: getDataset(db, c100.id), train: lim({ split: 'train' }), test: lim({ split: 'test' }) },
    target: { dataset: c10, train: lim({ split: 'train' }), test: lim({ split: 'test' }) },
  };
}

export interface Family {
  architecture: string;
  none: BackboneInfo;
  hflip: BackboneInfo;
}

/** A manifest of the models folder that is not part of any family, and why. */
export interface SkippedManifest {
  file: string;
  reason: string;
}

/**
 * Backbone families in a models folder: for each architecture and width, the base model
 * trained without augmentation and the one trained with hflip, for the given protocol. Each
 * manifest is read with the backbone contract's parser; those left out are returned with the
 * reason (and `log` says so), so a broken or mislabelled file is never silently ignored.
 */
export async function discoverFamilies(db: Db, modelsDir: string, protocol: ProtocolName, archs?: string[], log?: (line: string) => void): Promise<Family[]> {
  if (!existsSync(modelsDir)) throw new EmbaugError('E_NOT_FOUND', `The models folder ${modelsDir} does not exist: pass --models.`);
  const groups = new Map<string, Partial<Record<'none' | 'hflip', string>>>();
  const skipped: SkippedManifest[] = [];
  const seen = new Set<string>();
  for (const f of readdirSync(modelsDir).filter((x) => x.endsWith('.json')).sort()) {
    let m: Manifest & { width?: number };
    try {
      m = parseManifest(JSON.parse(readFileSync(join(modelsDir, f), 'utf8')), f);
    } catch (err) {
      skipped.push({ file: f, reason: (err as Error).message });
      continue;
    }
    const aug = (m.base as { augmentation?: string } | undefined)?.augmentation;
    if (m.protocol === protocol) seen.add(m.architecture);
    if (!m.file) skipped.push({ file: f, reason: 'names no ONNX file ("file")' });
    else if (m.protocol !== protocol) skipped.push({ file: f, reason: `protocol ${m.protocol ?? '(none)'}, not ${protocol}` });
    else if (aug !== 'none' && aug !== 'hflip') skipped.push({ file: f, reason: `base augmentation ${aug ?? '(none)'}: families pair "none" with "hflip"` });
    else if (archs && !archs.includes(m.architecture)) skipped.push({ file: f, reason: `architecture ${m.architecture} not asked for` });
    else {
      const key = `${m.architecture}/${m.width ?? ''}`;
      groups.set(key, { ...groups.get(key), [aug]: f });
    }
  }
  // A misspelt architecture is named, not quietly left out beside the ones that exist.
  if (archs) v.distinct('archs', archs);
  const unknown = archs?.filter((a) => !seen.has(a)) ?? [];
  if (unknown.length)
    throw new EmbaugError('E_ARG', `No model in ${modelsDir} is of architecture ${unknown.map((a) => `"${a}"`).join(', ')} for protocol ${protocol}: its architectures are ${[...seen].sort().join(', ') || '(none)'}; give some of those to --archs.`);
  const add = (manifestFile: string) => {
    const path = join(modelsDir, manifestFile);
    const m = JSON.parse(readFileSync(path, 'utf8')) as { file: string };
    return addBackbone(db, { onnxPath: join(modelsDir, m.file), manifest: path });
  };
  const families: Family[] = [];
  for (const [key, g] of groups) {
    if (!g.none || !g.hflip) {
      skipped.push({ file: (g.none ?? g.hflip)!, reason: `no partner trained with ${g.none ? 'hflip' : 'no augmentation'} for ${key}` });
      continue;
    }
    families.push({ architecture: key.split('/')[0], none: await add(g.none), hflip: await add(g.hflip) });
  }
  for (const s of skipped) log?.(`models: ${s.file} left out: ${s.reason}`);
  if (families.length === 0)
    throw new EmbaugError(
      'E_NOT_FOUND',
      `No backbone pairs (base augmentation none and hflip, protocol ${protocol}) in ${modelsDir}${archs ? ` for ${archs.join(', ')}` : ''}` +
        `${skipped.length ? `; left out: ${skipped.map((x) => `${x.file} (${x.reason})`).join('; ')}` : ''}.`,
    );
  return families;
}

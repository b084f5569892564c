/**
 * Readers of the three source layouts. Each turns files into SourceItems plus what it had
 * to skip; checking, de-duplication and writing are store.ts's.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { extract as tarExtract } from 'tar-stream';

import { EmbaugError } from '../errors.js';
import { checkClassNames } from './names.js';
import type { ImportSource, Skipped, SourceItem } from './store.js';

const SPLIT_NAMES = new Set(['train', 'test', 'val', 'valid', 'validation']);
const IMAGE_EXT = new Set(['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.bmp']);

function mustBeDir(path: string, what: string): void {
  if (!existsSync(path) || !statSync(path).isDirectory())
    throw new EmbaugError('E_IMPORT', `${what} ${path} is not a folder: give the folder that holds the ${what === 'WebDataset' ? 'shards' : 'class folders'}.`);
}

/**
 * The largest class index a label file may name. Labels index an array of class names,
 * so a forged `.cls` of 3000000000 must not become three billion classes.
 */
export const MAX_CLASSES = 100_000;

/** A label as a file states it: plain decimal digits only (surrounding white space allowed). */
export function parseLabel(text: string): number | string {
  const t = text.trim();
  if (t === '') return 'the label is empty';
  if (!/^\d+$/.test(t)) return `the label ${JSON.stringify(t.slice(0, 20))} is not a plain decimal class index`;
  const n = Number(t);
  if (n >= MAX_CLASSES) return `the label ${t.length > 12 ? `${t.slice(0, 12)}…` : t} exceeds the limit of ${MAX_CLASSES - 1}`;
  return n;
}

interface Entry {
  name: string;
  path: string;
  kind: 'dir' | 'file';
}

/**
 * A folder's entries, with what cannot be imported reported rather than dropped: symbolic
 * links (not followed, so an import never reaches outside the folder the user chose),
 * names that are not valid UTF-8 (they cannot be named back in a report or an export), and
 * anything that is neither a file nor a folder. Hidden entries are passed over.
 */
function entries(dir: string, rel: string, skipped: Skipped[]): Entry[] {
  const out: Entry[] = [];
  for (const d of readdirSync(dir, { withFileTypes: true, encoding: 'buffer' })) {
    const raw = d.name as unknown as Buffer;
    const name = raw.toString('utf8');
    if (name.startsWith('.')) continue;
    const at = rel ? `${rel}/${name}` : name;
    if (!Buffer.from(name, 'utf8').equals(raw)) {
      skipped.push({ source: at, reason: `the name is not valid UTF-8 (bytes ${raw.toString('hex')}): rename it to import it` });
      continue;
    }
    if (d.isSymbolicLink()) skipped.push({ source: at, reason: 'a symbolic link: links are not followed; copy the target in to import it' });
    else if (d.isDirectory()) out.push({ name, path: join(dir, name), kind: 'dir' });
    else if (d.isFile()) out.push({ name, path: join(dir, name), kind: 'file' });
    else skipped.push({ source: at, reason: 'not a regular file or folder' });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function dirs(path: string, rel: string, skipped: Skipped[]): string[] {
  return entries(path, rel, skipped).filter((e) => e.kind === 'dir').map((e) => e.name);
}

function filesUnder(path: string, rel: string, skipped: Skipped[]): { path: string; rel: string }[] {
  return entries(path, rel, skipped).flatMap((e) =>
    e.kind === 'dir' ? filesUnder(e.path, `${rel}/${e.name}`, skipped) : [{ path: e.path, rel: `${rel}/${e.name}` }],
  );
}

export interface SplitRule {
  /** Fraction of each class put in the test split, by a hash of the file's bytes. */
  test: number;
  seed: number;
}

/** A stable split by content: the same file lands in the same split on every import. */
function splitOf(bytes: Uint8Array, rule: SplitRule): string {
  const h = createHash('sha256').update(String(rule.seed)).update(bytes).digest();
  return h.readUInt32BE(0) / 2 ** 32 < rule.test ? 'test' : 'train';
}

/** `root/<split>/<class>/*` when the top folders are split names, else `root/<class>/*` split by rule. */
export function readFolder(root: string, rule: SplitRule = { test: 0.2, seed: 0 }): ImportSource {
  mustBeDir(root, 'image folder');
  const skipped: Skipped[] = [];
  const top = dirs(root, '', skipped);
  const bySplit = top.length > 0 && top.every((d) => SPLIT_NAMES.has(d.toLowerCase()));
  const splits = bySplit ? top : [null];
  const found = [...new Set(splits.flatMap((s) => dirs(s ? join(root, s) : root, s ?? '', s ? skipped : [])))].sort();
  // An embaug export keeps its class order (labels) and, where a name had to change to be a
  // folder name, the folder of each class, in its manifest; elsewhere folder names sort.
  const manifest = readManifest(join(root, 'embaug-manifest.json'));
  const folders = manifest?.class_folders ?? manifest?.classes;
  const fromManifest = manifest?.classes && folders && folders.length === manifest.classes.length && found.every((f) => folders.includes(f));
  const classes = fromManifest ? manifest!.classes! : found;
  const folderOf = fromManifest ? folders! : found;
  if (classes.length === 0) throw new EmbaugError('E_IMPORT', `${root} has no class folders: expected root/<class>/* or root/<split>/<class>/*.`);
  checkClassNames(classes, fromManifest ? `The manifest of ${root}` : root);
  const items: SourceItem[] = [];
  for (const s of splits) {
    for (const [label, folder] of folderOf.entries()) {
      const dir = s ? join(root, s, folder) : join(root, folder);
      if (!existsSync(dir) || !statSync(dir).isDirectory()) continue;
      for (const file of filesUnder(dir, s ? `${s}/${folder}` : folder, skipped)) {
        let bytes: Uint8Array;
        try {
          bytes = readFileSync(file.path);
        } catch (err) {
          skipped.push({ source: file.rel, reason: `unreadable: ${(err as Error).message}` });
          continue;
        }
        if (!IMAGE_EXT.has(extname(file.path).toLowerCase()) && bytes.length < 12) {
          skipped.push({ source: file.rel, reason: 'not an image (too small to be one)' });
          continue;
        }
        items.push({ bytes, label, split: s ? normaliseSplit(s) : splitOf(bytes, rule), source: file.rel });
      }
    }
  }
  return { kind: 'folder', source: root, classes, items, skipped };
}

function readManifest(file: string): { classes?: string[]; class_folders?: string[] } | null {
  if (!existsSync(file)) return null;
  try {
    const m = JSON.parse(readFileSync(file, 'utf8')) as { classes?: unknown; class_folders?: unknown };
    const strings = (a: unknown) => (Array.isArray(a) && a.every((x) => typeof x === 'string') ? (a as string[]) : undefined);
    return { classes: strings(m.classes), class_folders: strings(m.class_folders) };
  } catch (err) {
    throw new EmbaugError('E_IMPORT', `${file} is not valid JSON (${(err as Error).message}): fix or remove it; nothing was imported.`);
  }
}

function normaliseSplit(s: string): string {
  const l = s.toLowerCase();
  return l === 'valid' || l === 'validation' ? 'val' : l;
}

/**
 * WebDataset shards: members grouped by key (the name up to the first dot of its base
 * name); the image member plus `.cls` (a class index) or `.json` (`label` or `cls`). The
 * split comes from the shard name's prefix (`train-000000.tar`), else "train".
 */
export async function readWds(dir: string): Promise<ImportSource> {
  mustBeDir(dir, 'WebDataset');
  const shards = readdirSync(dir).filter((f) => f.endsWith('.tar')).sort();
  if (shards.length === 0) throw new EmbaugError('E_IMPORT', `${dir} holds no .tar shards.`);
  const classesFile = join(dir, 'classes.txt');
  const named = existsSync(classesFile) ? readFileSync(classesFile, 'utf8').split('\n').map((l) => l.trim()).filter(Boolean) : null;
  if (named) checkClassNames(named, classesFile);
  const items: SourceItem[] = [];
  const skipped: Skipped[] = [];
  for (const shard of shards) {
    const prefix = shard.split(/[-_.]/)[0].toLowerCase();
    const split = SPLIT_NAMES.has(prefix) ? normaliseSplit(prefix) : 'train';
    const groups = new Map<string, Map<string, Buffer>>();
    try {
      await readTar(join(dir, shard), (name, data) => {
        const base = basename(name);
        const dot = base.indexOf('.');
        if (dot <= 0) return;
        const key = join(name.slice(0, name.length - base.length), base.slice(0, dot));
        const ext = base.slice(dot + 1).toLowerCase();
        if (!groups.has(key)) groups.set(key, new Map());
        groups.get(key)!.set(ext, data);
      }, (name, reason) => skipped.push({ source: `${shard}:${name}`, reason }));
    } catch (err) {
      throw new EmbaugError('E_IMPORT', `Shard ${shard} is not a readable tar file (${(err as Error).message}); nothing was imported.`);
    }
    for (const [key, members] of groups) {
      const source = `${shard}:${key}`;
      const imgExt = ['jpg', 'jpeg', 'png', 'webp'].find((e) => members.has(e));
      if (!imgExt) {
        skipped.push({ source, reason: `no image member (has ${[...members.keys()].join(', ')})` });
        continue;
      }
      const label = memberLabel(members);
      if (typeof label === 'string') {
        skipped.push({ source, reason: label });
        continue;
      }
      if (named && label >= named.length) {
        skipped.push({ source, reason: `label ${label} is not one of the ${named.length} classes of classes.txt (0..${named.length - 1})` });
        continue;
      }
      items.push({ bytes: members.get(imgExt)!, label, split, source: `${source}.${imgExt}` });
    }
  }
  if (named) return { kind: 'wds', source: dir, classes: named, items, skipped };
  // Without class names, the classes are the labels seen, in order: never 0..max.
  const seen = [...new Set(items.map((it) => it.label))].sort((a, b) => a - b);
  const index = new Map(seen.map((l, i) => [l, i]));
  for (const it of items) it.label = index.get(it.label)!;
  return { kind: 'wds', source: dir, classes: seen.map((l) => `class_${l}`), items, skipped };
}

/** The label of a sample from its `.cls`, or `.json` (`label`, `cls` or `class`); a string says why not. */
function memberLabel(members: Map<string, Buffer>): number | string {
  if (members.has('cls')) {
    const r = parseLabel(members.get('cls')!.toString('utf8'));
    return typeof r === 'string' ? `.cls: ${r}` : r;
  }
  if (members.has('json')) {
    let j: { label?: unknown; cls?: unknown; class?: unknown };
    try {
      j = JSON.parse(members.get('json')!.toString('utf8'));
    } catch {
      return '.json is not valid JSON';
    }
    const v = j?.label ?? j?.cls ?? j?.class;
    if (typeof v !== 'number' && typeof v !== 'string') return '.json has no "label" (a class index)';
    const r = parseLabel(String(v));
    return typeof r === 'string' ? `.json: ${r}` : r;
  }
  return 'no label (.cls with a class index, or .json with "label")';
}

async function readTar(file: string, onFile: (name: string, data: Buffer) => void, onSkip: (name: string, reason: string) => void): Promise<void> {
  const ex = tarExtract();
  const done = (async () => {
    for await (const entry of ex) {
      const { name, type } = entry.header;
      if (type === 'file' && name.includes('\uFFFD')) {
        entry.resume();
        onSkip(name, 'the member name is not valid UTF-8: rename it to import it');
        continue;
      }
      if (type === 'symlink' || type === 'link') {
        entry.resume();
        onSkip(name, `a ${type === 'link' ? 'hard' : 'symbolic'} link member: links are not followed; store the file itself`);
        continue;
      }
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      if (type === 'file') onFile(name, Buffer.concat(chunks));
    }
  })();
  const stream = createReadStream(file);
  stream.on('error', (e) => ex.destroy(e));
  stream.pipe(ex);
  await done;
}

/** The official binary CIFAR layouts: cifar-10-batches-bin/ or cifar-100-binary/. */
export function readCifarBinary(dir: string): ImportSource {
  mustBeDir(dir, 'CIFAR binary');
  const has = (f: string) => existsSync(join(dir, f));
  const c10 = has('test_batch.bin');
  const c100 = has('train.bin') && has('test.bin');
  if (!c10 && !c100)
    throw new EmbaugError('E_IMPORT', `${dir} is not a CIFAR binary folder: expected data_batch_1..5.bin and test_batch.bin (CIFAR-10) or train.bin and test.bin (CIFAR-100).`);
  const labelBytes = c10 ? 1 : 2;
  const recordBytes = labelBytes + 3072;
  const files: [string, string][] = c10
    ? [...[1, 2, 3, 4, 5].map((i) => [`data_batch_${i}.bin`, 'train'] as [string, string]), ['test_batch.bin', 'test']]
    : [['train.bin', 'train'], ['test.bin', 'test']];
  const metaFile = c10 ? 'batches.meta.txt' : 'fine_label_names.txt';
  const classes = has(metaFile)
    ? readFileSync(join(dir, metaFile), 'utf8').split('\n').map((l) => l.trim()).filter(Boolean)
    : Array.from({ length: c10 ? 10 : 100 }, (_, i) => `class_${i}`);
  checkClassNames(classes, join(dir, metaFile));
  const items: SourceItem[] = [];
  const skipped: Skipped[] = [];
  for (const [file, split] of files) {
    if (!has(file)) {
      skipped.push({ source: file, reason: 'missing from the folder' });
      continue;
    }
    const buf = readFileSync(join(dir, file));
    if (buf.length % recordBytes !== 0)
      throw new EmbaugError('E_IMPORT', `${file} has ${buf.length} bytes, not a whole number of ${recordBytes}-byte records: the file is truncated or not CIFAR-${c10 ? 10 : 100}. Nothing was imported.`);
    for (let r = 0; r < buf.length / recordBytes; r++) {
      const rec = buf.subarray(r * recordBytes, (r + 1) * recordBytes);
      const label = rec[labelBytes - 1]; // CIFAR-100: [coarse, fine]; we use the fine label
      if (label >= classes.length) {
        skipped.push({ source: `${file}#${r}`, reason: `label ${label} out of range` });
        continue;
      }
      // Records store planes R, G, B of 1024 bytes; we keep HWC.
      const hwc = new Uint8Array(3072);
      for (let p = 0; p < 1024; p++) {
        hwc[p * 3] = rec[labelBytes + p];
        hwc[p * 3 + 1] = rec[labelBytes + 1024 + p];
        hwc[p * 3 + 2] = rec[labelBytes + 2048 + p];
      }
      items.push({ bytes: hwc, label, split, source: `${file}#${r}`, raw: { width: 32, height: 32 } });
    }
  }
  return { kind: c10 ? 'cifar10-bin' : 'cifar100-bin', source: dir, classes, items, skipped };
}

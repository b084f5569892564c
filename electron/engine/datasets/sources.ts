/**
 * Readers of the three source layouts. Each turns files into SourceItems plus what it had
 * to skip; checking, de-duplication and writing are store.ts's.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, extname, join, relative } from 'node:path';
import { extract as tarExtract } from 'tar-stream';

import { EmbaugError } from '../errors.js';
import type { ImportSource, Skipped, SourceItem } from './store.js';

const SPLIT_NAMES = new Set(['train', 'test', 'val', 'valid', 'validation']);
const IMAGE_EXT = new Set(['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.bmp']);

function mustBeDir(path: string, what: string): void {
  if (!existsSync(path) || !statSync(path).isDirectory())
    throw new EmbaugError('E_IMPORT', `${what} ${path} is not a folder: give the folder that holds the ${what === 'WebDataset' ? 'shards' : 'class folders'}.`);
}

function dirs(path: string): string[] {
  return readdirSync(path, { withFileTypes: true }).filter((d) => d.isDirectory() && !d.name.startsWith('.')).map((d) => d.name).sort();
}

function filesUnder(path: string): string[] {
  return readdirSync(path, { withFileTypes: true, recursive: true })
    .filter((d) => d.isFile() && !d.name.startsWith('.'))
    .map((d) => join(d.parentPath ?? (d as unknown as { path: string }).path, d.name))
    .sort();
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
  const top = dirs(root);
  const bySplit = top.length > 0 && top.every((d) => SPLIT_NAMES.has(d.toLowerCase()));
  const splits = bySplit ? top : [null];
  const found = [...new Set(splits.flatMap((s) => dirs(s ? join(root, s) : root)))].sort();
  // An embaug export keeps its class order (labels) in its manifest; elsewhere names sort.
  const manifest = join(root, 'embaug-manifest.json');
  const listed = existsSync(manifest) ? (JSON.parse(readFileSync(manifest, 'utf8')) as { classes?: string[] }).classes : undefined;
  const classes = listed && found.every((c) => listed.includes(c)) ? listed : found;
  if (classes.length === 0) throw new EmbaugError('E_IMPORT', `${root} has no class folders: expected root/<class>/* or root/<split>/<class>/*.`);
  const items: SourceItem[] = [];
  const skipped: Skipped[] = [];
  for (const s of splits) {
    for (const [label, cls] of classes.entries()) {
      const dir = s ? join(root, s, cls) : join(root, cls);
      if (!existsSync(dir)) continue;
      for (const file of filesUnder(dir)) {
        const rel = relative(root, file);
        let bytes: Uint8Array;
        try {
          bytes = readFileSync(file);
        } catch (err) {
          skipped.push({ source: rel, reason: `unreadable: ${(err as Error).message}` });
          continue;
        }
        if (!IMAGE_EXT.has(extname(file).toLowerCase()) && bytes.length < 12) {
          skipped.push({ source: rel, reason: 'not an image (too small to be one)' });
          continue;
        }
        items.push({ bytes, label, split: s ? normaliseSplit(s) : splitOf(bytes, rule), source: rel });
      }
    }
  }
  return { kind: 'folder', source: root, classes, items, skipped };
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
  const items: SourceItem[] = [];
  const skipped: Skipped[] = [];
  let maxLabel = -1;
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
      });
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
      let label: number | null = null;
      if (members.has('cls')) label = Number(members.get('cls')!.toString('utf8').trim());
      else if (members.has('json')) {
        try {
          const j = JSON.parse(members.get('json')!.toString('utf8'));
          label = Number(j.label ?? j.cls ?? j.class);
        } catch {
          label = null;
        }
      }
      if (label === null || !Number.isInteger(label) || label < 0) {
        skipped.push({ source, reason: 'no valid label (.cls with a class index, or .json with "label")' });
        continue;
      }
      maxLabel = Math.max(maxLabel, label);
      items.push({ bytes: members.get(imgExt)!, label, split, source: `${source}.${imgExt}` });
    }
  }
  if (named && maxLabel >= named.length)
    throw new EmbaugError('E_IMPORT', `A label ${maxLabel} exceeds the ${named.length} classes of ${classesFile}.`);
  const classes = named ?? Array.from({ length: maxLabel + 1 }, (_, i) => `class_${i}`);
  return { kind: 'wds', source: dir, classes, items, skipped };
}

async function readTar(file: string, onFile: (name: string, data: Buffer) => void): Promise<void> {
  const ex = tarExtract();
  const done = (async () => {
    for await (const entry of ex) {
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      if (entry.header.type === 'file') onFile(entry.header.name, Buffer.concat(chunks));
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

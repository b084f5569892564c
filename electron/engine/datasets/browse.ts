/**
 * The folder picker of web mode and the import preview: what a folder holds, listed with
 * the asynchronous file system calls only (they run on libuv's pool), so a slow or odd file
 * system never stalls the server's thread, and only inside the folders it may show.
 */
import { readdir, realpath, stat } from 'node:fs/promises';
import { dirname, extname, join, relative, sep } from 'node:path';

import { EmbaugError } from '../errors.js';

const SPLIT_NAMES = new Set(['train', 'test', 'val', 'valid', 'validation']);
const IMAGE_EXT = new Set(['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.bmp']);
/** Files counted per folder at most: a preview of a huge tree stays quick. */
const COUNT_LIMIT = 100_000;

export interface FolderListing {
  path: string;
  /** The folder above, when it is still inside a root. */
  parent: string | null;
  dirs: { name: string; path: string }[];
  /** Image files directly in this folder. */
  images: number;
  /** Files of the extensions asked for (a file picker's listing), none otherwise. */
  files: { name: string; path: string }[];
  roots: string[];
}

async function inside(path: string, roots: string[]): Promise<string> {
  let real: string;
  try {
    real = await realpath(path);
  } catch (err) {
    throw new EmbaugError('E_NOT_FOUND', `There is no folder ${path} (${(err as NodeJS.ErrnoException).code}): choose another.`);
  }
  const realRoots = await Promise.all(roots.map((r) => realpath(r).catch(() => null)));
  if (!realRoots.some((r) => r !== null && (real === r || real.startsWith(r.endsWith(sep) ? r : r + sep))))
    throw new EmbaugError('E_ARG', `${path} is outside the folders the workbench may browse (${roots.join(', ')}): choose a folder inside one of them.`);
  return real;
}

/** The sub-folders of `path` (or of the first root), and how many images it holds itself. */
export async function listFolder(path: string | undefined, roots: string[], ext: string[] = []): Promise<FolderListing> {
  const dir = await inside(path ?? roots[0], roots);
  if (!(await stat(dir)).isDirectory()) throw new EmbaugError('E_ARG', `${dir} is a file, not a folder: choose the folder that holds the images.`);
  const entries = await readdir(dir, { withFileTypes: true });
  const dirs = entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => ({ name: e.name, path: join(dir, e.name) })).sort((a, b) => a.name.localeCompare(b.name));
  const images = entries.filter((e) => e.isFile() && IMAGE_EXT.has(extname(e.name).toLowerCase())).length;
  const wanted = new Set(ext.map((x) => x.toLowerCase()));
  const files = entries.filter((e) => e.isFile() && wanted.has(extname(e.name).toLowerCase())).map((e) => ({ name: e.name, path: join(dir, e.name) })).sort((a, b) => a.name.localeCompare(b.name));
  const up = dirname(dir);
  const parent = up !== dir ? await inside(up, roots).then(() => up, () => null) : null;
  return { path: dir, parent, dirs, images, files, roots };
}

export interface FolderPreview {
  path: string;
  /** by-split: root/<split>/<class>/*, the folder's own split; by-class: root/<class>/*, split by a fraction. */
  layout: 'by-split' | 'by-class';
  classes: string[];
  /** Image files per split (by-split) or in all (by-class, under "all"), per class. */
  counts: Record<string, Record<string, number>>;
  total: number;
}

async function countImages(dir: string, budget: { left: number }): Promise<number> {
  let n = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (budget.left <= 0) break;
    if (e.isDirectory()) n += await countImages(join(dir, e.name), budget);
    else if (e.isFile() && IMAGE_EXT.has(extname(e.name).toLowerCase())) (n++, budget.left--);
  }
  return n;
}

/** How an import of this folder will read it: its layout, classes and images per split. */
export async function previewFolder(path: string, roots: string[]): Promise<FolderPreview> {
  const root = await inside(path, roots);
  const subdirs = async (d: string) => (await readdir(d, { withFileTypes: true })).filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort();
  const top = await subdirs(root);
  const bySplit = top.length > 0 && top.every((d) => SPLIT_NAMES.has(d.toLowerCase()));
  const budget = { left: COUNT_LIMIT };
  const counts: FolderPreview['counts'] = {};
  for (const s of bySplit ? top : [null]) {
    const base = s ? join(root, s) : root;
    const byClass: Record<string, number> = {};
    for (const c of await subdirs(base)) byClass[c] = await countImages(join(base, c), budget);
    counts[s ?? 'all'] = byClass;
  }
  const classes = [...new Set(Object.values(counts).flatMap((c) => Object.keys(c)))].sort();
  if (!classes.length) throw new EmbaugError('E_IMPORT', `${relative(roots[0], root) || root} has no class folders: put each class's images in a folder of its own (root/<class>/*, or root/train/<class>/* and root/test/<class>/*).`);
  const total = Object.values(counts).reduce((a, c) => a + Object.values(c).reduce((x, y) => x + y, 0), 0);
  return { path: root, layout: bySplit ? 'by-split' : 'by-class', classes, counts, total };
}

/**
 * Paths: the package root, found by walking up to embaug's package.json (the same answer from
 * the TypeScript sources, electron/engine, and from the build, dist/electron/engine); folders
 * made without hanging; files written whole; and where a command may write, checked first.
 */
import { existsSync, mkdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { EmbaugError, type ErrorCode } from './errors.js';

let root: string | undefined;

export function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'embaug') return (root = dir);
    const up = dirname(dir);
    if (up === dir) throw new Error(`embaug's package.json was not found above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/** embaug's version, from its package.json. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

/**
 * Writes a file whole or not at all: into a temporary name beside it, then renamed, so a
 * reader (a merge, another node on shared storage) never sees half a file, and a task killed
 * mid-write leaves no file that looks finished.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  makeDirs(dirname(resolve(path)));
  const tmp = join(dirname(resolve(path)), `.${basename(path)}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/**
 * `mkdir -p` that cannot hang. Node 20's recursive mkdirSync loops forever on a file system
 * that answers ENOENT for a folder it will not create (the kernel's /proc), and a thread
 * stuck there can be neither terminated nor waited out; so the folders are made one level at
 * a time, and such a file system fails with its own error. Throws Node's errors (with their
 * codes) for the caller to put in words.
 */
export function makeDirs(dir: string): void {
  const missing: string[] = [];
  for (let d = resolve(dir); ; d = dirname(d)) {
    const st = statSync(d, { throwIfNoEntry: false });
    if (st) {
      if (!st.isDirectory()) throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${d}'`), { code: 'ENOTDIR', path: d });
      break;
    }
    missing.push(d);
    if (dirname(d) === d) break;
  }
  for (const d of missing.reverse())
    try {
      mkdirSync(d);
    } catch (err) {
      // Another process may have made it meanwhile.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !statSync(d).isDirectory()) throw err;
    }
}

/** A new file a command writes: never one that exists (the user's), its folder made now (outputFolder). */
export function outputFile(path: string): string {
  const abs = resolve(path);
  if (existsSync(abs)) throw new EmbaugError('E_EXISTS', `${abs} exists: embaug does not overwrite files; choose another name or remove it.`);
  return join(outputFolder(dirname(abs)), basename(abs));
}

/**
 * The folder a command writes into, made now and checked, as a real path (links resolved
 * once, here). Called before any work: a path that is a file, or one that cannot be made (no
 * permission, a virtual file system such as /proc), is refused in words up front, not as a
 * raw system error after minutes of work.
 */
export function outputFolder(dir: string, code: ErrorCode = 'E_ARG'): string {
  const abs = resolve(dir);
  const step = <T>(what: string, fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const why = e.code === 'ENOTDIR' ? `${fileOnTheWay(abs)} is a file, not a folder` : e.message;
      throw new EmbaugError(code, `Could not ${what} ${abs}: ${why}. Nothing was written; choose another folder.`);
    }
  };
  step('create the folder', () => makeDirs(abs));
  const real = step('open the folder', () => realpathSync(abs));
  if (!statSync(real).isDirectory()) throw new EmbaugError(code, `${abs} is a file, not a folder: choose a folder to write into.`);
  return real;
}

/** The nearest part of a path that exists; on ENOTDIR, the file that stands where a folder should. */
function fileOnTheWay(path: string): string {
  let d = path;
  while (dirname(d) !== d && !existsSync(d)) d = dirname(d);
  return d;
}

/**
 * `embaug data get`: the official CIFAR binary archives from their official address,
 * checked against their published MD5, resumable (HTTP Range on a .part file), unpacked
 * into the user cache, then imported. A corrupt or truncated archive is refused and nothing
 * of it is imported.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { extract as tarExtract } from 'tar-stream';

import type { Db } from '../db.js';
import { EmbaugError } from '../errors.js';
import { ProgressMeter, throwIfAborted, type OnProgress } from '../jobs/index.js';
import { cacheDir } from '../settings.js';
import { importDataset } from './import.js';
import { listDatasets, type DatasetInfo } from './store.js';
import { makeDirs } from '../paths.js';

export interface Archive {
  url: string;
  md5: string;
  /** The folder the archive unpacks to. */
  dir: string;
}

// The official archives and the MD5 sums published beside them.
export const ARCHIVES: Record<'cifar10' | 'cifar100', Archive> = {
  cifar10: { url: 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz', md5: 'c32a1d4ab5d03f1284b67883e8d87530', dir: 'cifar-10-batches-bin' },
  cifar100: { url: 'https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz', md5: '03b5dce01913d631647c71ecec9e9cb8', dir: 'cifar-100-binary' },
};

export interface GetOptions {
  cache?: string;
  /** Another archive (a mirror, or a test server): same layout, its own checksum. */
  archive?: Archive;
  signal?: AbortSignal;
  onProgress?: OnProgress;
}

async function md5(file: string): Promise<string> {
  const h = createHash('md5');
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return h.digest('hex');
}

/** Downloads to `dest`, resuming a `.part` file left by an interrupted transfer. */
export async function download(url: string, dest: string, signal?: AbortSignal, onProgress?: OnProgress): Promise<void> {
  makeDirs(dirname(dest));
  const part = `${dest}.part`;
  const have = existsSync(part) ? statSync(part).size : 0;
  let res: Response;
  try {
    res = await fetch(url, { headers: have ? { Range: `bytes=${have}-` } : {}, signal });
  } catch (err) {
    throwIfAborted(signal, 'the download');
    throw new EmbaugError('E_DOWNLOAD', `Could not reach ${url}: ${(err as Error).cause ?? (err as Error).message}. Check the connection and run the command again; it resumes.`);
  }
  if (res.status === 416) {
    // The .part is already complete (or longer than the file): start over to be safe.
    rmSync(part, { force: true });
    return download(url, dest, signal, onProgress);
  }
  if (!res.ok || !res.body) throw new EmbaugError('E_DOWNLOAD', `${url} answered ${res.status} ${res.statusText}.`);
  const resumed = res.status === 206;
  const total = Number(res.headers.get('content-length') ?? 0) + (resumed ? have : 0);
  const meter = new ProgressMeter(resumed ? `downloading (resumed at ${have} bytes)` : 'downloading', total, 'bytes', onProgress);
  meter.tick(resumed ? have : 0);
  const counted = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream).on('data', (c: Buffer) => meter.tick(c.length));
  try {
    await pipeline(counted, createWriteStream(part, { flags: resumed ? 'a' : 'w' }), { signal });
  } catch (err) {
    throwIfAborted(signal, 'the download');
    throw new EmbaugError('E_DOWNLOAD', `The download of ${url} broke off (${(err as Error).message}); run the command again to resume it.`);
  }
  if (total && statSync(part).size < total)
    throw new EmbaugError('E_DOWNLOAD', `The download of ${url} stopped at ${statSync(part).size} of ${total} bytes; run the command again to resume it.`);
  renameSync(part, dest);
}

/** Unpacks a .tar.gz into `dir` atomically: into a temporary folder, renamed when complete. */
async function unpack(archive: string, into: string): Promise<void> {
  const tmp = `${into}.unpacking`;
  rmSync(tmp, { recursive: true, force: true });
  makeDirs(tmp);
  const ex = tarExtract();
  const done = (async () => {
    for await (const entry of ex) {
      const name = entry.header.name.replace(/^\.?\/+/, '');
      if (entry.header.type !== 'file' || name.split('/').includes('..')) {
        entry.resume();
        continue;
      }
      const out = join(tmp, name);
      makeDirs(dirname(out));
      await pipeline(entry, createWriteStream(out));
    }
  })();
  try {
    await Promise.all([pipeline(createReadStream(archive), createGunzip(), ex), done]);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw new EmbaugError('E_CHECKSUM', `${archive} is not a readable .tar.gz (${(err as Error).message}): it was removed; run the command again to download it afresh.`);
  }
  rmSync(into, { recursive: true, force: true });
  renameSync(tmp, into);
}

/** Downloads (or reuses), verifies, unpacks and imports CIFAR-10 or CIFAR-100 as a data set. */
export async function getCifar(db: Db, name: 'cifar10' | 'cifar100', o: GetOptions = {}): Promise<DatasetInfo> {
  const existing = listDatasets(db).find((d) => d.name === name);
  if (existing) return existing;
  const a = o.archive ?? ARCHIVES[name];
  const cache = o.cache ?? cacheDir();
  const file = join(cache, 'downloads', a.url.split('/').pop()!);
  const dataDir = join(cache, 'data', a.dir);
  if (!existsSync(dataDir)) {
    if (!existsSync(file)) await download(a.url, file, o.signal, o.onProgress);
    const sum = await md5(file);
    if (sum !== a.md5) {
      rmSync(file, { force: true });
      throw new EmbaugError('E_CHECKSUM', `${file} has MD5 ${sum}, but the published checksum is ${a.md5}: the download is corrupt or truncated and was removed; run the command again.`);
    }
    await unpack(file, join(cache, 'data', `${a.dir}.tmp`));
    // Archives hold the data folder at their top; move it into place.
    const inner = join(cache, 'data', `${a.dir}.tmp`, a.dir);
    if (!existsSync(inner)) throw new EmbaugError('E_CHECKSUM', `${file} does not hold ${a.dir}/: not a CIFAR binary archive.`);
    renameSync(inner, dataDir);
    rmSync(join(cache, 'data', `${a.dir}.tmp`), { recursive: true, force: true });
  }
  return importDataset(db, { kind: 'cifar', path: dataDir, name, signal: o.signal, onProgress: o.onProgress });
}

/**
 * Exporting the current version of a data set as an image folder (`<split>/<class>/`) or as
 * WebDataset shards, each with a manifest; importing the export gives the same version hash
 * for data sets of encoded images (raw CIFAR pixels are written as PNG, whose bytes differ).
 */
import { createWriteStream, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import sharp from 'sharp';
import { pack } from 'tar-stream';

import type { Db } from '../db.js';
import { EmbaugError } from '../errors.js';
import { getDataset, readBlobs, selectImages } from './store.js';

export const MANIFEST = 'embaug-manifest.json';

const EXT: Record<string, string> = { jpeg: 'jpg', png: 'png', webp: 'webp', gif: 'gif', tiff: 'tif', bmp: 'bmp', rgb: 'png' };

export async function exportDataset(db: Db, ref: number | string, o: { format: 'folder' | 'wds'; out: string }): Promise<{ out: string; images: number; version: string }> {
  const ds = getDataset(db, ref);
  const out = resolve(o.out);
  if (existsSync(out) && readdirSync(out).length > 0) throw new EmbaugError('E_ARG', `${out} is not empty: export into a new or empty folder.`);
  mkdirSync(out, { recursive: true });
  const rows = selectImages(db, ds.id);
  const bytes = async (i: number) => {
    const [b] = readBlobs(db, [rows[i].sha256]);
    return b.format === 'rgb' ? sharp(b.bytes, { raw: { width: b.width, height: b.height, channels: 3 } }).png().toBuffer() : Buffer.from(b.bytes);
  };
  const ext = (i: number) => EXT[readBlobs(db, [rows[i].sha256])[0].format] ?? 'bin';
  if (o.format === 'folder') {
    for (let i = 0; i < rows.length; i++) {
      const dir = join(out, rows[i].split, ds.classes[rows[i].label]);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `${rows[i].sha256}.${ext(i)}`), await bytes(i));
    }
  } else {
    for (const split of [...new Set(rows.map((r) => r.split))]) {
      const p = pack();
      const done = pipeline(p, createWriteStream(join(out, `${split}-000000.tar`)));
      for (let i = 0; i < rows.length; i++) {
        if (rows[i].split !== split) continue;
        p.entry({ name: `${rows[i].sha256}.${ext(i)}` }, await bytes(i));
        p.entry({ name: `${rows[i].sha256}.cls` }, String(rows[i].label));
      }
      p.finalize();
      await done;
    }
    writeFileSync(join(out, 'classes.txt'), `${ds.classes.join('\n')}\n`);
  }
  writeFileSync(join(out, MANIFEST), `${JSON.stringify({ name: ds.name, version: ds.version, classes: ds.classes, images: rows.length, format: o.format, exported_at: new Date().toISOString() }, null, 2)}\n`);
  return { out, images: rows.length, version: ds.version };
}

/**
 * Exporting the current version of a data set as an image folder (`<split>/<class>/`) or as
 * WebDataset shards, each with a manifest; importing the export gives the same version hash
 * for data sets of encoded images (raw CIFAR pixels are written as PNG, whose bytes differ).
 */
import { createWriteStream, readdirSync, realpathSync, writeFileSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import sharp from 'sharp';
import { pack } from 'tar-stream';

import type { Db } from '../db.js';
import { EmbaugError } from '../errors.js';
import { folderNames } from './names.js';
import { getDataset, readBlobs, selectImages } from './store.js';
import { makeDirs, outputFolder } from '../paths.js';

export const MANIFEST = 'embaug-manifest.json';

const EXT: Record<string, string> = { jpeg: 'jpg', png: 'png', webp: 'webp', gif: 'gif', tiff: 'tif', bmp: 'bmp', rgb: 'png' };

export async function exportDataset(db: Db, ref: number | string, o: { format: 'folder' | 'wds'; out: string }): Promise<{ out: string; images: number; version: string }> {
  const ds = getDataset(db, ref);
  const out = resolve(o.out);
  const root = outputFolder(out);
  if (readdirSync(root).length > 0) throw new EmbaugError('E_ARG', `${out} is not empty: export into a new or empty folder.`);
  // Class names are checked at import and rename, but a database from elsewhere may still
  // hold any name: folders get safe names, and every folder is checked to be inside `out`.
  const folders = folderNames(ds.classes);
  const folderFor = (split: string, label: number) => {
    const dir = join(root, folderNames([split])[0], folders[label]);
    makeDirs(dir);
    if (!realpathSync(dir).startsWith(root + sep))
      throw new EmbaugError('E_ARG', `The class folder ${dir} would lie outside ${out}: refused; nothing was written outside it.`);
    return dir;
  };
  const rows = selectImages(db, ds.id);
  const bytes = async (i: number) => {
    const [b] = readBlobs(db, [rows[i].sha256]);
    return b.format === 'rgb' ? sharp(b.bytes, { raw: { width: b.width, height: b.height, channels: 3 } }).png().toBuffer() : Buffer.from(b.bytes);
  };
  const ext = (i: number) => EXT[readBlobs(db, [rows[i].sha256])[0].format] ?? 'bin';
  if (o.format === 'folder') {
    for (let i = 0; i < rows.length; i++) {
      writeFileSync(join(folderFor(rows[i].split, rows[i].label), `${rows[i].sha256}.${ext(i)}`), await bytes(i), { flag: 'wx' });
    }
  } else {
    for (const split of [...new Set(rows.map((r) => r.split))]) {
      const p = pack();
      const done = pipeline(p, createWriteStream(join(root, `${folderNames([split])[0]}-000000.tar`), { flags: 'wx' }));
      for (let i = 0; i < rows.length; i++) {
        if (rows[i].split !== split) continue;
        p.entry({ name: `${rows[i].sha256}.${ext(i)}` }, await bytes(i));
        p.entry({ name: `${rows[i].sha256}.cls` }, String(rows[i].label));
      }
      p.finalize();
      await done;
    }
    writeFileSync(join(root, 'classes.txt'), `${ds.classes.join('\n')}\n`, { flag: 'wx' });
  }
  const manifest = { name: ds.name, version: ds.version, classes: ds.classes, ...(o.format === 'folder' ? { class_folders: folders } : {}), images: rows.length, format: o.format, exported_at: new Date().toISOString() };
  writeFileSync(join(root, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`, { flag: 'wx' });
  return { out, images: rows.length, version: ds.version };
}

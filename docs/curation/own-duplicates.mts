/**
 * The near duplicates among CIFAR-10's own images (the 10,000 test images and 1,500 training
 * images of the duplicates test, nothing planted), as `embaug curate duplicates` finds them at a
 * looser threshold than its default (0.7, so that the judgement also covers pairs just below
 * the default): each group one row of docs/curation/cifar10-own-near-duplicates.png, numbered,
 * and its members printed. The test's truth, test/fixtures/cifar10-same-photographs.json, was
 * made by eye from such sheets: whether the images of each group are one photograph (edited,
 * recoloured, cropped or flipped) or not; a group printed here that is in neither of its lists
 * has not been judged yet.
 *
 *   node --import tsx docs/curation/own-duplicates.mts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

import sharp from 'sharp';

import { addBackbone } from '../../electron/engine/backbones/index.js';
import { findDuplicates } from '../../electron/engine/curation/index.js';
import { decodeToSize, importDataset, readBlobs } from '../../electron/engine/datasets/index.js';
import { openDb } from '../../electron/engine/db.js';
import { plantedFolder, samples } from '../../test/helpers/fixtures.js';
import { MODELS, REPO } from '../../test/helpers/shared.js';

const dir = mkdtempSync(join(tmpdir(), 'embaug-own-dups-'));
try {
  const db = openDb(join(dir, 'db.sqlite'));
  await addBackbone(db, { onnxPath: join(MODELS, 'resnet18-w16-hflip.onnx') });
  const root = join(dir, 'images');
  const test = [...(await samples('test-000000.tar', 5000)), ...(await samples('test-000001.tar', 5000))];
  await plantedFolder(root, await samples('train-000000.tar', 1500), test, { copies: 0 });
  await importDataset(db, { kind: 'folder', path: root, name: 'real' });
  const r = await findDuplicates(db, { dataset: 'real', backbone: 'resnet18-w16-hflip', threads: 2, threshold: 0.7 });
  console.log(`CIFAR-10's own images at threshold 0.7: ${r.exact.length} exact groups, ${r.near.length} near groups`);
  // One row per group: its number, then its images, 34 pixels apart, wrapped at 12.
  const per = 12, cell = 34, rows: { group: number; images: Uint8Array[] }[] = [];
  for (const [g, group] of r.near.entries()) {
    console.log(`${g}: ${group.images.map((im) => basename(im.source, '.jpg')).join(' ')}  (smallest similarity ${group.similarity.toFixed(3)})`);
    const px = await decodeToSize(readBlobs(db, group.images.map((im) => im.sha256)), 32, 32);
    const images = group.images.map((_, k) => px.subarray(k * 3072, (k + 1) * 3072));
    for (let s = 0; s < images.length; s += per) rows.push({ group: g, images: images.slice(s, s + per) });
  }
  const W = 40 + per * cell, H = rows.length * cell;
  const sheet = Buffer.alloc(W * H * 3, 255);
  rows.forEach((row, y0) => {
    row.images.forEach((im, k) => {
      for (let y = 0; y < 32; y++) Buffer.from(im.subarray(y * 96, (y + 1) * 96)).copy(sheet, ((y0 * cell + y) * W + 40 + k * cell) * 3);
    });
  });
  // Labels drawn on the magnified sheet: sharp composites after it resizes.
  const labels = rows.map((row, y0) => `<text x="4" y="${2 * y0 * cell + 40}" font-size="24" font-family="DejaVu Sans">${row.group}</text>`).join('');
  const svg = Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W}" height="${2 * H}">${labels}</svg>`);
  const big = await sharp(sheet, { raw: { width: W, height: H, channels: 3 } }).resize(W * 2, H * 2, { kernel: 'nearest' }).png().toBuffer();
  await sharp(big).composite([{ input: svg, top: 0, left: 0 }]).png({ palette: true }).toFile(join(REPO, 'docs', 'curation', 'cifar10-own-near-duplicates.png'));
  db.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

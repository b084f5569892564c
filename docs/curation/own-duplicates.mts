/**
 * The near duplicates `embaug curate duplicates` finds among CIFAR-10's own images (the 10,000
 * test images and 1,500 training images of the duplicates test, with nothing planted): each
 * pair side by side in docs/curation/cifar10-own-near-duplicates.png, and the mean absolute
 * pixel difference of each pair (the smaller of as-is and mirrored). The test's precision counts
 * every one of these pairs as false, since its truth knows only the planted copies.
 *
 *   node --import tsx docs/curation/own-duplicates.mts
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import sharp from 'sharp';

import { addBackbone } from '../../electron/engine/backbones/index.js';
import { findDuplicates } from '../../electron/engine/curation/index.js';
import { decodeToSize, importDataset, readBlobs } from '../../electron/engine/datasets/index.js';
import { openDb } from '../../electron/engine/db.js';
import { CIFAR10_CLASSES, samples } from '../../test/helpers/fixtures.js';
import { MODELS, REPO } from '../../test/helpers/shared.js';

const dir = mkdtempSync(join(tmpdir(), 'embaug-own-dups-'));
try {
  const db = openDb(join(dir, 'db.sqlite'));
  await addBackbone(db, { onnxPath: join(MODELS, 'resnet18-w16-hflip.onnx') });
  const root = join(dir, 'images');
  const train = await samples('train-000000.tar', 1500);
  const test = [...(await samples('test-000000.tar', 5000)), ...(await samples('test-000001.tar', 5000))];
  for (const [split, list] of [['train', train], ['test', test]] as const)
    for (const s of list) {
      const d = join(root, split, CIFAR10_CLASSES[s.label]);
      mkdirSync(d, { recursive: true });
      writeFileSync(join(d, `${s.key}.jpg`), s.jpeg);
    }
  await importDataset(db, { kind: 'folder', path: root, name: 'real' });
  const r = await findDuplicates(db, { dataset: 'real', backbone: 'resnet18-w16-hflip', threads: 2 });
  const pairs = r.near.flatMap((g) => g.images.flatMap((a, i) => g.images.slice(i + 1).map((b) => [a, b] as const)));
  console.log(`CIFAR-10's own images: ${r.exact.length} exact groups, ${r.near.length} near groups, ${pairs.length} near pairs`);
  const pixels = (sha: string) => decodeToSize(readBlobs(db, [sha]), 32, 32);
  const tiles: Buffer[] = [];
  const distances: number[] = [];
  for (const [a, b] of pairs) {
    const [pa, pb] = [await pixels(a.sha256), await pixels(b.sha256)];
    let same = 0, mirrored = 0;
    for (let y = 0; y < 32; y++)
      for (let x = 0; x < 32; x++)
        for (let c = 0; c < 3; c++) {
          same += Math.abs(pa[(y * 32 + x) * 3 + c] - pb[(y * 32 + x) * 3 + c]);
          mirrored += Math.abs(pa[(y * 32 + x) * 3 + c] - pb[(y * 32 + 31 - x) * 3 + c]);
        }
    distances.push(Math.min(same, mirrored) / 3072);
    // The pair as one 68 × 32 tile, a 4-pixel gap between the two images.
    const tile = Buffer.alloc(32 * 68 * 3, 255);
    for (let y = 0; y < 32; y++) {
      Buffer.from(pa.subarray(y * 96, y * 96 + 96)).copy(tile, y * 68 * 3);
      Buffer.from(pb.subarray(y * 96, y * 96 + 96)).copy(tile, y * 68 * 3 + 36 * 3);
    }
    tiles.push(tile);
    console.log(`${a.source} ~ ${b.source}  mean |Δpixel| ${distances.at(-1)!.toFixed(1)}`);
  }
  const per = 4, W = per * 72, H = Math.ceil(tiles.length / per) * 36;
  const sheet = Buffer.alloc(W * H * 3, 255);
  tiles.forEach((t, i) => {
    const ox = (i % per) * 72, oy = Math.floor(i / per) * 36;
    for (let y = 0; y < 32; y++) t.copy(sheet, ((oy + y) * W + ox) * 3, y * 68 * 3, (y + 1) * 68 * 3);
  });
  await sharp(sheet, { raw: { width: W, height: H, channels: 3 } }).resize(W * 2, H * 2, { kernel: 'nearest' }).png({ palette: true })
    .toFile(join(REPO, 'docs', 'curation', 'cifar10-own-near-duplicates.png'));
  distances.sort((a, b) => a - b);
  console.log(`mean |Δpixel| at quantiles 0, .25, .5, .75, 1: ${[0, 0.25, 0.5, 0.75, 1].map((q) => distances[Math.min(distances.length - 1, Math.floor(q * distances.length))].toFixed(1)).join(', ')}`);
  db.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

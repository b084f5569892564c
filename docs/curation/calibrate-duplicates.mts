/**
 * Where the near-duplicate threshold comes from: the same recipe as the duplicates test
 * (1,500 + 10,000 real images, 200 planted copies), but cut from training shards the test does
 * not use (train-000002 to -000004), so the default is not set on the set it is judged on.
 * Prints, per threshold, the planted near copies found and the pairs claimed in all.
 *
 *   node --import tsx docs/curation/calibrate-duplicates.mts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { addBackbone } from '../../electron/engine/backbones/index.js';
import { findDuplicates } from '../../electron/engine/curation/index.js';
import { importDataset } from '../../electron/engine/datasets/index.js';
import { openDb } from '../../electron/engine/db.js';
import { plantedFolder, samples } from '../../test/helpers/fixtures.js';
import { MODELS } from '../../test/helpers/shared.js';

const dir = mkdtempSync(join(tmpdir(), 'embaug-calibrate-'));
try {
  const db = openDb(join(dir, 'db.sqlite'));
  await addBackbone(db, { onnxPath: join(MODELS, 'resnet18-w16-hflip.onnx') });
  const rest = [...(await samples('train-000003.tar', 5000)), ...(await samples('train-000004.tar', 5000))];
  const planted = await plantedFolder(join(dir, 'images'), await samples('train-000002.tar', 1500), rest, { step: 11 });
  await importDataset(db, { kind: 'folder', path: join(dir, 'images'), name: 'calibration' });
  const near = planted.filter((p) => p.kind !== 'exact');
  for (const threshold of [0.7, 0.75, 0.8, 0.85, 0.9]) {
    const r = await findDuplicates(db, { dataset: 'calibration', backbone: 'resnet18-w16-hflip', threads: 2, threshold });
    const claimed = new Set(r.near.flatMap((g) => g.images.flatMap((a, i) => g.images.slice(i + 1).map((b) => [a.source, b.source].sort().join('|')))));
    const found = near.filter((p) => claimed.has([p.orig, p.copy].sort().join('|')));
    const by = (['flip', 'crop', 'jpeg'] as const).map((k) => `${found.filter((p) => p.kind === k).length} ${k}`).join(', ');
    console.log(`threshold ${threshold}: planted near copies found ${found.length} of ${near.length} (${by}); pairs claimed ${claimed.size}`);
  }
  db.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

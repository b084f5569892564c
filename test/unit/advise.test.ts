import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';

import { addBackbone } from '../../electron/engine/backbones/index.js';
import { importDataset } from '../../electron/engine/datasets/index.js';
import { openDb, type Db } from '../../electron/engine/db.js';
import { embeddingsFor } from '../../electron/engine/embeddings/index.js';
import { getRun, listRuns } from '../../electron/engine/runs/index.js';
import { advise } from '../../electron/engine/study/index.js';
import { trainOmega } from '../../electron/engine/training/index.js';
import { CIFAR10_CLASSES, samples } from '../helpers/fixtures.js';
import { MODELS, tempDir } from '../helpers/shared.js';

describe('the advisor on a data set of the user', () => {
  const tmp = tempDir();
  let db: Db;
  before(async () => {
    // Three classes; the validation images are all upside down, the training images not: a head
    // that never saw such a view must lose there, and vflip must come out as a real gain. (A
    // mirror is not enough here: this Φ is already close to blind to it, cos 0.93.)
    const root = join(tmp.dir, 'flipped');
    const picked = (await samples('train-000000.tar', 1500)).filter((s) => s.label >= 5 && s.label <= 7);
    for (const label of [5, 6, 7]) {
      const mine = picked.filter((s) => s.label === label);
      assert.ok(mine.length >= 130, `${mine.length} images of class ${label}`);
      for (const [split, list] of [['train', mine.slice(0, 80)], ['val', mine.slice(80, 130)]] as const) {
        const dir = join(root, split, CIFAR10_CLASSES[label]);
        mkdirSync(dir, { recursive: true });
        for (const s of list) writeFileSync(join(dir, `${s.key}.jpg`), split === 'val' ? await sharp(s.jpeg).flip().jpeg({ quality: 95 }).toBuffer() : s.jpeg);
      }
    }
    db = openDb(join(tmp.dir, 'db.sqlite'));
    await importDataset(db, { kind: 'folder', path: root, name: 'flipped' });
    await addBackbone(db, { onnxPath: join(MODELS, 'resnet18-w16-none.onnx') });
  });
  after(() => {
    db.close();
    tmp.cleanup();
  });

  it('leaves out what it cannot run and says how to include it', async () => {
    const r = await advise(db, { dataset: 'flipped', backbone: 'resnet18-w16-none', valSplit: 'val', folds: 3, epochs: 5, threads: 2 });
    assert.deepEqual(r.arms.map((a) => a.arm), ['none', 'noise', 'mixup', 'isda']);
    assert.deepEqual(r.skipped.map((s) => s.arm), ['embed', 'pixel']);
    assert.match(r.skipped[1].why, /embaug extract --dataset flipped --backbone resnet18-w16-none --aug hflip/);
    assert.equal((db.prepare("SELECT count(*) AS n FROM embedding_sets WHERE aug_key = 'hflip'").get() as { n: number }).n, 0, 'advice creates no embedding set');
    await assert.rejects(advise(db, { dataset: 'flipped', backbone: 'resnet18-w16-none', valSplit: 'nope' }), /split "nope": data set "flipped" has no images in it; its splits are "train", "val"/);
    await assert.rejects(advise(db, { dataset: 'flipped', backbone: 'resnet18-w16-none', folds: 2 }), /folds must be a whole number from 3 to 20/);
  });

  it('finds the known answer: with upside-down validation images, vflip is a real gain and is recommended', async () => {
    await embeddingsFor(db, { dataset: 'flipped', backbone: 'resnet18-w16-none', split: 'train', aug: 'vflip', threads: 2 });
    const om = await trainOmega(db, { dataset: 'flipped', backbone: 'resnet18-w16-none', selection: { split: 'train' }, aug: 'vflip', config: { epochs: 20 }, threads: 2 });
    const r = await advise(db, { dataset: 'flipped', backbone: 'resnet18-w16-none', valSplit: 'val', folds: 5, augs: ['vflip'], epochs: 100, threads: 2 });
    assert.equal(r.images, 240);
    const pixel = r.arms.find((a) => a.arm === 'pixel')!;
    assert.ok(pixel.gain!.real, `pixel vflip: ${JSON.stringify(pixel.gain)}`);
    assert.equal(pixel.extraPhiPasses, 240);
    assert.equal(r.arms.find((a) => a.arm === 'embed')!.omegaRunId, om.runId);
    assert.ok(['pixel', 'embed'].includes(r.recommendation.arm) && r.recommendation.aug === 'vflip', r.recommendation.sentence);
    assert.match(r.recommendation.sentence, /^Augment with (pixel|embed) vflip: \+\d+\.\d ± \d+\.\d points over no augmentation, beyond the noise over 5 seeds scored on split "val"/);
    // Every head is a run under the advice, scored on the validation split, never on a test split.
    const heads = listRuns(db, { group: `advise-${r.runId}`, kind: 'head' });
    assert.equal(heads.length, r.arms.length * 5);
    assert.ok(heads.every((h) => (h.config.test as { split: string }).split === 'val' && (h.config.train as { split: string }).split === 'train'));
    assert.equal(getRun(db, r.runId).status, 'completed');
    assert.match(r.skipped.find((s) => s.arm === 'embed-gauss')!.why, /no Ω for vflip on resnet18-w16-none keeps the shift models Ω \+ Gaussian residual draws from: train one with them \(embaug omega --stochastic/);
  });

  it('with an Ω that keeps its shift models it also tries Ω + Gaussian residual, drawn afresh per sample and epoch', async () => {
    const om = await trainOmega(db, { dataset: 'flipped', backbone: 'resnet18-w16-none', selection: { split: 'train' }, aug: 'vflip', config: { epochs: 20, stochastic: true }, threads: 2 });
    const r = await advise(db, { dataset: 'flipped', backbone: 'resnet18-w16-none', valSplit: 'val', folds: 3, augs: ['vflip'], epochs: 20, threads: 2 });
    const gauss = r.arms.find((a) => a.arm === 'embed-gauss')!;
    assert.deepEqual([gauss.mode, gauss.aug, gauss.sampling, gauss.omegaRunId], ['embed', 'vflip', 'residual-gauss', om.runId]);
    assert.ok(!r.skipped.some((s) => s.arm === 'embed-gauss'));
    const heads = listRuns(db, { group: `advise-${r.runId}`, kind: 'head' });
    assert.equal(heads.filter((h) => h.config.sampling === 'residual-gauss').length, 3);
    assert.equal(heads.filter((h) => h.config.sampling === 'mean').length, 3);
    // Its heads differ from the mean's: the draws, not the Ω, are what the arm adds.
    assert.notDeepEqual(gauss.accuracy.runs, r.arms.find((a) => a.arm === 'embed')!.accuracy.runs);
  });

  it('cross-validates on the training split when there is no validation split: stratified folds, each image scored once', async () => {
    const r = await advise(db, { dataset: 'flipped', backbone: 'resnet18-w16-none', folds: 4, epochs: 10, threads: 2 });
    assert.equal(r.scheme, '4-fold cross-validation on split "train"');
    const heads = listRuns(db, { group: `advise-${r.runId}`, kind: 'head' });
    const folds = heads.filter((h) => h.config.mode === 'none').map((h) => (h.config.test as { fold: { index: number; part: string } }).fold);
    assert.deepEqual(folds.map((f) => f.index).sort(), [0, 1, 2, 3]);
    assert.ok(folds.every((f) => f.part === 'val'));
    for (const a of r.arms) assert.equal(a.accuracy.runs.length, 4);
  });
});

/**
 * Eq. 8 in wall-clock, honestly: each augmentation against the pixel pipeline our engine
 * really runs for it, end to end through `trainHead` (extraction included, caches emptied
 * before every run), on 10,000 target training images of CIFAR-10 with resnet18-w16-hflip.
 *  - hflip (deterministic): pixel mode caches the view, N+1 = 2 Φ passes in all; embed mode
 *    passes Φ once and applies Ω once. At most about 2× whatever the epochs.
 *  - crop:pad=4+hflip:p=0.5 and rotate ±15° (random): pixel mode passes Φ over a fresh draw
 *    every epoch; embed mode passes Φ once and applies the conditional Ω to a fresh θ every
 *    epoch. E = 20 is measured; E = 100 is measured for embed and extrapolated for pixel from
 *    its runs at E = 2 and 20 (said in the output).
 * The peer is PyTorch fine-tuning Ψ with a random flip through Φ every epoch (its `finetune`),
 * the same work as a random pixel pipeline, extrapolated from 2 measured epochs. Predictions
 * of Eq. 8 from the measured per-sample costs stand beside each figure, and for a
 * ResNet-50-sized Φ, whose cost per image is measured here too.
 */
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { parseAug } from '../electron/engine/augment/index.js';
import { addBackbone } from '../electron/engine/backbones/index.js';
import { importDataset, selectImages, type Selection } from '../electron/engine/datasets/index.js';
import { openDb, type Db } from '../electron/engine/db.js';
import { embeddingsFor } from '../electron/engine/embeddings/index.js';
import { setThreads } from '../electron/engine/native/index.js';
import { timeHeavyBackbone } from '../electron/engine/paper/heavy.js';
import { embedView, trainHead, trainOmega, viewSeed, type OmegaResult } from '../electron/engine/training/index.js';
import { type Figure, SHARED, bestPeer, report, threadsArg } from './common.js';

const IMAGES = 10000;
const TARGET: Selection = { split: 'train', classes: [5, 6, 7, 8, 9], limit: IMAGES, balanced: true };
const TEST: Selection = { split: 'test', classes: [5, 6, 7, 8, 9], limit: 1000, balanced: true };
const BASE: Selection = { split: 'train', classes: [0, 1, 2, 3, 4], limit: 5000, balanced: true };
const RANDOM = ['crop:pad=4+hflip:p=0.5', 'rotate:min=-15,max=15'];

const seconds = async (fn: () => Promise<unknown>) => {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
};

export async function main(argv: string[]) {
  const threads = threadsArg(argv);
  setThreads(threads);
  const path = join(tmpdir(), `embaug-bench-eq8-${process.pid}.db`);
  const clean = () => [path, `${path}-wal`, `${path}-shm`, `${path}.files`].forEach((p) => rmSync(p, { recursive: true, force: true }));
  clean();
  const db = openDb(path);
  try {
    const ds = await importDataset(db, { kind: 'wds', path: join(SHARED, 'datasets', 'cifar10-wds'), name: 'cifar10' });
    const model = join(SHARED, 'models', 'resnet18-w16-hflip');
    const bb = await addBackbone(db, { onnxPath: `${model}.onnx` });
    const targetShas = [...selectImages(db, ds.id, TARGET), ...selectImages(db, ds.id, TEST)].map((r) => r.sha256);
    // Every run starts with no embedding of a target image cached, so each pays its own Φ passes.
    // (By primary key, set by set: a delete by image alone would scan the whole table per image.)
    const forget = (d: Db) => {
      const del = d.prepare('DELETE FROM embeddings WHERE set_id = ? AND image_sha = ?');
      const sets = (d.prepare('SELECT id FROM embedding_sets').all() as { id: number }[]).map((r) => r.id);
      d.transaction(() => sets.forEach((id) => targetShas.forEach((s) => del.run(id, s))))();
    };
    const head = async (mode: 'pixel' | 'embed', aug: string, om: OmegaResult, epochs: number) => {
      forget(db);
      return seconds(() => trainHead(db, { backbone: bb.sha256, dataset: ds.id, train: TARGET, test: TEST, mode, augs: [aug], omegas: { [om.aug]: om }, config: { epochs, evalEvery: epochs }, threads }));
    };

    // Per-sample costs for the predictions: Φ (decode, augment, backbone), Ω at a fresh θ, Ψ per sample-epoch.
    forget(db);
    const phiSeconds = await seconds(() => embeddingsFor(db, { dataset: ds.id, backbone: bb.sha256, ...TARGET, aug: 'identity', threads, record: false }));
    const z = await embeddingsFor(db, { dataset: ds.id, backbone: bb.sha256, ...TARGET, aug: 'identity', record: false });
    const cPhi = phiSeconds / IMAGES;
    const heavy = await timeHeavyBackbone(threads);

    const figures: Figure[] = [];
    const cases: Record<string, unknown>[] = [];
    const fmt = (x: number) => Number(x.toPrecision(3));

    // hflip: cached pixel views against Ω, both measured end to end.
    const flip = await trainOmega(db, { backbone: bb.sha256, dataset: ds.id, selection: BASE, aug: 'hflip', threads });
    const flipRuns: Record<string, number> = {};
    for (const E of [20, 100]) for (const mode of ['pixel', 'embed'] as const) flipRuns[`${mode}${E}`] = await head(mode, 'hflip', flip, E);
    const cPsi = (flipRuns.embed100 - flipRuns.embed20) / (80 * IMAGES);
    for (const E of [20, 100]) {
      const predicted = (2 * cPhi + E * cPsi) / (cPhi + E * cPsi);
      figures.push({ case: `hflip-embed-vs-pixel-cached-E${E}`, ours: flipRuns[`embed${E}`], peer: flipRuns[`pixel${E}`], unit: 's', lowerIsBetter: true, note: `peer = our own pixel mode (views cached: 2 Φ passes); both measured; Eq. 8 predicts ${fmt(predicted)}` });
    }
    cases.push({ aug: 'hflip', omega: { chosen: flip.chosen, heldOutMse: flip.fidelity.heldOutMse, identityMse: flip.fidelity.identityMse }, seconds: flipRuns });

    // Random augmentations: a fresh draw through Φ every epoch against the conditional Ω at a fresh θ.
    const peer = bestPeer(['finetune', '--model', model, '--epochs', '2', '--limit', String(IMAGES), '--threads', String(threads)], (r) => -(r.seconds as number));
    const peerPerEpoch = (peer.epoch_seconds as number[]).reduce((a, b) => a + b, 0) / 2;
    for (const aug of RANDOM) {
      const key = parseAug(aug).key;
      const om = await trainOmega(db, { backbone: bb.sha256, dataset: ds.id, selection: BASE, aug, threads });
      const cOmega = (await seconds(async () => embedView(om, parseAug(aug), z.x, z.images.map((i) => i.sha256), viewSeed(0, 0)))) / IMAGES;
      const runs: Record<string, number> = {};
      for (const E of [2, 20]) runs[`pixel${E}`] = await head('pixel', aug, om, E);
      for (const E of [20, 100]) runs[`embed${E}`] = await head('embed', aug, om, E);
      const pixelPerEpoch = (runs.pixel20 - runs.pixel2) / 18;
      runs.pixel100 = runs.pixel20 + 80 * pixelPerEpoch;
      const predict = (phi: number, E: number) => (phi + E * (phi + cPsi)) / (phi + E * (cOmega + cPsi));
      for (const E of [20, 100]) {
        const note = `peer = our own pixel mode (Φ on a fresh draw every epoch)${E === 100 ? `, extrapolated: its E=20 run + 80 × the per-epoch cost between E=2 and E=20 (${fmt(pixelPerEpoch)} s)` : ', measured'}; embed measured; Ω = ${om.chosen}; Eq. 8 predicts ${fmt(predict(cPhi, E))}, and ${fmt(predict(heavy.secondsPerImage, E))} with a ResNet-50-sized Φ`;
        figures.push({ case: `${key}-embed-vs-pixel-ours-E${E}`, ours: runs[`embed${E}`], peer: runs[`pixel${E}`], unit: 's', lowerIsBetter: true, note });
      }
      figures.push({ case: `${key}-embed-vs-pixel-pytorch-E100`, ours: runs.embed100, peer: 100 * peerPerEpoch, unit: 's', lowerIsBetter: true, note: 'peer = PyTorch, a random flip through Φ every epoch (the same Φ work as any random pixel augmentation), 100 × its mean over 2 measured epochs' });
      cases.push({
        aug: key, seconds: runs, pixelPerEpoch, perSample: { phi: cPhi, omega: cOmega, psi: cPsi },
        omega: { chosen: om.chosen, draws: om.draws, candidates: om.candidates.map((c) => ({ form: c.form, heldOutMse: c.heldOutMse })), identityMse: om.fidelity.identityMse },
        predicted: { E20: predict(cPhi, 20), E100: predict(cPhi, 100), resnet50E100: predict(heavy.secondsPerImage, 100) },
      });
    }
    figures.push({ case: 'pixel-random-ours-vs-pytorch-per-epoch', ours: (cases.at(-1) as { pixelPerEpoch: number }).pixelPerEpoch, peer: peerPerEpoch, unit: 's', lowerIsBetter: true, note: 'ours: a rotation through Φ plus one epoch of Ψ; PyTorch: a flip through Φ plus one epoch of Ψ' });
    report('eq8', threads, figures, { images: IMAGES, perSample: { phi: cPhi, psi: cPsi }, heavy, cases, peerEnv: peer.env });
  } finally {
    db.close();
    clean();
  }
}

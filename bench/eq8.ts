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
 *  - The same crop+flip with ResNet-18 at its published width (64; the bundled backbones are
 *    shrunk to 16 for this CPU), random weights since only its cost matters, on 1,000 target
 *    images: the bundled backbone's Φ is so cheap that Ψ's own training, which both sides pay
 *    every epoch, bounds the saving.
 * The peer is PyTorch fine-tuning Ψ with a random flip through Φ every epoch (its `finetune`),
 * the same work as a random pixel pipeline, extrapolated from 2 measured epochs. Predictions
 * of Eq. 8 from the measured per-sample costs stand beside each figure, and for a
 * ResNet-50-sized Φ, whose cost per image is measured here too. Ω's own training on the base
 * task is left out of every figure: it is paid once per backbone and augmentation.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { parseAug } from '../electron/engine/augment/index.js';
import { addBackbone, type BackboneInfo } from '../electron/engine/backbones/index.js';
import { importDataset, selectImages, type Selection } from '../electron/engine/datasets/index.js';
import { openDb, type Db } from '../electron/engine/db.js';
import { embeddingsFor } from '../electron/engine/embeddings/index.js';
import { encodeModel } from '../electron/engine/export/onnx.js';
import { setThreads } from '../electron/engine/native/index.js';
import { cifarResnet18Graph, timeHeavyBackbone } from '../electron/engine/paper/heavy.js';
import { embedView, trainHead, trainOmega, viewSeed, type OmegaResult } from '../electron/engine/training/index.js';
import { type Figure, SHARED, bestPeer, report, threadsArg } from './common.js';

const balanced = (split: 'train' | 'test', classes: number[], limit: number): Selection => ({ split, classes, limit, balanced: true });
const TARGET_CLASSES = [5, 6, 7, 8, 9];
const BASE_CLASSES = [0, 1, 2, 3, 4];
/** The bundled backbone, and ResNet-18 at its published width (slower per image, so fewer images). */
const BUNDLED = { images: 10000, train: balanced('train', TARGET_CLASSES, 10000), test: balanced('test', TARGET_CLASSES, 1000), base: balanced('train', BASE_CLASSES, 5000) };
const PUBLISHED = { width: 64, images: 1000, train: balanced('train', TARGET_CLASSES, 1000), test: balanced('test', TARGET_CLASSES, 500), base: balanced('train', BASE_CLASSES, 1000) };
const RANDOM = ['crop:pad=4+hflip:p=0.5', 'rotate:min=-15,max=15'];

const seconds = async (fn: () => Promise<unknown>) => {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
};
const fmt = (x: number) => Number(x.toPrecision(3));

export async function main(argv: string[]) {
  const threads = threadsArg(argv);
  setThreads(threads);
  const path = join(tmpdir(), `embaug-bench-eq8-${process.pid}.db`);
  const scratch = mkdtempSync(join(tmpdir(), 'embaug-bench-eq8-'));
  const clean = () => [path, `${path}-wal`, `${path}-shm`, `${path}.files`].forEach((p) => rmSync(p, { recursive: true, force: true }));
  clean();
  const db = openDb(path);
  try {
    const ds = await importDataset(db, { kind: 'wds', path: join(SHARED, 'datasets', 'cifar10-wds'), name: 'cifar10' });
    const model = join(SHARED, 'models', 'resnet18-w16-hflip');
    const bb = await addBackbone(db, { onnxPath: `${model}.onnx` });
    const wide = cifarResnet18Graph(PUBLISHED.width);
    const wideFile = join(scratch, `resnet18-w${PUBLISHED.width}-timing.onnx`);
    writeFileSync(wideFile, encodeModel(wide.model));
    const wideBb = await addBackbone(db, {
      onnxPath: wideFile,
      manifest: { name: `resnet18-w${PUBLISHED.width}-timing`, architecture: 'resnet18', input: { name: 'image', height: 32, width: 32 }, embedding: { output: 'embedding', dim: 8 * PUBLISHED.width } },
    });
    const targetShas = [...new Set([BUNDLED.train, BUNDLED.test, PUBLISHED.train, PUBLISHED.test].flatMap((s) => selectImages(db, ds.id, s).map((r) => r.sha256)))];
    // Every run starts with no embedding of a target image cached, so each pays its own Φ passes.
    // (By primary key, set by set: a delete by image alone would scan the whole table per image.)
    const forget = (d: Db) => {
      const del = d.prepare('DELETE FROM embeddings WHERE set_id = ? AND image_sha = ?');
      const sets = (d.prepare('SELECT id FROM embedding_sets').all() as { id: number }[]).map((r) => r.id);
      d.transaction(() => sets.forEach((id) => targetShas.forEach((s) => del.run(id, s))))();
    };
    type Setup = typeof BUNDLED & { bb: BackboneInfo };
    const head = async (c: Setup, mode: 'none' | 'pixel' | 'embed', aug: string | null, om: OmegaResult | null, epochs: number) => {
      forget(db);
      return seconds(() => trainHead(db, { backbone: c.bb.sha256, dataset: ds.id, train: c.train, test: c.test, mode, augs: aug ? [aug] : [], omegas: om ? { [om.aug]: om } : {}, config: { epochs, evalEvery: epochs }, threads }));
    };
    /** Φ per image over the target images, decoding included, and their embeddings. */
    const phiCost = async (c: Setup) => {
      forget(db);
      const sel = { dataset: ds.id, backbone: c.bb.sha256, ...c.train, aug: 'identity', record: false };
      const t = await seconds(() => embeddingsFor(db, { ...sel, threads }));
      return { cPhi: t / c.images, z: await embeddingsFor(db, sel) };
    };
    /**
     * Ψ per image-epoch, from mode none at E = 20 and 100: the same steps as pixel and embed
     * modes take, which train on one of an image's views per epoch.
     */
    const psiCost = async (c: Setup) => {
      const plain = { E20: await head(c, 'none', null, null, 20), E100: await head(c, 'none', null, null, 100) };
      cases.push({ backbone: c.bb.name, mode: 'none', seconds: plain });
      return (plain.E100 - plain.E20) / (80 * c.images);
    };
    const heavy = await timeHeavyBackbone(threads);
    const figures: Figure[] = [];
    const cases: Record<string, unknown>[] = [];

    /**
     * A random augmentation: a fresh draw through Φ every epoch (pixel, E = 2 and 20 measured,
     * E = 100 extrapolated) against the conditional Ω at a fresh θ (embed, E = 20 and 100 measured).
     */
    const randomCase = async (c: Setup, aug: string, label: string, cPsi: number, measured: Awaited<ReturnType<typeof phiCost>>) => {
      const key = parseAug(aug).key;
      const om = await trainOmega(db, { backbone: c.bb.sha256, dataset: ds.id, selection: c.base, aug, threads });
      const { cPhi, z } = measured;
      const cOmega = (await seconds(async () => embedView(om, parseAug(aug), z.x, z.images.map((i) => i.sha256), viewSeed(0, 0)))) / c.images;
      const runs: Record<string, number> = {};
      for (const E of [2, 20]) runs[`pixel${E}`] = await head(c, 'pixel', aug, om, E);
      for (const E of [20, 100]) runs[`embed${E}`] = await head(c, 'embed', aug, om, E);
      const pixelPerEpoch = (runs.pixel20 - runs.pixel2) / 18;
      runs.pixel100 = runs.pixel20 + 80 * pixelPerEpoch;
      const predict = (phi: number, E: number) => (phi + E * (phi + cPsi)) / (phi + E * (cOmega + cPsi));
      for (const E of [20, 100]) {
        const note = `${label}; peer = our own pixel mode (Φ on a fresh draw every epoch)${E === 100 ? `, extrapolated: its E=20 run + 80 × the per-epoch cost between E=2 and E=20 (${fmt(pixelPerEpoch)} s)` : ', measured'}; embed measured; Ω = ${om.chosen}; Eq. 8 predicts ${fmt(predict(cPhi, E))}${c.bb === bb ? `, and ${fmt(predict(heavy.secondsPerImage, E))} with a ResNet-50-sized Φ` : ''}`;
        figures.push({ case: `${key}-embed-vs-pixel-ours-E${E}${c.bb === bb ? '' : `-resnet18-w${PUBLISHED.width}`}`, ours: runs[`embed${E}`], peer: runs[`pixel${E}`], unit: 's', lowerIsBetter: true, note });
      }
      cases.push({
        aug: key, backbone: c.bb.name, images: c.images, seconds: runs, pixelPerEpoch, perSample: { phi: cPhi, omega: cOmega, psi: cPsi },
        omega: { chosen: om.chosen, draws: om.draws, candidates: om.candidates.map((o) => ({ form: o.form, heldOutMse: o.heldOutMse })), identityMse: om.fidelity.identityMse },
        predicted: { E20: predict(cPhi, 20), E100: predict(cPhi, 100), resnet50E100: predict(heavy.secondsPerImage, 100) },
      });
      return { runs, pixelPerEpoch };
    };

    const bundledSetup: Setup = { ...BUNDLED, bb };
    const bundled = await phiCost(bundledSetup);
    const cPsi = await psiCost(bundledSetup);
    const flip = await trainOmega(db, { backbone: bb.sha256, dataset: ds.id, selection: BUNDLED.base, aug: 'hflip', threads });
    const flipRuns: Record<string, number> = {};
    for (const E of [20, 100]) for (const mode of ['pixel', 'embed'] as const) flipRuns[`${mode}${E}`] = await head(bundledSetup, mode, 'hflip', flip, E);
    for (const E of [20, 100]) {
      const predicted = (2 * bundled.cPhi + E * cPsi) / (bundled.cPhi + E * cPsi);
      figures.push({ case: `hflip-embed-vs-pixel-cached-E${E}`, ours: flipRuns[`embed${E}`], peer: flipRuns[`pixel${E}`], unit: 's', lowerIsBetter: true, note: `peer = our own pixel mode (views cached: 2 Φ passes); both measured; Eq. 8 predicts ${fmt(predicted)}` });
    }
    cases.push({ aug: 'hflip', omega: { chosen: flip.chosen, heldOutMse: flip.fidelity.heldOutMse, identityMse: flip.fidelity.identityMse }, seconds: flipRuns });

    const peer = await bestPeer(['finetune', '--model', model, '--epochs', '2', '--limit', String(BUNDLED.images), '--threads', String(threads)], (r) => -(r.seconds as number));
    const peerPerEpoch = (peer.epoch_seconds as number[]).reduce((a, b) => a + b, 0) / 2;
    let last = { runs: {} as Record<string, number>, pixelPerEpoch: 0 };
    for (const aug of RANDOM) {
      last = await randomCase(bundledSetup, aug, `${bb.name}, ${BUNDLED.images} images`, cPsi, bundled);
      figures.push({ case: `${parseAug(aug).key}-embed-vs-pixel-pytorch-E100`, ours: last.runs.embed100, peer: 100 * peerPerEpoch, unit: 's', lowerIsBetter: true, note: 'peer = PyTorch, a random flip through Φ every epoch (the same Φ work as any random pixel augmentation), 100 × its mean over 2 measured epochs' });
    }
    figures.push({ case: 'pixel-random-ours-vs-pytorch-per-epoch', ours: last.pixelPerEpoch, peer: peerPerEpoch, unit: 's', lowerIsBetter: true, note: 'ours: a rotation through Φ plus one epoch of Ψ; PyTorch: a flip through Φ plus one epoch of Ψ' });

    // ResNet-18 at its published width (D = 512, so Ψ costs more per sample too).
    const wideSetup: Setup = { ...PUBLISHED, bb: wideBb };
    const wideMeasured = await phiCost(wideSetup);
    const wideLabel = `ResNet-18 at width ${PUBLISHED.width} (${fmt(wide.params / 1e6)} M parameters, ${fmt((2 * wide.macs) / 1e9)} GFLOP per image, random weights: timing only), ${PUBLISHED.images} images`;
    await randomCase(wideSetup, RANDOM[0], wideLabel, await psiCost(wideSetup), wideMeasured);

    report('eq8', threads, figures, { images: BUNDLED.images, perSample: { phi: bundled.cPhi, psi: cPsi }, heavy, published: { width: PUBLISHED.width, params: wide.params, gflopsPerImage: (2 * wide.macs) / 1e9, images: PUBLISHED.images }, cases, peerEnv: peer.env });
  } finally {
    db.close();
    clean();
    rmSync(scratch, { recursive: true, force: true });
  }
}

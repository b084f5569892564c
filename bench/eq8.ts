/**
 * Eq. 8 in wall-clock: fine-tuning Ψ on CIFAR-10 train with horizontal-flip augmentation done
 * in pixel space, Φ on every sample every epoch (ours, and PyTorch's `finetune` as the peer),
 * against embedding-space augmentation (one Φ pass, then Ω). Epochs E = 1, 10, 100: each way
 * is measured over 2 epochs and E is extrapolated from them (said in the output).
 */
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { addBackbone } from '../electron/engine/backbones/index.js';
import { importDataset } from '../electron/engine/datasets/index.js';
import { openDb } from '../electron/engine/db.js';
import { setThreads } from '../electron/engine/native/index.js';
import { measureEq8 } from '../electron/engine/paper/index.js';
import { trainOmega } from '../electron/engine/training/index.js';
import { type Figure, SHARED, bestPeer, report, threadsArg } from './common.js';

const IMAGES = 10000;
const MEASURED = 2;

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
    const omega = await trainOmega(db, { backbone: bb.sha256, dataset: ds.id, selection: { split: 'train', classes: [0, 1, 2, 3, 4] }, aug: 'hflip', config: { epochs: 10 }, threads });
    const figures: Figure[] = [];
    const rows: Record<string, unknown>[] = [];
    // Ours, both ways, on the first 10,000 training images in shard order (the peer's --limit).
    const m = await measureEq8(db, { backbone: bb.sha256, dataset: ds.id, train: { split: 'train', limit: IMAGES }, omega, measuredEpochs: MEASURED, epochsForPrediction: 100, threads });
    const pixelPerEpoch = m.measured.pixelSeconds / MEASURED;
    const setup = m.measured.embedSetupSeconds;
    const embedPerEpoch = m.measured.embedTrainSeconds / MEASURED;
    const peer = bestPeer(['finetune', '--model', model, '--epochs', String(MEASURED), '--limit', String(IMAGES), '--threads', String(threads)], (r) => -(r.seconds as number));
    const peerPerEpoch = (peer.epoch_seconds as number[]).reduce((a, b) => a + b, 0) / MEASURED;
    for (const E of [1, 10, 100]) {
      const embed = setup + E * embedPerEpoch;
      const note = E > MEASURED ? `extrapolated: E × the mean of ${MEASURED} measured epochs (+ the measured one-off Φ pass and Ω for embedding)` : undefined;
      figures.push({ case: `embed-ours-vs-pixel-pytorch-E${E}`, ours: embed, peer: E * peerPerEpoch, unit: 's', lowerIsBetter: true, note });
      figures.push({ case: `embed-ours-vs-pixel-ours-E${E}`, ours: embed, peer: E * pixelPerEpoch, unit: 's', lowerIsBetter: true, note: note ? `${note}; peer = our own pixel-space run` : 'peer = our own pixel-space run' });
      rows.push({ E, embedSeconds: embed, pixelOursSeconds: E * pixelPerEpoch, pixelPytorchSeconds: E * peerPerEpoch });
    }
    figures.push({ case: `pixel-ours-vs-pixel-pytorch-per-epoch`, ours: pixelPerEpoch, peer: peerPerEpoch, unit: 's', lowerIsBetter: true });
    report('eq8', threads, figures, { images: IMAGES, measuredEpochs: MEASURED, eq8: m, rows, omega: { chosen: omega.chosen, fidelity: omega.fidelity }, peerEnv: peer.env });
  } finally {
    db.close();
    clean();
  }
}

/**
 * Extraction throughput of resnet18-w16-hflip over the 10,000 CIFAR-10 test images,
 * decoding included, beside PyTorch running the same network on the same images and threads;
 * and the share of our wall time spent outside ONNX Runtime.
 */
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { addBackbone } from '../electron/engine/backbones/index.js';
import { importDataset } from '../electron/engine/datasets/index.js';
import { openDb } from '../electron/engine/db.js';
import { extract } from '../electron/engine/embeddings/index.js';
import { setThreads } from '../electron/engine/native/index.js';
import { SHARED, bestPeer, median, report, threadsArg } from './common.js';

export async function main(argv: string[]) {
  const threads = threadsArg(argv);
  setThreads(threads);
  const model = join(SHARED, 'models', 'resnet18-w16-hflip');
  const runs: { ips: number; outside: number }[] = [];
  for (let rep = 0; rep < 3; rep++) {
    const path = join(tmpdir(), `embaug-bench-extract-${process.pid}.db`);
    rmSync(path, { force: true });
    rmSync(`${path}.files`, { recursive: true, force: true });
    const db = openDb(path);
    // Import is not part of the figure: it stores the JPEG bytes; extraction decodes them.
    const ds = await importDataset(db, { kind: 'wds', path: join(SHARED, 'datasets', 'cifar10-wds'), name: 'cifar10' });
    await addBackbone(db, { onnxPath: `${model}.onnx` });
    const r = await extract(db, { dataset: ds.id, backbone: 'resnet18-w16-hflip', split: 'test', threads, batch: 256, record: false });
    runs.push({ ips: r.imagesPerSecond, outside: 1 - r.onnxSeconds / r.seconds });
    db.close();
    rmSync(path, { force: true });
    rmSync(`${path}.files`, { recursive: true, force: true });
    console.log(`ours, run ${rep + 1}: ${r.imagesPerSecond.toFixed(0)} images/s, ${(100 * runs[rep].outside).toFixed(1)}% outside ONNX Runtime`);
  }
  const peer = bestPeer(['extract', '--model', model, '--split', 'test', '--threads', String(threads)], (r) => r.images_per_s as number);
  const ours = median(runs.map((r) => r.ips));
  const outside = median(runs.map((r) => r.outside));
  report('extract', threads, [
    { case: 'resnet18-w16-hflip-test-10k', ours, peer: peer.images_per_s as number, unit: 'images/s' },
    { case: 'share-outside-onnxruntime', ours: 100 * outside, peer: 15, unit: '%', lowerIsBetter: true, note: 'peer = the 15% target' },
  ], { runs, peerEnv: peer.env });
}

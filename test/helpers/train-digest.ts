/**
 * Trains a head (Ψ, 128→1024→128→5, SGD with momentum and weight decay, two views), an Ω
 * (128→256→128, residual, MSE) and a head on a 600-wide input on ResNet-18 embeddings of real
 * CIFAR-10 images, then prints the CPU backend's description and a SHA-256 of every weight and
 * of the head's scores of 600 images, and OMP_PROC_BIND as a process started afterwards sees it: run
 * in a child process, since the addon reads EMBAUG_GEMM once, when it loads.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { nativeOps, parseAug } from '../../electron/engine/augment/index.js';
import { onnxThreads, preprocessOf } from '../../electron/engine/backbones/index.js';
import { decodeToSize } from '../../electron/engine/datasets/index.js';
import { MlpModel, augment, listBackends, setThreads } from '../../electron/engine/native/index.js';
import { samples } from './fixtures.js';
import { MODELS } from './shared.js';

const n = 600; // not a multiple of the batch: the last batch is smaller
const manifest = JSON.parse(readFileSync(join(MODELS, 'resnet18-w16-hflip.json'), 'utf8'));
const pre = preprocessOf(manifest);
const shard = await samples('test-000000.tar', n);
const pixels = await decodeToSize(shard.map((s) => ({ bytes: s.jpeg, format: 'jpeg' as const, width: 32, height: 32 })), 32, 32);
const embed = async (aug: string) => {
  const input = augment({ pixels, n, inH: 32, inW: 32, ops: nativeOps(parseAug(aug)), scale: pre.scale, mean: pre.mean, std: pre.std });
  return onnxThreads(join(MODELS, 'resnet18-w16-hflip.onnx'), 1).run('image', input, [n, 3, 32, 32], 'embedding');
};
const z = await embed('identity');
const zf = await embed('hflip');
setThreads(1);
const labels = Int32Array.from(shard, (s) => s.label % 5);
const x = new Float32Array(2 * z.length);
x.set(z);
x.set(zf, z.length);
const h = createHash('sha256');
const head = new MlpModel([128, 1024, 128, 5], { seed: 1 });
// With a held-out set, as reproduce's heads train, the model evaluates (and scores afterwards)
// in chunks of up to 1,024 rows, so the first layer's forward GEMM has 600 rows there, which
// libxsmm takes in blocks of 128 and a last one of 88. The scores are digested, not the held-out
// loss: its float sum absorbs their last bits.
await head.train({ x, views: 2, labels, batch: 128, epochs: 3, seed: 2, optimizer: { kind: 'sgd', lr: 0.01, momentum: 0.9, weightDecay: 5e-4 }, val: { x: zf, labels } });
const scores = head.forward(zf);
const omega = new MlpModel([128, 256, 128], { seed: 3, residual: true });
await omega.train({ x: z, targets: zf, batch: 128, epochs: 3, seed: 4, optimizer: { kind: 'sgd', lr: 0.01, momentum: 0.9 } });
// A 600-wide input (each image's two views side by side, twice, and 88 values more): the first
// layer's K = 600, which libxsmm takes in OpenBLAS's two chunks (304 + 296), and its weight
// gradient's 600 rows, which libxsmm takes in blocks of 128 and a last one of 88.
const D = 600;
const wide = new Float32Array(n * D);
for (let i = 0; i < n; i++)
  for (let q = 0; q * 128 < D; q++) wide.set((q % 2 ? zf : z).subarray(i * 128, i * 128 + Math.min(128, D - q * 128)), i * D + q * 128);
const wideHead = new MlpModel([D, 1024, 128, 5], { seed: 5 });
await wideHead.train({ x: wide, labels, batch: 128, epochs: 2, seed: 6, optimizer: { kind: 'sgd', lr: 0.01, momentum: 0.9, weightDecay: 5e-4 } });
h.update(Buffer.from(scores.buffer, scores.byteOffset, scores.byteLength));
for (const p of [...head.getParams(), ...omega.getParams(), ...wideHead.getParams()]) h.update(Buffer.from(p.buffer, p.byteOffset, p.byteLength));
// What a process started after all this inherits: libxsmm's initialisation sets OMP_PROC_BIND.
const inherited = spawnSync('sh', ['-c', 'printf %s "${OMP_PROC_BIND-unset}"'], { encoding: 'utf8' }).stdout;
console.log(JSON.stringify({ device: listBackends()[0].device, digest: h.digest('hex'), ompProcBind: inherited }));
process.exit(0);

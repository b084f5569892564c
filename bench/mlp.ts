/**
 * Ψ training throughput (D→1024→128→10, batch 128, SGD with momentum) against PyTorch on the
 * same shapes and threads, and the GEMMs against this CPU's measured FMA peak.
 */
import { MlpModel, peakGflops, setThreads, timeGemm } from '../electron/engine/native/index.js';
import { type Figure, bestPeer, report, threadsArg } from './common.js';

const SECONDS = 8;

function macs(d: number, c: number) {
  return d * 1024 + 1024 * 128 + 128 * c;
}

async function ours(d: number, threads: number): Promise<{ sps: number; gflops: number }> {
  setThreads(threads);
  const batch = 128, n = batch * 64, c = 10;
  const x = new Float32Array(n * d).map(() => Math.random() * 2 - 1);
  const labels = new Int32Array(n).map(() => Math.floor(Math.random() * c));
  const m = new MlpModel([d, 1024, 128, c], { seed: 0 });
  const opt = { kind: 'sgd' as const, lr: 0.01, momentum: 0.9 };
  await m.train({ x, labels, batch, epochs: 1, seed: 0, optimizer: opt }); // warm-up
  let samples = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < SECONDS * 1000) {
    await m.train({ x, labels, batch, epochs: 1, seed: samples, optimizer: opt });
    samples += n;
  }
  const dt = (performance.now() - t0) / 1000;
  m.dispose();
  return { sps: samples / dt, gflops: (6 * macs(d, c) * samples) / dt / 1e9 };
}

export async function main(argv: string[]) {
  const threads = threadsArg(argv);
  const figures: Figure[] = [];
  const peak = peakGflops(threads, 2);
  const extra: Record<string, unknown> = { peakGflops: peak };
  for (const d of [128, 512]) {
    const o = await ours(d, threads);
    const p = bestPeer(['mlp', '--dim', String(d), '--batch', '128', '--threads', String(threads), '--seconds', String(SECONDS)], (r) => r.samples_per_s as number);
    extra[`peerEnv-d${d}`] = p.env;
    figures.push({ case: `psi-d${d}-b128`, ours: o.sps, peer: p.samples_per_s as number, unit: 'samples/s' });
    figures.push({ case: `psi-d${d}-b128-gflops`, ours: o.gflops, peer: p.gflops as number, unit: 'GFLOP/s' });
    // The forward GEMM of the first layer, the largest: its share of peak.
    const reps = 200;
    const sec = timeGemm('cpu', 128, 1024, d, reps);
    const g = (2 * 128 * 1024 * d * reps) / sec / 1e9;
    figures.push({ case: `gemm-128x1024x${d}-vs-fma-peak`, ours: g, peer: peak, unit: 'GFLOP/s', note: 'peer = measured FMA peak of this CPU' });
  }
  console.log(`measured FMA peak: ${peak.toFixed(1)} GFLOP/s with ${threads} threads`);
  report('mlp', threads, figures, extra);
}

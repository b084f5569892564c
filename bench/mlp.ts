/**
 * Ψ training throughput (D→1024→128→10, batch 128, SGD with momentum) with all cores busy,
 * against PyTorch given the same freedom: each side's figure is its best configuration, one
 * process with T threads or T independent trainings with one thread each (summed). Also: the
 * same run's 2048² SGEMM (what this machine's BLAS does at its best) and the first layer's GEMM
 * against the measured FMA peak.
 */
import { runIndependent } from '../electron/engine/jobs/index.js';
import { MlpModel, peakGflops, setThreads, timeGemm } from '../electron/engine/native/index.js';
import { type Figure, PEER_ENVS, report, runPeerConcurrently, threadsArg } from './common.js';

const SECONDS = 8;
const CLASSES = 10;

/**
 * FLOPs of one training sample: forward and weight gradients of every layer, input gradients of
 * all but the first (nothing needs the gradient with respect to the embedding, so neither side
 * computes it).
 */
function flopsPerSample(d: number): number {
  const macs = d * 1024 + 1024 * 128 + 128 * CLASSES;
  return 2 * (3 * macs - d * 1024);
}

/** Samples trained by one model in `seconds` of wall time (after a warm-up epoch). */
async function trainFor(d: number, seconds: number): Promise<number> {
  const batch = 128, n = batch * 64;
  const x = new Float32Array(n * d).map(() => Math.random() * 2 - 1);
  const labels = new Int32Array(n).map(() => Math.floor(Math.random() * CLASSES));
  const m = new MlpModel([d, 1024, 128, CLASSES], { seed: 0 });
  const opt = { kind: 'sgd' as const, lr: 0.01, momentum: 0.9 };
  try {
    await m.train({ x, labels, batch, epochs: 1, seed: 0, optimizer: opt });
    let samples = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < seconds * 1000) {
      await m.train({ x, labels, batch, epochs: 1, seed: samples, optimizer: opt });
      samples += n;
    }
    return samples / ((performance.now() - t0) / 1000);
  } finally {
    m.dispose();
  }
}

interface Config {
  config: string;
  sps: number;
}

async function ours(d: number, threads: number): Promise<Config[]> {
  setThreads(threads);
  const one = await trainFor(d, SECONDS);
  // The scheduler reproduce uses: independent trainings, one per core, single-threaded BLAS.
  const each = await runIndependent(Array.from({ length: threads }, () => () => trainFor(d, SECONDS)), threads);
  setThreads(threads);
  return [
    { config: `1 training x ${threads} threads`, sps: one },
    { config: `${threads} trainings x 1 thread`, sps: each.reduce((a, b) => a + b, 0) },
  ];
}

async function peer(d: number, threads: number): Promise<Config[]> {
  const args = (t: number) => ['mlp', '--dim', String(d), '--batch', '128', '--threads', String(t), '--seconds', String(SECONDS)];
  const out: Config[] = [];
  for (const env of PEER_ENVS) {
    const [r] = await runPeerConcurrently(args(threads), env, 1);
    const tag = env.OPENBLAS_NUM_THREADS ? ', OPENBLAS_NUM_THREADS=1' : '';
    out.push({ config: `1 process x ${threads} threads${tag}`, sps: r.samples_per_s as number });
  }
  const rs = await runPeerConcurrently(args(1), { OPENBLAS_NUM_THREADS: '1' }, threads);
  out.push({ config: `${threads} processes x 1 thread`, sps: rs.reduce((a, r) => a + (r.samples_per_s as number), 0) });
  return out;
}

const best = (cs: Config[]) => cs.reduce((a, b) => (b.sps > a.sps ? b : a));

export async function main(argv: string[]) {
  const threads = threadsArg(argv);
  const figures: Figure[] = [];
  setThreads(threads);
  const peak = peakGflops(threads, 2);
  const big = 2048, bigReps = 10;
  const sgemm = (2 * big ** 3 * bigReps) / timeGemm('cpu', big, big, big, bigReps) / 1e9;
  const extra: Record<string, unknown> = { peakGflops: peak, sgemm2048Gflops: sgemm };
  for (const d of [128, 512]) {
    const o = await ours(d, threads), p = await peer(d, threads);
    extra[`configs-d${d}`] = { ours: o, peer: p };
    for (const c of o) console.log(`ours d=${d} ${c.config}: ${c.sps.toFixed(0)} samples/s`);
    for (const c of p) console.log(`peer d=${d} ${c.config}: ${c.sps.toFixed(0)} samples/s`);
    const bo = best(o), bp = best(p);
    figures.push({ case: `psi-d${d}-b128-all-cores`, ours: bo.sps, peer: bp.sps, unit: 'samples/s', note: `ours: ${bo.config}; peer: ${bp.config}` });
    const gf = (bo.sps * flopsPerSample(d)) / 1e9;
    figures.push({ case: `psi-d${d}-b128-gflops-vs-sgemm2048`, ours: gf, peer: sgemm, unit: 'GFLOP/s', note: `peer = this run's 2048^3 SGEMM on ${threads} threads; goal ratio >= 0.6` });
    // The forward GEMM of the first layer, the largest, single-threaded as the scheduler runs it.
    setThreads(1);
    const reps = 200;
    const g = (2 * 128 * 1024 * d * reps) / timeGemm('cpu', 128, 1024, d, reps) / 1e9;
    setThreads(threads);
    figures.push({ case: `gemm-128x1024x${d}-1thread-vs-fma-peak`, ours: g, peer: peak / threads, unit: 'GFLOP/s', note: 'peer = measured FMA peak of one core' });
  }
  console.log(`measured FMA peak: ${peak.toFixed(1)} GFLOP/s with ${threads} threads; 2048^3 SGEMM ${sgemm.toFixed(1)} GFLOP/s`);
  report('mlp', threads, figures, extra);
}

/**
 * Ψ training throughput (D→1024→128→10, batch 128, SGD with momentum) with all cores busy,
 * against PyTorch given the same freedom: each side's figure is its best configuration, one
 * process with T threads or T independent trainings with one thread each (summed), run a second
 * time once picked (see pickThenRerun; the picking runs are kept beside it). Also: the
 * same run's 2048² SGEMM (what this machine's BLAS does at its best) and the first layer's GEMM
 * against the measured FMA peak.
 */
import { spawnSync } from 'node:child_process';

import { runIndependent } from '../electron/engine/jobs/index.js';
import { MlpModel, listBackends, peakGflops, setThreads, timeGemm } from '../electron/engine/native/index.js';
import { type Figure, LAUNCH_ENV, PEER_ENVS, ROOT, pickThenRerun, report, runPeerConcurrently, threadsArg } from './common.js';

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

/** A side's configurations, each a measurement of samples/s. */
type Runner = { config: string; run: () => Promise<number> };

/** Each configuration's first run, and the best one's second run (see pickThenRerun). */
interface Side {
  configs: Config[];
  best: Config & { selection: number };
}

async function side(runners: Runner[]): Promise<Side> {
  const r = await pickThenRerun(runners, (c) => c.run(), (sps) => sps);
  return { configs: r.tried.map((t) => ({ config: t.config.config, sps: t.result })), best: { config: r.config.config, sps: r.result, selection: r.selection } };
}

export async function ours(d: number, threads: number): Promise<Side> {
  const one = async () => {
    setThreads(threads);
    return trainFor(d, SECONDS);
  };
  // The scheduler reproduce uses: independent trainings, one per core, single-threaded BLAS.
  const each = async () => {
    const sps = await runIndependent(Array.from({ length: threads }, () => () => trainFor(d, SECONDS)), threads);
    setThreads(threads);
    return sps.reduce((a, b) => a + b, 0);
  };
  return side([
    { config: `1 training x ${threads} threads`, run: one },
    { config: `${threads} trainings x 1 thread`, run: each },
  ]);
}

async function peer(d: number, threads: number): Promise<Side> {
  const args = (t: number) => ['mlp', '--dim', String(d), '--batch', '128', '--threads', String(t), '--seconds', String(SECONDS)];
  const oneProcess = PEER_ENVS.map((env) => ({
    config: `1 process x ${threads} threads${env.OPENBLAS_NUM_THREADS ? ', OPENBLAS_NUM_THREADS=1' : ''}`,
    run: async () => (await runPeerConcurrently(args(threads), env, 1))[0].samples_per_s as number,
  }));
  const processes = {
    config: `${threads} processes x 1 thread`,
    run: async () => (await runPeerConcurrently(args(1), { OPENBLAS_NUM_THREADS: '1' }, threads)).reduce((a, r) => a + (r.samples_per_s as number), 0),
  };
  return side([...oneProcess, processes]);
}

/**
 * The five GEMMs of a step of Ψ at batch 128 (row-major, as the trainer calls them: the first
 * layer's weight is kept [in × out], so its forward pass is x·W and its gradient xᵀ·dy).
 */
export const stepGemms = (d: number) => [
  { name: 'l1-forward', m: 128, n: 1024, k: d, ta: false, tb: false },
  { name: 'l2-forward', m: 128, n: 128, k: 1024, ta: false, tb: true },
  { name: 'l2-weight-grad', m: 128, n: 1024, k: 128, ta: true, tb: false },
  { name: 'l2-input-grad', m: 128, n: 1024, k: 128, ta: false, tb: false },
  { name: 'l1-weight-grad', m: d, n: 1024, k: 128, ta: true, tb: false },
];

/**
 * GFLOP/s of each GEMM of a step on one thread, as the scheduler runs a training: the best of
 * three timings, since on a shared machine one timing alone scattered by a quarter.
 */
export function stepGemmRates(d: number, threads: number): Record<string, number> {
  setThreads(1);
  const reps = 400;
  const best = (g: ReturnType<typeof stepGemms>[number]) => Math.min(...[0, 1, 2].map(() => timeGemm('cpu', g.m, g.n, g.k, reps, g)));
  const out = Object.fromEntries(stepGemms(d).map((g) => [g.name, (2 * g.m * g.n * g.k * reps) / best(g) / 1e9]));
  setThreads(threads);
  return out;
}

/**
 * Ours with every GEMM in OpenBLAS (EMBAUG_GEMM=openblas, which the addon reads when it loads,
 * so in a child process): what libxsmm's kernels for the gradient GEMMs are worth.
 */
function oursOpenblasOnly(d: number, threads: number): { side: Side; gemms: Record<string, number> } {
  const code = `const m = await import(${JSON.stringify(new URL('./mlp.ts', import.meta.url).href)}); console.log(JSON.stringify({ side: await m.ours(${d}, ${threads}), gemms: m.stepGemmRates(${d}, ${threads}) })); process.exit(0);`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: ROOT, encoding: 'utf8', env: { ...LAUNCH_ENV, EMBAUG_GEMM: 'openblas' } });
  if (r.status !== 0) throw new Error(`ours with OpenBLAS alone failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { side: Side; gemms: Record<string, number> };
}

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
    extra[`configs-d${d}`] = { ours: o.configs, peer: p.configs, oursBest: o.best, peerBest: p.best };
    for (const [who, s] of [['ours', o], ['peer', p]] as const) {
      for (const c of s.configs) console.log(`${who} d=${d} ${c.config}: ${c.sps.toFixed(0)} samples/s`);
      console.log(`${who} d=${d} ${s.best.config} again: ${s.best.sps.toFixed(0)} samples/s`);
    }
    const bo = o.best, bp = p.best;
    figures.push({ case: `psi-d${d}-b128-all-cores`, ours: bo.sps, peer: bp.sps, unit: 'samples/s', note: `ours: ${bo.config}; peer: ${bp.config}; each a second run of its side's pick` });
    figures.push({ case: `psi-d${d}-b128-all-cores-selection-runs`, ours: bo.selection, peer: bp.selection, unit: 'samples/s', note: 'the same, each side at the run its configuration was picked at (the best of two or three, which reads high by about the noise)' });
    const gf = (bo.sps * flopsPerSample(d)) / 1e9;
    const mine = stepGemmRates(d, threads);
    if (/libxsmm/.test(listBackends()[0].device)) {
      const alone = oursOpenblasOnly(d, threads), ob = alone.side.best;
      Object.assign(extra[`configs-d${d}`] as object, { oursOpenblasOnly: alone.side.configs, oursOpenblasOnlyBest: ob });
      console.log(`ours d=${d} with OpenBLAS alone, ${ob.config}: ${ob.sps.toFixed(0)} samples/s`);
      figures.push({ case: `psi-d${d}-b128-libxsmm-vs-openblas`, ours: bo.sps, peer: ob.sps, unit: 'samples/s', note: `peer = ours with EMBAUG_GEMM=openblas (${ob.config}): the gradient GEMMs in OpenBLAS too` });
      for (const g of stepGemms(d))
        figures.push({ case: `gemm-d${d}-${g.name}-libxsmm-vs-openblas`, ours: mine[g.name], peer: alone.gemms[g.name], unit: 'GFLOP/s', note: `${g.m}x${g.n}, K=${g.k}, ${g.ta ? 'T' : 'N'}${g.tb ? 'T' : 'N'}, one thread; peer = OpenBLAS alone` });
    }
    figures.push({ case: `psi-d${d}-b128-gflops-vs-sgemm2048`, ours: gf, peer: sgemm, unit: 'GFLOP/s', note: `peer = this run's 2048^3 SGEMM on ${threads} threads; goal ratio >= 0.6` });
    // The forward GEMM of the first layer, the largest, single-threaded as the scheduler runs it.
    figures.push({ case: `gemm-128x1024x${d}-1thread-vs-fma-peak`, ours: mine['l1-forward'], peer: peak / threads, unit: 'GFLOP/s', note: 'peer = measured FMA peak of one core' });
  }
  console.log(`measured FMA peak: ${peak.toFixed(1)} GFLOP/s with ${threads} threads; 2048^3 SGEMM ${sgemm.toFixed(1)} GFLOP/s`);
  report('mlp', threads, figures, extra);
}

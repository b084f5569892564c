/**
 * What every benchmark shares: machine facts, the peer runner, the BENCH line format of
 * DEVELOPERS.md and the results file. Benchmarks measure; tests never time anything.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';

import { session } from '../electron/engine/backbones/index.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const SHARED = resolve(process.env.EMBAUG_SHARED ?? join(ROOT, '..', 'shared'));
export const PEER = join(SHARED, 'peers', 'pytorch_peer.py');

/**
 * The environment the benchmark was started with, for every process it starts. A library of
 * ours may change our own: libxsmm's initialisation set OMP_PROC_BIND=TRUE until the addon put
 * it back, and the peer's processes, inheriting it, all bound themselves to CPU 0. The peer runs
 * as the user would start it.
 */
export const LAUNCH_ENV: Readonly<NodeJS.ProcessEnv> = Object.freeze({ ...process.env });

export interface Figure {
  case: string;
  ours: number;
  peer: number | null;
  unit: string;
  /** true when smaller is better (seconds), so the ratio is peer/ours. */
  lowerIsBetter?: boolean;
  note?: string;
}

export function machine(threads: number) {
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT }).toString().trim();
  } catch {
    /* not a checkout */
  }
  return { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, threads, node: process.version, commit };
}

export function threadsArg(argv: string[]): number {
  const i = argv.indexOf('--threads');
  return i >= 0 ? Number(argv[i + 1]) : cpus().length;
}

/**
 * Debian's PyTorch runs its own OpenMP threads on top of OpenBLAS's pthreads; with both at T
 * threads they oversubscribe the cores (measured here: 3× slower for Ψ). The peer must run at
 * its best, so each benchmark tries both and keeps the better figure.
 */
export const PEER_ENVS: Record<string, string>[] = [{}, { OPENBLAS_NUM_THREADS: '1' }];

/**
 * Runs the PyTorch peer (the shared one, or `script`) with Debian's python3 (which has torch)
 * and returns its last JSON line.
 */
export function runPeer(args: string[], env: Record<string, string> = {}, script = PEER): Record<string, unknown> {
  const py = process.env.EMBAUG_PEER_PYTHON ?? '/usr/bin/python3';
  const r = spawnSync(py, [script, ...args], { encoding: 'utf8', maxBuffer: 64 << 20, env: { ...LAUNCH_ENV, ...env } });
  if (r.status !== 0)
    throw new Error(
      `the PyTorch peer failed (${py} ${script} ${args.join(' ')}): ${r.stderr || r.error}\n` +
        'Install it with: apt-get install -y python3-torch python3-pil libopenblas0-pthread',
    );
  const lines = r.stdout.trim().split('\n');
  return { ...JSON.parse(lines[lines.length - 1]), env };
}

/**
 * `procs` copies of the peer at once, each with `args` (which fix its threads), as a user with
 * independent jobs would run them: resolves with each copy's last JSON line.
 */
export async function runPeerConcurrently(args: string[], env: Record<string, string>, procs: number): Promise<Record<string, unknown>[]> {
  const py = process.env.EMBAUG_PEER_PYTHON ?? '/usr/bin/python3';
  const one = () =>
    new Promise<Record<string, unknown>>((resolvePeer, reject) => {
      const child = spawn(py, [PEER, ...args], { env: { ...LAUNCH_ENV, ...env } });
      let out = '', err = '';
      child.stdout.on('data', (b: Buffer) => (out += b.toString()));
      child.stderr.on('data', (b: Buffer) => (err += b.toString()));
      child.on('error', reject);
      child.on('close', (code) => {
        if (code !== 0) return reject(new Error(`the PyTorch peer failed (${py} ${PEER} ${args.join(' ')}): ${err}`));
        const lines = out.trim().split('\n');
        resolvePeer(JSON.parse(lines[lines.length - 1]) as Record<string, unknown>);
      });
    });
  return Promise.all(Array.from({ length: procs }, one));
}

/**
 * A side at its best over several configurations that run within a few percent of each other,
 * measured without the selection's bias: each configuration runs once, the best by `score`
 * (higher is better) is picked, and the figure is a second run of the pick. The best of n noisy
 * runs reads high by about their noise (ONNX Runtime alone: a second run of its pick came out
 * 4% lower on average, 7829acf), and a side measured that way gains the noise on the other.
 * `selection` is the run the pick was made on; `tried`, every first run.
 */
export async function pickThenRerun<C, R>(configs: C[], measure: (c: C) => R | Promise<R>, score: (r: R) => number): Promise<{ config: C; result: R; selection: R; tried: { config: C; result: R }[] }> {
  const tried: { config: C; result: R }[] = [];
  for (const config of configs) tried.push({ config, result: await measure(config) });
  const pick = tried.reduce((a, b) => (score(b.result) > score(a.result) ? b : a));
  return { config: pick.config, result: await measure(pick.config), selection: pick.result, tried };
}

/**
 * The peer at its best over PEER_ENVS by `score` (higher is better; see pickThenRerun): the
 * pick's second run, with the first as `selection`.
 */
export async function bestPeer(args: string[], score: (r: Record<string, unknown>) => number): Promise<Record<string, unknown> & { selection: Record<string, unknown> }> {
  const r = await pickThenRerun(PEER_ENVS, (e) => runPeer(args, e), score);
  return { ...r.result, selection: r.selection };
}

export function report(name: string, threads: number, figures: Figure[], extra: Record<string, unknown> = {}) {
  const m = machine(threads);
  console.log(`machine: ${m.cpu}, ${m.cores} cores, threads=${threads}, node ${m.node}, commit ${m.commit}`);
  const out = figures.map((f) => {
    const ratio = f.peer === null ? null : f.lowerIsBetter ? f.peer / f.ours : f.ours / f.peer;
    const fmt = (x: number | null) => (x === null ? 'n/a' : Number(x.toPrecision(4)).toString());
    console.log(`BENCH ${name} ${f.case} ours=${fmt(f.ours)} peer=${fmt(f.peer)} ${f.unit} ratio=${fmt(ratio)}${f.note ? `  # ${f.note}` : ''}`);
    return { ...f, ratio };
  });
  const file = join(ROOT, 'bench', 'results', `${name}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify({ name, date: new Date().toISOString(), machine: m, figures: out, ...extra }, null, 2) + '\n');
  console.log(`wrote ${file}`);
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

export function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(file, 'utf8')) as T;
}

// One one-thread session on a thread of its own, looping over one constant batch for the time
// given once every such thread is ready, so they all run together.
const SPLIT_WORKER = `
const { parentPort, workerData: w } = require('node:worker_threads');
const ort = require('onnxruntime-node');
(async () => {
  const s = await ort.InferenceSession.create(w.file, { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  const feeds = { [w.name]: new ort.Tensor('float32', Float32Array.from({ length: w.dims.reduce((a, b) => a * b) }, Math.random), w.dims) };
  await s.run(feeds);
  parentPort.postMessage('ready');
  parentPort.once('message', async () => {
    let images = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < w.ms) { await s.run(feeds); images += w.dims[0]; }
    parentPort.postMessage(images / ((performance.now() - t0) / 1000));
  });
})();
`;

/**
 * Images/s of ONNX Runtime alone on `threads` cores, nothing else in the loop, at its best:
 * one session on all the threads (batch 256), or, as extraction runs it, one one-thread
 * session per thread, each on a thread of its own, at the batch of the four (16 to 128)
 * that runs fastest; the figure is a second run of the one picked (see pickThenRerun;
 * `selection` keeps the rate it was picked at).
 */
export async function ortAlone(arch: string, threads: number): Promise<{ imagesPerSecond: number; config: string; selection: number }> {
  const file = join(SHARED, 'models', `${arch}-hflip.onnx`);
  const m = JSON.parse(readFileSync(join(SHARED, 'models', `${arch}-hflip.json`), 'utf8')) as { input: { name: string; height: number; width: number } };
  const ms = 2500;
  const dims = (batch: number) => [batch, 3, m.input.height, m.input.width];
  const oneSession = async () => {
    const s = await session(file, threads);
    const n = 256, x = new ort.Tensor('float32', new Float32Array(n * 3 * m.input.height * m.input.width).map(() => Math.random()), dims(n));
    const feeds = { [m.input.name]: x };
    await s.run(feeds);
    let images = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < ms) {
      await s.run(feeds);
      images += n;
    }
    return images / ((performance.now() - t0) / 1000);
  };
  const split = async (batch: number) => {
    const workers = Array.from({ length: threads }, () => new Worker(SPLIT_WORKER, { eval: true, workerData: { file, name: m.input.name, dims: dims(batch), ms } }));
    try {
      const next = (w: Worker) => new Promise<unknown>((res, rej) => w.once('message', res).once('error', rej));
      await Promise.all(workers.map(next));
      const rates = workers.map(next);
      for (const w of workers) w.postMessage('go');
      return ((await Promise.all(rates)) as number[]).reduce((a, b) => a + b, 0);
    } finally {
      await Promise.all(workers.map((w) => w.terminate()));
    }
  };
  const configs = [
    { config: `1 session of ${threads} threads, batch 256`, run: oneSession },
    ...[16, 32, 64, 128].map((batch) => ({ config: `${threads} one-thread sessions, batch ${batch}`, run: () => split(batch) })),
  ];
  const best = await pickThenRerun(configs, (c) => c.run(), (ips) => ips);
  return { imagesPerSecond: best.result, config: best.config.config, selection: best.selection };
}

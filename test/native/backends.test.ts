import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { nativeOps, parseAug } from '../../electron/engine/augment/index.js';
import { MlpModel, augment, detailSimilarity, listBackends, nearestRows, type TrainOptions } from '../../electron/engine/native/index.js';
import { REPO, golden, rng } from '../helpers/shared.js';

const BUILD = join(REPO, 'native', 'build', 'Release');

describe('backends', () => {
  it('lists cpu always, and cuda with a reason when it is unavailable', () => {
    const list = listBackends();
    assert.deepEqual(list.map((b) => b.name), ['cpu', 'cuda']);
    assert.equal(list[0].available, true);
    const cuda = list[1];
    if (!cuda.available) assert.match(cuda.reason ?? '', /.{20,}/);
    else assert.ok(cuda.memoryBytes > 0 && cuda.device.length > 0);
  });

  it('the C++ op-parity program passes: CPU gradient checks, and every op on every available backend', () => {
    const bin = join(BUILD, 'eb_backend_ops');
    assert.ok(existsSync(bin), `${bin} is built with the addon`);
    const r = spawnSync(bin, ['--lib', BUILD], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /finite differences: softmax-xent mlp\s+cpu .* OK/);
    assert.match(r.stdout, /\b0 failed$/m);
    const cuda = listBackends()[1];
    if (!cuda.available) assert.match(r.stdout, /backend cuda: SKIPPED, not available: /);
  });
});

describe('libxsmm beside OpenBLAS on the CPU', () => {
  const cpu = listBackends()[0];
  const skip = /libxsmm/.test(cpu.device)
    ? false
    : `libxsmm is not in use here (${cpu.device}): the addon was built without it (Debian's libxsmm-dev adds it), or OpenBLAS runs other kernels than its AVX-512 ones (Skylake-X, Cooperlake), the only ones libxsmm's floats match`;
  // Committed reports were trained with OpenBLAS alone: libxsmm may take a GEMM only where it
  // gives the same floats, so that none of them moves.
  const digest = (env: NodeJS.ProcessEnv, base = process.env) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(REPO, 'test', 'helpers', 'train-digest.ts')], { encoding: 'utf8', env: { ...base, ...env } });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { device: string; digest: string; ompProcBind: string };
  };
  it('a head (and its scores), an Ω and a wide head trained on ResNet-18 embeddings of real images come out bit for bit as with OpenBLAS alone', { skip }, () => {
    const xsmm = digest({}), blas = digest({ EMBAUG_GEMM: 'openblas' });
    assert.equal(xsmm.device, 'host CPU (OpenBLAS, libxsmm)');
    assert.equal(blas.device, 'host CPU (OpenBLAS)', 'EMBAUG_GEMM=openblas turns libxsmm off');
    assert.equal(xsmm.digest, blas.digest, `weights or scores differ between libxsmm and OpenBLAS on ${cpus()[0].model}`);
  });

  it("sums K in the chunks of whichever AVX-512 target OpenBLAS runs: Skylake-X's of 448 and Cooperlake's of 320", { skip }, () => {
    // The chunk is asked of OpenBLAS once, at the addon's first GEMM (xsmm_q), so forcing
    // either target (OpenBLAS 0.3.21 takes the name as given) must still give OpenBLAS's floats; the two targets' own floats differ (K = 1,024 is 448 +
    // 288 + 288 in one, 320 + 320 + 192 + 192 in the other), so both blockings were exercised.
    const digests = ['SkylakeX', 'Cooperlake'].map((core) => {
      const forced = digest({ OPENBLAS_CORETYPE: core }), blas = digest({ OPENBLAS_CORETYPE: core, EMBAUG_GEMM: 'openblas' });
      assert.equal(forced.device, 'host CPU (OpenBLAS, libxsmm)', `libxsmm in use with OpenBLAS's ${core} kernels`);
      assert.equal(forced.digest, blas.digest, `weights or scores differ between libxsmm and OpenBLAS's ${core} kernels`);
      return blas.digest;
    });
    assert.notEqual(digests[0], digests[1], 'OPENBLAS_CORETYPE had no effect: both runs used one blocking');
  });

  it('leaves OMP_PROC_BIND as it found it, for the processes started after a training (libxsmm sets it at its initialisation)', { skip }, () => {
    // Inherited, it bound every single-threaded PyTorch peer the mlp benchmark started to the
    // same CPU, at half their speed; an sbatch submission would carry it to the cluster.
    const { OMP_PROC_BIND: _, ...unset } = process.env;
    for (const [env, seen] of [[{}, 'unset'], [{ OMP_PROC_BIND: '' }, ''], [{ OMP_PROC_BIND: 'spread' }, 'spread']] as const) {
      const out = digest(env, unset);
      assert.equal(out.device, 'host CPU (OpenBLAS, libxsmm)');
      assert.equal(out.ompProcBind, seen, `OMP_PROC_BIND ${JSON.stringify(env)} before the trainings`);
    }
  });

  it("stays off where OpenBLAS runs its AVX2 kernels, whose rounding libxsmm's differs from", { skip }, () => {
    // OpenBLAS's Haswell kernels are those of every AVX2 processor; forced here, they give
    // other floats than its AVX-512 ones, and libxsmm must not mix its own into them.
    const haswell = { OPENBLAS_CORETYPE: 'Haswell' };
    const forced = digest(haswell), blas = digest({ ...haswell, EMBAUG_GEMM: 'openblas' });
    assert.equal(forced.device, 'host CPU (OpenBLAS)');
    assert.equal(forced.digest, blas.digest);
    assert.notEqual(forced.digest, digest({ EMBAUG_GEMM: 'openblas' }).digest, 'the Haswell kernels were not in use: OPENBLAS_CORETYPE had no effect');
  });
});

/** Normalised mean squared error of b against a, the measure of the C++ parity program. */
function nmse(a: Float32Array, b: Float32Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += a[i] ** 2;
  }
  return num / Math.max(den, 1e-30);
}

// The addon's path to the GPU (validation, the registry's lookup of libembaug_cuda.so, the
// training loop of every mode) as the engine uses it; the C++ program checks the ops alone.
describe('CUDA against the CPU through the addon', () => {
  const cuda = listBackends()[1];
  const skip = cuda.available ? false : `no usable CUDA backend here: ${cuda.reason}`;
  const r = rng(1);
  const n = 512, d = 64, c = 10;
  const x = new Float32Array(n * 2 * d).map(() => r() * 2 - 1);
  const labels = new Int32Array(n).map(() => Math.floor(r() * c));
  const targets = new Float32Array(n * d).map(() => r() * 2 - 1);
  const val = { x: x.subarray(0, 128 * d), labels: labels.subarray(0, 128) };
  const sgd = { kind: 'sgd', lr: 0.05 } as const;
  const cases: { name: string; sizes: number[]; residual?: boolean; train: Omit<TrainOptions, 'seed' | 'epochs' | 'batch'> }[] = [
    { name: 'softmax-xent, SGD', sizes: [d, 256, c], train: { x: x.subarray(0, n * d), labels, optimizer: sgd } },
    { name: 'softmax-xent, Nesterov, weight decay, cosine, two views, validation', sizes: [d, 256, 64, c], train: { x, labels, views: 2, val, optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4, schedule: 'cosine' } } },
    { name: 'softmax-xent, AdamW', sizes: [d, 256, c], train: { x: x.subarray(0, n * d), labels, optimizer: { kind: 'adam', lr: 1e-3, weightDecay: 1e-2 } } },
    { name: 'MSE, residual Ω', sizes: [d, 128, d], residual: true, train: { x: x.subarray(0, n * d), targets, optimizer: { kind: 'adam', lr: 1e-3 } } },
    { name: 'mixup', sizes: [d, 256, 64, c], train: { x: x.subarray(0, n * d), labels, mixupAlpha: 0.4, optimizer: sgd } },
    { name: 'ISDA', sizes: [d, 256, 64, c], train: { x: x.subarray(0, n * d), labels, isdaLambda: 0.5, optimizer: sgd } },
  ];
  for (const k of cases) {
    it(`trains the same on both: ${k.name}`, { skip }, async () => {
      const run = async (backend: 'cpu' | 'cuda') => {
        const m = new MlpModel(k.sizes, { backend, seed: 1, residual: k.residual });
        const history = await m.train({ ...k.train, batch: 64, epochs: 3, seed: 2 } as TrainOptions);
        const out = m.forward(x.subarray(0, 64 * d));
        m.dispose();
        return { history, out };
      };
      const [a, b] = await Promise.all([run('cpu'), run('cuda')]);
      a.history.forEach((e, i) => {
        const g = b.history[i];
        assert.ok(Math.abs(e.loss - g.loss) < 1e-4 * Math.abs(e.loss), `epoch ${i + 1}: loss ${e.loss} on the CPU, ${g.loss} on CUDA`);
        if (e.valLoss !== null) assert.ok(Math.abs(e.valLoss - g.valLoss!) < 1e-4 * Math.abs(e.valLoss), `epoch ${i + 1}: validation loss ${e.valLoss} against ${g.valLoss}`);
      });
      assert.ok(nmse(a.out, b.out) < 1e-8, `outputs after training differ: NMSE ${nmse(a.out, b.out)}`);
    });
  }

  it('the same weights give the same outputs and gradients on both', { skip }, () => {
    const cpu = new MlpModel([d, 256, 64, c], { seed: 3 });
    const gpu = new MlpModel([d, 256, 64, c], { backend: 'cuda', seed: 4 });
    gpu.setParams(cpu.getParams());
    const batch = { x: x.subarray(0, 100 * d), labels: labels.subarray(0, 100) };
    assert.ok(nmse(cpu.forward(batch.x), gpu.forward(batch.x)) < 1e-12);
    const [ga, gb] = [cpu.gradients(batch), gpu.gradients(batch)];
    assert.ok(Math.abs(ga.loss - gb.loss) < 1e-6 * ga.loss);
    ga.grads.forEach((g, i) => assert.ok(nmse(g, gb.grads[i]) < 1e-10, `gradient ${i}: NMSE ${nmse(g, gb.grads[i])}`));
    cpu.dispose();
    gpu.dispose();
  });

  it('augments real images the same on both: exact operations bit for bit, interpolating ones to float rounding', { skip }, () => {
    const imgs = golden().images;
    const pixels = new Uint8Array(imgs.length * 3072);
    imgs.forEach((im, i) => pixels.set(im.pixels, i * 3072));
    const specs = ['identity', 'hflip', 'vflip', 'rot90:k=3', 'crop:pad=4+hflip:p=0.5', 'rotate:min=-30,max=30', 'brightness+contrast+saturation+cutout'];
    for (const [outH, outW] of [[32, 32], [40, 36]])
      for (const spec of specs) {
        const job = { pixels, n: imgs.length, inH: 32, inW: 32, outH, outW, ops: nativeOps(parseAug(spec)), mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3], seed: 7 };
        const [a, b] = [augment(job), augment({ ...job, backend: 'cuda' })];
        if (outH === 32 && specs.indexOf(spec) < 5) assert.deepEqual(b, a, spec);
        else assert.ok(nmse(a, b) < 1e-12, `${spec} at ${outH}×${outW}: NMSE ${nmse(a, b)}`);
      }
  });
});

describe("the duplicate search's verdict on a pair", () => {
  it('scores an image against itself and its mirror image as one, distinct photographs below the threshold, the same on any number of threads', async () => {
    // Real CIFAR-10 images as grey levels; each image's mirror image appended after them.
    const imgs = golden().images.map((im) => Uint8Array.from({ length: 1024 }, (_, p) => Math.round((im.pixels[3 * p] + im.pixels[3 * p + 1] + im.pixels[3 * p + 2]) / 3)));
    const n = imgs.length;
    const mirrored = imgs.map((g) => Uint8Array.from({ length: 1024 }, (_, p) => g[(p >> 5) * 32 + 31 - (p & 31)]));
    const grey = new Uint8Array(2 * n * 1024);
    [...imgs, ...mirrored].forEach((g, i) => grey.set(g, i * 1024));
    const pairs: number[] = [], mirror: number[] = [];
    for (let i = 0; i < n; i++) {
      pairs.push(i, i, i, n + i);
      mirror.push(0, 1);
      for (let j = i + 1; j < n; j++) pairs.push(i, j), mirror.push(0);
    }
    const P = Int32Array.from(pairs), M = Uint8Array.from(mirror);
    const sims = await detailSimilarity(grey, P, M, 1);
    for (let i = 0, k = 0; i < n; i++) {
      assert.ok(sims[k++] > 0.9999, `image ${i} against itself: ${sims[k - 1]}`);
      assert.ok(sims[k++] > 0.9999, `image ${i} against its mirror image, compared mirrored: ${sims[k - 1]}`);
      for (let j = i + 1; j < n; j++, k++) assert.ok(sims[k] < 0.8, `images ${i} and ${j}, two photographs: ${sims[k]}`);
    }
    assert.deepEqual(await detailSimilarity(grey, P, M, 3), sims);
    await assert.rejects(detailSimilarity(grey, Int32Array.from([0, 2 * n]), Uint8Array.from([0]), 1), new RegExp(`pairs\\[1\\] is ${2 * n}, but grey holds ${2 * n} images`));
  });
});

describe('exact nearest rows by cosine', () => {
  it('finds each row\'s k nearest other rows, best first, as a brute force does, across blocks of the search', async () => {
    const r = rng(5);
    const n = 2300, d = 16, k = 5;
    const x = new Float32Array(n * d).map(() => r() * 2 - 1);
    const got = await nearestRows(x, d, k);
    const unit = (i: number) => {
      const v = x.subarray(i * d, (i + 1) * d);
      const s = Math.sqrt(v.reduce((a, b) => a + b * b, 0));
      return Array.from(v, (t) => t / s);
    };
    const rows = Array.from({ length: n }, (_, i) => unit(i));
    for (const i of [0, 1, 1023, 1024, 1500, 2299]) {
      const want = rows.map((v, j) => ({ j, s: j === i ? -Infinity : v.reduce((a, t, q) => a + t * rows[i][q], 0) })).sort((a, b) => b.s - a.s).slice(0, k);
      assert.deepEqual(Array.from(got.idx.subarray(i * k, (i + 1) * k)), want.map((w) => w.j), `row ${i}`);
      want.forEach((w, q) => assert.ok(Math.abs(got.sim[i * k + q] - w.s) < 1e-5));
    }
    // Fewer rows than k + 1: the missing neighbours are -1.
    const small = await nearestRows(new Float32Array([1, 0, 0, 1, 1, 1]), 2, 4);
    assert.deepEqual(Array.from(small.idx.subarray(0, 4)), [2, 1, -1, -1]);
    // Listed queries (across blocks, out of order, one twice) get exactly their rows of the full search.
    const queries = Int32Array.from([2299, 0, 1024, 1500, 0, 1023, 7]);
    const listed = await nearestRows(x, d, k, queries);
    assert.equal(listed.idx.length, queries.length * k);
    queries.forEach((q, i) => {
      assert.deepEqual(listed.idx.subarray(i * k, (i + 1) * k), got.idx.subarray(q * k, (q + 1) * k), `query ${q}`);
      assert.deepEqual(listed.sim.subarray(i * k, (i + 1) * k), got.sim.subarray(q * k, (q + 1) * k), `query ${q}`);
    });
    assert.equal((await nearestRows(x, d, k, new Int32Array(0))).idx.length, 0);
    await assert.rejects(nearestRows(x, d, k, Int32Array.from([3, n])), /queries\[1\] is 2300, but x has 2300 rows/);
  });
});

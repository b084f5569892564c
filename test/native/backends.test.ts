import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { MlpModel, listBackends, nearestRows } from '../../electron/engine/native/index.js';
import { REPO, rng } from '../helpers/shared.js';

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

  it('CUDA training matches the CPU within tolerance', (t) => {
    const cuda = listBackends()[1];
    if (!cuda.available) {
      t.skip(`no usable CUDA backend here: ${cuda.reason}`);
      return;
    }
    const r = rng(1);
    const x = new Float32Array(512 * 64).map(() => r() * 2 - 1);
    const labels = new Int32Array(512).map(() => Math.floor(r() * 10));
    const run = async (backend: 'cpu' | 'cuda') => {
      const m = new MlpModel([64, 256, 10], { backend, seed: 1 });
      const h = await m.train({ x, labels, batch: 64, epochs: 3, seed: 2, optimizer: { kind: 'sgd', lr: 0.05 } });
      return h.map((e) => e.loss);
    };
    return Promise.all([run('cpu'), run('cuda')]).then(([a, b]) => a.forEach((l, i) => assert.ok(Math.abs(l - b[i]) < 1e-4 * Math.abs(l))));
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
  });
});

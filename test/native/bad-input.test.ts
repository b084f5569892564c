import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

import { EmbaugError } from '../../electron/engine/errors.js';
import { MAX_PARAMS, MlpModel, augment, listBackends, loadNative } from '../../electron/engine/native/index.js';
import { rng } from '../helpers/shared.js';

const sgd = { kind: 'sgd' as const, lr: 0.01 };
const code = (c: string) => (e: unknown) => e instanceof EmbaugError && e.code === c;

describe('the native wrapper refuses bad input clearly', () => {
  const m = new MlpModel([4, 8, 3], { seed: 1 });
  const x = new Float32Array(10 * 4).fill(0.5);
  const labels = new Int32Array(10);

  it('wrong lengths and types name the argument, the expectation and what came', async () => {
    assert.throws(() => m.forward(new Float32Array(7)), /x must hold whole rows of 4 features, got 7 values/);
    assert.throws(() => m.forward([1, 2, 3, 4] as unknown as Float32Array), /x must be a Float32Array, got an array of length 4/);
    await assert.rejects(m.train({ x, labels: new Int32Array(9), batch: 4, epochs: 1, seed: 0, optimizer: sgd }), /labels must have 10 elements, got 9/);
    await assert.rejects(m.train({ x, labels: new Int32Array(10).fill(3), batch: 4, epochs: 1, seed: 0, optimizer: sgd }), /labels\[0\] is 3, but the model has 3 classes/);
    await assert.rejects(m.train({ x, labels, batch: 0, epochs: 1, seed: 0, optimizer: sgd }), /batch must be in \[1, 65536\], got 0/);
    await assert.rejects(m.train({ x, labels, batch: 4, epochs: 1, seed: 0, optimizer: { kind: 'lbfgs' as 'sgd', lr: 1 } }), /optimizer.kind must be one of "sgd", "adam", got "lbfgs"/);
    await assert.rejects(m.train({ x, batch: 4, epochs: 1, seed: 0, optimizer: sgd }), /give exactly one of labels/);
    assert.throws(() => new MlpModel([4, 8, 5], { residual: true }), /residual MLP needs equal input and output sizes, got 4 and 5/);
    assert.throws(() => new MlpModel([4, 0]), /sizes\[1\] must be in \[1, 1048576\], got 0/);
  });

  it('sizes past the parameter cap are refused in TypeScript with the count and the limit', () => {
    assert.throws(() => new MlpModel([2 ** 20, 2 ** 20, 2 ** 20]), (e: unknown) => e instanceof RangeError && /2\.20e\+12 parameters, over the limit of 2\.68e\+8/.test(e.message));
    assert.equal(MAX_PARAMS, 2 ** 28);
  });

  // Under vm.overcommit_memory = 1 the kernel grants any allocation and kills the process
  // when the pages are touched (seen on the lent GPU machine: 90 s of initialising, then gone).
  const overcommit = existsSync('/proc/sys/vm/overcommit_memory') && readFileSync('/proc/sys/vm/overcommit_memory', 'utf8').trim() === '1';
  it('an allocation that fails in C++ becomes E_NATIVE_ALLOC naming the backend, never an abort', { skip: overcommit && 'this kernel grants every allocation (vm.overcommit_memory = 1), so none fails to observe' }, async () => {
    // Straight at the binding, past the TypeScript cap: 4 TB of parameters.
    const Mlp = loadNative().Mlp;
    assert.throws(() => new Mlp([2 ** 20, 2 ** 20, 2 ** 20], 'cpu', 0, false), (e: unknown) => (e as { code?: string }).code === 'E_NATIVE_ALLOC' && /creating an MLP: out of memory on backend 'cpu'/.test((e as Error).message));
    // std::bad_alloc inside an entry point (result buffers of 2^40 neighbours).
    await assert.rejects(Promise.resolve().then(() => loadNative().nearestRows(new Float32Array(8), 2 ** 38, 4, 4)), (e: unknown) => (e as { code?: string }).code === 'E_NATIVE_ALLOC' && /nearestRows: out of memory/.test((e as Error).message));
    // The process is still here and the addon still works.
    const ok = new MlpModel([4, 8, 3], { seed: 2 });
    assert.equal(ok.forward(new Float32Array(4)).length, 3);
    ok.dispose();
  });

  it('NaN or infinite inputs are refused with their position, not trained on', async () => {
    const bad = x.slice();
    bad[13] = NaN;
    await assert.rejects(m.train({ x: bad, labels, batch: 4, epochs: 1, seed: 0, optimizer: sgd }), /x holds NaN at index 13 \(row 3\)/);
    const targets = new Float32Array(10 * 3);
    targets[2] = Infinity;
    const r = new MlpModel([4, 3]);
    await assert.rejects(r.train({ x, targets, batch: 4, epochs: 1, seed: 0, optimizer: sgd }), /targets holds Infinity at index 2/);
  });

  it('a diverging run stops with E_NONFINITE instead of returning garbage', async () => {
    const big = new Float32Array(64 * 4).map((_, i) => (i % 7) * 1e4);
    const t = new Float32Array(64 * 3).fill(1e4);
    const r = new MlpModel([4, 64, 3], { seed: 1 });
    await assert.rejects(r.train({ x: big, targets: t, batch: 8, epochs: 5, seed: 0, optimizer: { kind: 'sgd', lr: 10 } }), code('E_NONFINITE'));
  });

  it('a disposed model says so', async () => {
    const d = new MlpModel([4, 3]);
    d.dispose();
    assert.equal(d.disposed, true);
    assert.throws(() => d.forward(x), code('E_DISPOSED'));
    await assert.rejects(d.train({ x, labels, batch: 4, epochs: 1, seed: 0, optimizer: sgd }), code('E_DISPOSED'));
  });

  it('cancelling mid-epoch rejects with E_CANCELLED, keeps finished epochs, and leaves the model usable', async () => {
    const r = rng(1);
    const n = 20000;
    const big = new Float32Array(n * 64).map(() => r());
    const lab = new Int32Array(n).map(() => Math.floor(r() * 3));
    const model = new MlpModel([64, 256, 3], { seed: 1 });
    const ac = new AbortController();
    let epochs = 0;
    const run = model.train({ x: big, labels: lab, batch: 16, epochs: 1000, seed: 0, optimizer: sgd, signal: ac.signal, onEpoch: () => { epochs++; ac.abort(); } });
    assert.equal(model.busy, true);
    const err = await run.then(() => null, (e) => e);
    assert.ok(err instanceof EmbaugError && err.code === 'E_CANCELLED', String(err));
    assert.ok(Array.isArray(err.details) && err.details.length >= 1 && err.details.length < 1000);
    assert.ok(epochs < 1000);
    assert.equal(model.busy, false);
    assert.equal(model.forward(big.subarray(0, 64)).length, 3);
  });

  it('calling a model while it trains gives E_BUSY', async () => {
    const r = rng(2);
    const big = new Float32Array(5000 * 32).map(() => r());
    const lab = new Int32Array(5000);
    const model = new MlpModel([32, 64, 3]);
    const run = model.train({ x: big, labels: lab, batch: 8, epochs: 20, seed: 0, optimizer: sgd });
    assert.throws(() => model.forward(big.subarray(0, 32)), code('E_BUSY'));
    assert.throws(() => model.getParams(), code('E_BUSY'));
    assert.throws(() => model.dispose(), code('E_BUSY'));
    await assert.rejects(model.train({ x: big, labels: lab, batch: 8, epochs: 1, seed: 0, optimizer: sgd }), code('E_BUSY'));
    model.cancel();
    await assert.rejects(run, code('E_CANCELLED'));
    model.dispose();
  });

  it('asking for an unavailable backend explains why', (t) => {
    const cuda = listBackends().find((b) => b.name === 'cuda')!;
    if (cuda.available) return t.skip('CUDA is available on this machine: there is no unavailable backend to ask for');
    assert.throws(() => new MlpModel([4, 3], { backend: 'cuda' }), (e: unknown) => e instanceof EmbaugError && e.code === 'E_BACKEND_UNAVAILABLE' && /Backend "cuda" is unavailable: .+/.test(e.message));
    assert.throws(() => augment({ pixels: new Uint8Array(12), n: 1, inH: 2, inW: 2, ops: [], backend: 'cuda' }), code('E_BACKEND_UNAVAILABLE'));
  });
});

describe('no leak', () => {
  it('many models, training calls and augmentations keep memory bounded', async () => {
    const r = rng(3);
    const x = new Float32Array(256 * 128).map(() => r());
    const labels = new Int32Array(256).map(() => Math.floor(r() * 10));
    const px = new Uint8Array(64 * 32 * 32 * 3).map(() => Math.floor(r() * 256));
    const round = async () => {
      for (let i = 0; i < 40; i++) {
        const m = new MlpModel([128, 1024, 128, 10], { seed: i });
        await m.train({ x, labels, batch: 128, epochs: 1, seed: i, optimizer: { kind: 'adam', lr: 1e-3 } });
        m.forward(x);
        m.getParams();
        m.dispose();
        augment({ pixels: px, n: 64, inH: 32, inW: 32, ops: [{ kind: 4, p: 1, a: -10, b: 10, k: 0 }] });
      }
      global.gc?.();
      await new Promise((res) => setTimeout(res, 10));
      return process.memoryUsage().rss;
    };
    await round();
    const first = await round();
    let last = first;
    for (let k = 0; k < 3; k++) last = await round();
    // Each round allocates ~40 × 2.3 MB of weights and 64 images; a leak would grow RSS by
    // ~100 MB a round. Allow allocator noise well below that.
    assert.ok(last - first < 40 * 1024 * 1024, `RSS grew by ${((last - first) / 1048576).toFixed(1)} MiB over 3 rounds`);
  });
});

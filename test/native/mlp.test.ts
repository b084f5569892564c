import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { MlpModel, type Supervised } from '../../electron/engine/native/index.js';
import { rng } from '../helpers/shared.js';

function randn(r: () => number, n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() * 2 - 1) * scale;
  return a;
}

/** Central finite differences on a sample of parameters of each tensor. */
function gradCheck(m: MlpModel, s: Supervised, eps = 3e-3, probes = 24) {
  const { grads } = m.gradients(s);
  const params = m.getParams();
  const r = rng(99);
  let worst = 0;
  params.forEach((p, t) => {
    for (let q = 0; q < probes; q++) {
      const i = Math.floor(r() * p.length);
      const orig = p[i];
      p[i] = orig + eps;
      m.setParams(params);
      const up = m.gradients(s).loss;
      p[i] = orig - eps;
      m.setParams(params);
      const down = m.gradients(s).loss;
      p[i] = orig;
      m.setParams(params);
      const fd = (up - down) / (2 * eps);
      const err = Math.abs(fd - grads[t][i]) / Math.max(1e-2, Math.abs(fd) + Math.abs(grads[t][i]));
      worst = Math.max(worst, err);
      assert.ok(err < 3e-2, `tensor ${t} index ${i}: finite difference ${fd} vs backprop ${grads[t][i]}`);
    }
  });
  return worst;
}

describe('MLP engine (CPU backend)', () => {
  it('backprop matches finite differences: Linear, ReLU and softmax cross-entropy', () => {
    const r = rng(1);
    const m = new MlpModel([6, 9, 7, 4], { seed: 5 });
    const n = 16;
    const labels = Int32Array.from({ length: n }, () => Math.floor(r() * 4));
    gradCheck(m, { x: randn(r, n * 6), labels });
    m.dispose();
  });

  it('backprop matches finite differences: MSE, plain and residual', () => {
    for (const residual of [false, true]) {
      const r = rng(2);
      const m = new MlpModel([5, 10, 5], { seed: 3, residual });
      if (residual) {
        // The zero-initialised last layer would hide the first layer's gradient; perturb it.
        const p = m.getParams();
        p[2] = randn(r, p[2].length, 0.3);
        m.setParams(p);
      }
      gradCheck(m, { x: randn(r, 12 * 5), targets: randn(r, 12 * 5) });
      m.dispose();
    }
  });

  it('a residual MLP starts as the identity', () => {
    const m = new MlpModel([8, 16, 8], { residual: true, seed: 1 });
    const x = randn(rng(3), 4 * 8);
    assert.deepEqual(m.forward(x), x);
  });

  it('recovers a linear map by MSE to a small error', async () => {
    const r = rng(4);
    const d = 8, n = 512;
    const A = randn(r, d * d, 0.5);
    const x = randn(r, n * d);
    const y = new Float32Array(n * d);
    for (let i = 0; i < n; i++)
      for (let o = 0; o < d; o++) {
        let s = 0;
        for (let k = 0; k < d; k++) s += A[o * d + k] * x[i * d + k];
        y[i * d + o] = s;
      }
    const m = new MlpModel([d, d], { seed: 1 });
    const hist = await m.train({ x, targets: y, batch: 32, epochs: 60, seed: 1, optimizer: { kind: 'adam', lr: 0.02 } });
    assert.ok(hist.at(-1)!.loss < 1e-4, `final MSE ${hist.at(-1)!.loss}`);
    const W = m.getParams()[0];
    for (let i = 0; i < W.length; i++) assert.ok(Math.abs(W[i] - A[i]) < 0.02, `W[${i}] = ${W[i]}, A = ${A[i]}`);
  });

  it('separates separable classes to 100% accuracy, with held-out evaluation per epoch', async () => {
    const r = rng(5);
    const make = (n: number) => {
      // A margin of 0.2 around both boundaries makes the classes separable.
      const x = randn(r, n * 4).map((u) => Math.sign(u) * (0.2 + Math.abs(u)));
      const labels = new Int32Array(n);
      for (let i = 0; i < n; i++) labels[i] = (x[i * 4] > 0 ? 1 : 0) + (x[i * 4 + 1] > 0 ? 2 : 0);
      return { x, labels };
    };
    const train = make(1024), val = make(256);
    const m = new MlpModel([4, 32, 4], { seed: 2 });
    const seen: number[] = [];
    const hist = await m.train({
      ...train, val, batch: 64, epochs: 40, seed: 3,
      optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-4 },
      onEpoch: (s) => seen.push(s.epoch),
    });
    assert.deepEqual(seen, Array.from({ length: 40 }, (_, i) => i + 1));
    assert.equal(hist.at(-1)!.accuracy, 1);
    assert.equal(hist.at(-1)!.valAccuracy, 1);
    assert.ok(hist.at(-1)!.loss < hist[0].loss / 5);
  });

  it('the same seed gives the same weights bit for bit; another seed does not', async () => {
    const r = rng(6);
    const x = randn(r, 300 * 10), labels = Int32Array.from({ length: 300 }, () => Math.floor(r() * 3));
    const once = async (seed: number) => {
      const m = new MlpModel([10, 32, 16, 3], { seed });
      await m.train({ x, labels, batch: 32, epochs: 3, seed, optimizer: { kind: 'adam', lr: 1e-3, weightDecay: 1e-2 } });
      const p = m.getParams();
      m.dispose();
      return p;
    };
    const a = await once(11), b = await once(11), c = await once(12);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  });

  it('picks one view per sample per epoch from stacked views', async () => {
    // View 1 holds the negated features with the same labels: a model trained only on view 0
    // fails on it, one trained on both views solves both.
    const r = rng(7);
    const n = 400, d = 2;
    const x0 = new Float32Array(n * d);
    const labels = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      x0[i * 2] = r() * 2 + 0.5; x0[i * 2 + 1] = r() * 2 - 1;
      labels[i] = x0[i * 2 + 1] > 0 ? 1 : 0;
    }
    const both = new Float32Array(2 * n * d);
    both.set(x0);
    for (let i = 0; i < n * d; i++) both[n * d + i] = i % 2 === 0 ? -x0[i] : x0[i];
    const m = new MlpModel([2, 32, 2], { seed: 1 });
    await m.train({ x: both, views: 2, labels, batch: 32, epochs: 30, seed: 1, optimizer: { kind: 'adam', lr: 0.01 } });
    const acc = (x: Float32Array) => {
      const out = m.forward(x);
      let ok = 0;
      for (let i = 0; i < n; i++) ok += Number((out[i * 2 + 1] > out[i * 2] ? 1 : 0) === labels[i]);
      return ok / n;
    };
    assert.ok(acc(both.subarray(0, n * d)) > 0.95 && acc(both.subarray(n * d)) > 0.95);
  });

  it('a cosine schedule and epoch-by-epoch calls equal one whole call', async () => {
    const r = rng(8);
    const x = randn(r, 200 * 6), labels = Int32Array.from({ length: 200 }, () => Math.floor(r() * 2));
    const opts = { x, labels, batch: 50, seed: 4, optimizer: { kind: 'sgd' as const, lr: 0.1, schedule: 'cosine' as const } };
    const a = new MlpModel([6, 8, 2], { seed: 1 }), b = new MlpModel([6, 8, 2], { seed: 1 });
    await a.train({ ...opts, epochs: 4 });
    for (let e = 0; e < 4; e++) await b.train({ ...opts, epochs: 1, firstEpoch: e, totalEpochs: 4 });
    assert.deepEqual(a.getParams(), b.getParams());
  });

  it('ISDA: the epoch loss is the closed-form bound with the class covariance of the batch', async () => {
    // One linear layer, so ISDA augments the input itself; one batch, so the estimator holds
    // exactly that batch's class statistics when the loss is taken (before the update).
    const r = rng(21);
    const n = 40, d = 3, c = 3;
    const x = randn(r, n * d), labels = Int32Array.from({ length: n }, (_, i) => i % c);
    const m = new MlpModel([d, c], { seed: 2 });
    const [W, b] = m.getParams();
    const [first] = await m.train({ x, labels, batch: n, epochs: 1, firstEpoch: 1, totalEpochs: 2, seed: 0, isdaLambda: 0.8, optimizer: { kind: 'sgd', lr: 0.1 } });
    const ratio = 0.8 * (1 / 2);
    const cov = Array.from({ length: c }, (_, k) => {
      const rows = [...Array(n).keys()].filter((i) => labels[i] === k);
      const mu = [...Array(d).keys()].map((t) => rows.reduce((s, i) => s + x[i * d + t], 0) / rows.length);
      return [...Array(d).keys()].map((p) => [...Array(d).keys()].map((q) => rows.reduce((s, i) => s + (x[i * d + p] - mu[p]) * (x[i * d + q] - mu[q]), 0) / rows.length));
    });
    const sigma = (y: number, j: number) => {
      const dw = [...Array(d).keys()].map((t) => W[j * d + t] - W[y * d + t]);
      return (ratio / 2) * dw.reduce((s, u, p) => s + u * dw.reduce((s2, v, q) => s2 + cov[y][p][q] * v, 0), 0);
    };
    let loss = 0;
    for (let i = 0; i < n; i++) {
      const y = labels[i];
      const z = [...Array(c).keys()].map((j) => [...Array(d).keys()].reduce((s, t) => s + x[i * d + t] * W[j * d + t], b[j]) + sigma(y, j));
      const top = Math.max(...z);
      loss += Math.log(z.reduce((s, v) => s + Math.exp(v - top), 0)) - (z[y] - top);
    }
    assert.ok(Math.abs(first.loss - loss / n) < 1e-5, `ISDA loss ${first.loss} vs closed form ${loss / n}`);
    const plain = new MlpModel([d, c], { seed: 2 });
    const [p1] = await plain.train({ x, labels, batch: n, epochs: 1, seed: 0, optimizer: { kind: 'sgd', lr: 0.1 } });
    assert.ok(first.loss > p1.loss, 'the bound is above the plain cross-entropy');
  });

  it('ISDA at λ0 = 0 and mixup are reproducible; ISDA at λ0 = 0 is plain training, mixup is not', async () => {
    const r = rng(22);
    const x = randn(r, 300 * 8), labels = Int32Array.from({ length: 300 }, () => Math.floor(r() * 4));
    const run = async (extra: { mixupAlpha?: number; isdaLambda?: number }) => {
      const m = new MlpModel([8, 16, 12, 4], { seed: 3 });
      await m.train({ x, labels, batch: 64, epochs: 3, seed: 5, optimizer: { kind: 'sgd', lr: 0.05 }, ...extra });
      return m.getParams();
    };
    const plain = await run({});
    assert.deepEqual(await run({ isdaLambda: 0 }), plain);
    const isda = await run({ isdaLambda: 0.5 });
    assert.deepEqual(await run({ isdaLambda: 0.5 }), isda);
    assert.notDeepEqual(isda, plain);
    const mix = await run({ mixupAlpha: 1 });
    assert.deepEqual(await run({ mixupAlpha: 1 }), mix);
    assert.notDeepEqual(mix, plain);
    const m = new MlpModel([8, 4]);
    await assert.rejects(m.train({ x, targets: new Float32Array(300 * 4), batch: 64, epochs: 1, seed: 0, mixupAlpha: 1, optimizer: { kind: 'sgd', lr: 0.1 } }), /mixup needs class labels/);
    await assert.rejects(m.train({ x, labels, batch: 64, epochs: 1, seed: 0, mixupAlpha: 1, isdaLambda: 1, optimizer: { kind: 'sgd', lr: 0.1 } }), /alternatives/);
  });

  it('getParams, setParams and forward agree on every weight as [out × in], whatever layout the backend keeps', () => {
    // The first layer's weight is kept transposed on the backend: a slip in either direction
    // of the conversion would show here as a forward pass other than the one the weights say.
    const r = rng(11);
    const sizes = [130, 70, 9, 4], n = 5;
    const m = new MlpModel(sizes, { seed: 2 });
    const p = m.getParams();
    p[0][3 * 130 + 17] = 0.75; // row 3 (an output), column 17 (an input): asymmetric on purpose
    m.setParams(p);
    assert.deepEqual(m.getParams(), p);
    const x = randn(r, n * 130);
    const want = new Float64Array(n * 4);
    for (let i = 0; i < n; i++) {
      let a = Array.from(x.subarray(i * 130, (i + 1) * 130), Number);
      for (let l = 0; l < 3; l++) {
        const w = p[2 * l], b = p[2 * l + 1], fi = sizes[l], fo = sizes[l + 1];
        a = Array.from({ length: fo }, (_, o) => {
          let z = b[o];
          for (let k = 0; k < fi; k++) z += w[o * fi + k] * a[k];
          return l < 2 ? Math.max(z, 0) : z;
        });
      }
      want.set(a, i * 4);
    }
    const got = m.forward(x);
    got.forEach((g, i) => assert.ok(Math.abs(g - want[i]) < 1e-4 * (1 + Math.abs(want[i])), `output ${i}: ${g} vs ${want[i]}`));
    m.dispose();
  });

  it('a training step is the gradients and then SGD with momentum and weight decay in float32, bit for bit', async () => {
    // Each layer is updated as soon as its gradients are complete, in vectorised code: the
    // same operations in the same order as w -= lr·(v = μv + g + λw), none fused into an FMA.
    // One batch of one repeated sample, so that the epoch's shuffle cannot reorder its sums.
    const r = rng(12);
    const d = 128, n = 128, sizes = [d, 1024, 128, 5];
    const row = randn(r, d);
    const x = new Float32Array(n * d).map((_, i) => row[i % d]);
    const labels = new Int32Array(n).fill(3);
    const opt = { kind: 'sgd' as const, lr: 0.05, momentum: 0.9, weightDecay: 5e-4 };
    const m = new MlpModel(sizes, { seed: 7 });
    const f = Math.fround;
    // The backend holds the hyperparameters as float32, like everything else.
    const lr = f(opt.lr), mu = f(opt.momentum), decay = f(opt.weightDecay);
    const w = m.getParams(), v = w.map((t) => new Float32Array(t.length));
    for (let epoch = 0; epoch < 3; epoch++) {
      const { grads } = m.gradients({ x, labels });
      w.forEach((t, k) => {
        const wd = k % 2 === 0 ? decay : 0;
        for (let q = 0; q < t.length; q++) {
          const g = f(grads[k][q] + f(wd * t[q]));
          v[k][q] = f(f(mu * v[k][q]) + g);
          t[q] = f(t[q] - f(lr * v[k][q]));
        }
      });
      await m.train({ x, labels, batch: n, epochs: 1, firstEpoch: epoch, seed: 1, optimizer: opt });
      m.getParams().forEach((t, k) => assert.ok(Buffer.from(t.buffer).equals(Buffer.from(w[k].buffer)), `epoch ${epoch + 1}, tensor ${k} differs from the reference update`));
    }
    m.dispose();
  });

  it('an Adam step of a loss computed in JavaScript equals the forward, gradients and JavaScript update it replaces, bit for bit', () => {
    const r = rng(8);
    const sizes = [6, 12, 9];
    const x = randn(r, 10 * 6), want = randn(r, 10 * 9);
    // A loss MSE cannot express: the absolute error, its gradient sign(out − want)/rows.
    const grad = (out: Float32Array) => out.map((o, i) => Math.sign(o - want[i]) / 10);
    const targetsOf = (out: Float32Array) => { const g = grad(out), half = out.length / 2; return out.map((o, i) => o - g[i] * half); };
    const fused = new MlpModel(sizes, { seed: 4 }), reference = new MlpModel(sizes, { seed: 4 });
    const params = fused.getParams();
    const state = { params, m: params.map((p) => new Float32Array(p.length)), v: params.map((p) => new Float32Array(p.length)) };
    const ref = { params: reference.getParams(), m: params.map((p) => new Float32Array(p.length)), v: params.map((p) => new Float32Array(p.length)) };
    for (let step = 1; step <= 5; step++) {
      const lr = (0.01 * Math.sqrt(1 - 0.999 ** step)) / (1 - 0.9 ** step);
      assert.equal(typeof fused.adamStepVia(x, targetsOf, state, lr), 'number');
      const { grads } = reference.gradients({ x, targets: targetsOf(reference.forward(x)) });
      ref.params.forEach((p, t) => {
        for (let q = 0; q < p.length; q++) {
          ref.m[t][q] = 0.9 * ref.m[t][q] + (1 - 0.9) * grads[t][q];
          ref.v[t][q] = 0.999 * ref.v[t][q] + (1 - 0.999) * grads[t][q] * grads[t][q];
          p[q] -= (lr * ref.m[t][q]) / (Math.sqrt(ref.v[t][q]) + 1e-8);
        }
      });
      reference.setParams(ref.params);
    }
    assert.deepEqual(fused.getParams(), reference.getParams());
    assert.deepEqual(state.params, ref.params);
    assert.deepEqual(fused.forward(x), reference.forward(x));
    // What the loss function throws comes through; a step to infinity is refused, the weights kept.
    assert.throws(() => fused.adamStepVia(x, () => { throw new Error('the loss failed'); }, state, 0.01), /the loss failed/);
    assert.throws(() => fused.adamStepVia(x, () => new Float32Array(3), state, 0.01), /targets must have 90 elements/);
    const before = fused.getParams();
    assert.equal(fused.adamStepVia(x, targetsOf, state, Infinity), null);
    assert.deepEqual(fused.getParams(), before);
    fused.dispose();
    reference.dispose();
  });
});

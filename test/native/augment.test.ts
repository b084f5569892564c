import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { augTheta, augment, augmentAsync, type NativeAugOp } from '../../electron/engine/native/index.js';
import { AUG_KIND, THETA_PER_OP, nativeOps, parseAug } from '../../electron/engine/augment/index.js';
import { augmentReference } from '../helpers/aug-reference.js';
import { golden } from '../helpers/shared.js';

// Eight real CIFAR-10 test images (32×32) as the golden file stores their pixels.
const imgs = golden().images;
const pixels = new Uint8Array(imgs.length * 32 * 32 * 3);
imgs.forEach((im, i) => pixels.set(im.pixels, i * 3072));

function run(spec: string, extra: Partial<{ outH: number; outW: number; seed: number; indexOffset: number }> = {}) {
  const ops = nativeOps(parseAug(spec));
  const job = { pixels, n: imgs.length, inH: 32, inW: 32, outH: 32, outW: 32, ops, scale: 1, mean: [0, 0, 0], std: [1, 1, 1], seed: 7, indexOffset: 0, ...extra };
  return { ours: augment(job), ref: augmentReference(job) };
}

function maxDiff(a: Float32Array, b: Float64Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

describe('pixel augmentation kernels against the TypeScript reference', () => {
  for (const spec of ['identity', 'hflip', 'vflip', 'rot90', 'rot90:k=2', 'rot90:k=3', 'hflip+vflip', 'translate:dx=3,dy=-2', 'crop:pad=4', 'hflip:p=0.5']) {
    it(`${spec} is exact`, () => {
      const { ours, ref } = run(spec);
      assert.equal(maxDiff(ours, ref), 0);
    });
  }
  for (const spec of ['rotate:min=-30,max=30', 'rotate:min=17,max=17', 'brightness:s=0.4', 'contrast:s=0.4', 'saturation:s=0.5', 'cutout:size=10', 'crop:pad=4+hflip:p=0.5+rotate:min=-10,max=10+brightness+contrast+saturation+cutout']) {
    it(`${spec} is within one level`, () => {
      const { ours, ref } = run(spec);
      assert.ok(maxDiff(ours, ref) <= 1, `max difference ${maxDiff(ours, ref)}`);
    });
  }
  it('resizes bilinearly to another output size within one level', () => {
    const { ours, ref } = run('hflip', { outH: 48, outW: 40 });
    assert.equal(ours.length, imgs.length * 3 * 48 * 40);
    assert.ok(maxDiff(ours, ref) <= 1);
  });

  it('hflip mirrors the real image pixel for pixel', () => {
    const { ours } = run('hflip');
    // Channel 0 of image 0, row 5: ours[x] must equal the source at 31 - x.
    for (let x = 0; x < 32; x++) assert.equal(ours[5 * 32 + x], pixels[(5 * 32 + 31 - x) * 3]);
  });

  it('random draws depend on the global image index, not on batching or threads', () => {
    const spec = nativeOps(parseAug('crop:pad=4+rotate:min=-20,max=20+cutout'));
    const base = { inH: 32, inW: 32, ops: spec, seed: 3 };
    const whole = augment({ ...base, pixels, n: 8, threads: 2 });
    const tail = augment({ ...base, pixels: pixels.subarray(4 * 3072), n: 4, indexOffset: 4, threads: 1 });
    assert.deepEqual(whole.subarray(4 * 3072), tail);
    const byIndex = augment({ ...base, pixels: pixels.subarray(4 * 3072), n: 4, indices: BigInt64Array.from([4n, 5n, 6n, 7n]) });
    assert.deepEqual(byIndex, tail);
    const other = augment({ ...base, pixels, n: 8, seed: 4 });
    assert.notDeepEqual(whole, other);
  });

  it('normalises with scale, mean and std, NCHW or NHWC, RGB or BGR', () => {
    const mean = [0.4914, 0.4822, 0.4465], std = [0.247, 0.2435, 0.2616];
    const one = pixels.subarray(0, 3072);
    const nchw = augment({ pixels: one, n: 1, inH: 32, inW: 32, ops: [], scale: 1 / 255, mean, std });
    const nhwc = augment({ pixels: one, n: 1, inH: 32, inW: 32, ops: [], scale: 1 / 255, mean, std, nhwc: true });
    const bgr = augment({ pixels: one, n: 1, inH: 32, inW: 32, ops: [], scale: 1 / 255, mean, std, bgr: true });
    const p = 7 * 32 + 9;
    for (let c = 0; c < 3; c++) {
      const want = (pixels[p * 3 + c] / 255 - mean[c]) / std[c];
      assert.ok(Math.abs(nchw[c * 1024 + p] - want) < 1e-5);
      assert.equal(nhwc[p * 3 + c], nchw[c * 1024 + p]);
      assert.ok(Math.abs(bgr[c * 1024 + p] - (pixels[p * 3 + (2 - c)] / 255 - mean[c]) / std[c]) < 1e-5);
    }
  });

  it('views that move whole pixels (a gather through tables) give the bilinear path\'s values bit for bit', () => {
    const norm = { scale: 1 / 255, mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] };
    // A brightness factor of exactly 1 changes no value but sends the view down the bilinear path.
    const unchanged: NativeAugOp = { kind: AUG_KIND.brightness, p: 1, a: 0, b: 0, k: 0 };
    for (const spec of ['identity', 'hflip', 'vflip', 'rot90', 'rot90:k=3', 'hflip+vflip'])
      for (const layout of [{}, { nhwc: true, bgr: true }]) {
        const ops = nativeOps(parseAug(spec));
        const job = { pixels, n: imgs.length, inH: 32, inW: 32, ...norm, ...layout };
        assert.deepEqual(augment({ ...job, ops }), augment({ ...job, ops: [...ops, unchanged] }), `${spec} ${JSON.stringify(layout)}`);
      }
  });

  it('the async call gives the same result as the sync one', async () => {
    const job = { pixels, n: 8, inH: 32, inW: 32, ops: nativeOps(parseAug('rotate+crop')), seed: 9 };
    assert.deepEqual(await augmentAsync(job), augment(job));
  });

  it('fills an array it is given, every element of it, with the values of a new one', async () => {
    const job = { pixels, n: 8, inH: 32, inW: 32, ops: nativeOps(parseAug('rotate+crop')), seed: 9 };
    const out = new Float32Array(8 * 3 * 32 * 32).fill(Number.NaN);
    assert.equal(await augmentAsync({ ...job, out }), out, 'the same array back');
    assert.deepEqual(out, augment(job));
    assert.equal(augment({ ...job, out }), out);
  });

  it('refuses bad jobs with errors that name the argument', () => {
    assert.throws(() => augment({ pixels, n: 8, inH: 32, inW: 32, ops: [], out: new Float32Array(8 * 3 * 32 * 31) }), /out must have 24576 elements, got 23808/);
    assert.throws(() => augment({ pixels: pixels.subarray(1), n: 8, inH: 32, inW: 32, ops: [] }), /pixels must have 24576 elements, got 24575/);
    assert.throws(() => augment({ pixels, n: 8, inH: 32, inW: 32, ops: [{ kind: 42, p: 1, a: 0, b: 0, k: 0 } as NativeAugOp] }), /ops\[0\]\.kind must be in \[1, 9\]/);
    assert.throws(() => augment({ pixels, n: 8, inH: 32, inW: 32, ops: [], std: [1, 0, 1] }), /std\[1\] must be in/);
    assert.throws(() => augment({ pixels, n: 8, inH: 32, inW: 32, ops: [], backend: 'tpu' as 'cpu' }), /backend must be one of "cpu", "cuda"/);
  });
});

describe('augmentation specs', () => {
  it('canonicalise parameters and tell deterministic from random', () => {
    assert.equal(parseAug('rot90:k=2').key, 'rot90:k=2');
    assert.equal(parseAug(' hflip:p=1 ').key, 'hflip');
    assert.equal(parseAug('crop').key, 'crop:pad=4');
    assert.equal(parseAug('none').key, 'identity');
    assert.equal(parseAug('hflip').deterministic, true);
    assert.equal(parseAug('hflip:p=0.5').deterministic, false);
    assert.equal(parseAug('rotate:min=10,max=10').deterministic, true);
    assert.equal(parseAug('crop:pad=2').deterministic, false);
  });
  it('reject unknown names and out-of-range parameters, saying what is allowed', () => {
    assert.throws(() => parseAug('hflop'), /unknown augmentation "hflop".*use one of identity, hflip/);
    assert.throws(() => parseAug('rot90:k=4'), /rot90:k must be an integer in \[1, 3\], got "4"/);
    assert.throws(() => parseAug('hflip:q=1'), /has no parameter "q": it takes p/);
  });
});

describe('θ, the parameters a random view drew', () => {
  // Each image i of the batch draws with index i (indexOffset 0), so θ row i names its view.
  const indices = BigInt64Array.from(imgs.map((_, i) => BigInt(i)));
  const one = (i: number, a: Float32Array) => a.subarray(i * 3072, (i + 1) * 3072);
  const view = (spec: string, seed = 7) => augment({ pixels, n: imgs.length, inH: 32, inW: 32, ops: nativeOps(parseAug(spec)), scale: 1, mean: [0, 0, 0], std: [1, 1, 1], seed });

  it('a random rotation is the fixed rotation by the angle θ names', () => {
    const spec = parseAug('rotate:min=-15,max=15');
    const theta = augTheta(nativeOps(spec), 7, indices);
    assert.equal(theta.length, imgs.length * THETA_PER_OP);
    const random = view(spec.key);
    const angles = new Set<number>();
    imgs.forEach((_, i) => {
      assert.equal(theta[i * 3], 1, 'fired');
      const deg = theta[i * 3 + 1] * 15;
      angles.add(Math.round(deg));
      assert.ok(Math.abs(deg) <= 15);
      const fixed = augment({ pixels: pixels.subarray(i * 3072, (i + 1) * 3072), n: 1, inH: 32, inW: 32, ops: [{ ...nativeOps(spec)[0], a: deg, b: deg }], scale: 1, mean: [0, 0, 0], std: [1, 1, 1] });
      let d = 0;
      one(i, random).forEach((x, k) => (d = Math.max(d, Math.abs(x - fixed[k]))));
      assert.ok(d <= 1, `image ${i}: ${deg.toFixed(2)}° differs by ${d}`);
    });
    assert.ok(angles.size > 3, 'the draws differ between images');
  });

  it('a random crop is the fixed shift θ names, and a flip at p = 0.5 fired exactly where θ says', () => {
    const spec = parseAug('crop:pad=4+hflip:p=0.5');
    const theta = augTheta(nativeOps(spec), 11, indices);
    const random = view(spec.key, 11);
    const flips = new Set<number>();
    imgs.forEach((_, i) => {
      const t = theta.subarray(i * 6, (i + 1) * 6);
      flips.add(t[3]);
      const ops = [...nativeOps(parseAug(`translate:dx=${Math.round(t[1] * 4)},dy=${Math.round(t[2] * 4)}`)), ...(t[3] ? nativeOps(parseAug('hflip')) : [])];
      const fixed = augment({ pixels: pixels.subarray(i * 3072, (i + 1) * 3072), n: 1, inH: 32, inW: 32, ops, scale: 1, mean: [0, 0, 0], std: [1, 1, 1] });
      assert.deepEqual(one(i, random), fixed, `image ${i}`);
    });
    assert.deepEqual([...flips].sort(), [0, 1], 'both outcomes of the flip occur in eight images');
  });

  it('another seed draws another θ, the same seed the same one', () => {
    const ops = nativeOps(parseAug('brightness:s=0.4'));
    assert.deepEqual(augTheta(ops, 3, indices), augTheta(ops, 3, indices));
    assert.notDeepEqual(augTheta(ops, 3, indices), augTheta(ops, 4, indices));
    assert.ok(augTheta(ops, 3, indices).every((x, k) => (k % 3 === 0 ? x === 1 : k % 3 === 2 ? x === 0 : Math.abs(x) <= 1)));
  });
});

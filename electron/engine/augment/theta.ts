/**
 * The drawn parameters θ of a random augmentation, per image: what a conditional Ω(z, θ) is
 * told about the view it must predict. They come from the same counter-based generator as
 * the pixels, keyed by (seed, image index, op), so θ for a (seed, image) names exactly the
 * view that pixel mode and the embedding cache hold for it.
 */
import { augTheta } from '../native/index.js';
import { nativeOps, type AugSpec } from './spec.js';

/** Floats of θ per op: whether it fired, and two parameters scaled to [-1, 1]. */
export const THETA_PER_OP = 3;

/** A stable per-image index for random draws: the same image gets the same draw in any batch. */
export function imageIndex(sha: string): bigint {
  return BigInt(`0x${sha.slice(0, 12)}`);
}

/** The width of θ for a spec. */
export const thetaDim = (spec: AugSpec) => spec.ops.length * THETA_PER_OP;

/** θ of every image (rows of thetaDim(spec)) for the views drawn with `seed`. */
export function drawTheta(spec: AugSpec, seed: number, shas: string[]): Float32Array {
  return augTheta(nativeOps(spec), seed, BigInt64Array.from(shas.map(imageIndex)));
}

/**
 * How big each image's draw is: the largest |parameter| over its ops (0 for the identity
 * view, 1 at the edge of the range), the axis of the fidelity-against-|θ| curve.
 */
export function thetaMagnitude(theta: Float32Array, dim: number): Float32Array {
  const n = theta.length / dim;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let m = 0;
    for (let k = 0; k < dim; k += THETA_PER_OP) m = Math.max(m, Math.abs(theta[i * dim + k + 1]), Math.abs(theta[i * dim + k + 2]));
    out[i] = m;
  }
  return out;
}

/**
 * The conditional Ω of a random augmentation: Ω(z, θ) = z + f([z, e(θ)]) ≈ Φ(g_θ(x)), where θ
 * is what the view drew (augment/theta.ts) and e(θ) its encoding — θ itself (`conditional`)
 * or θ with sines and cosines of it (`conditional-fourier`), which lets a small MLP bend with
 * an angle or an offset. f's last layer starts at zero, so Ω starts as the identity, as the
 * residual form does; f is trained on the shift Φ(g_θ(x)) − z, which is the same loss.
 */
import { MlpModel } from '../native/index.js';

export const CONDITIONAL_FORMS = ['conditional', 'conditional-fourier'] as const;
export type ConditionalForm = (typeof CONDITIONAL_FORMS)[number];

export const isConditional = (form: string): form is ConditionalForm => (CONDITIONAL_FORMS as readonly string[]).includes(form);

/** Features per θ component of each encoding. */
const FEATURES: Record<ConditionalForm, number> = { conditional: 1, 'conditional-fourier': 5 };

/** Width of e(θ) for θ of `thetaDim`. */
export const encodedDim = (form: ConditionalForm, thetaDim: number) => FEATURES[form] * thetaDim;

/** Rows [z, e(θ)] for rows of z (width d) and of θ (width t). */
export function conditionalInput(form: ConditionalForm, z: Float32Array, d: number, theta: Float32Array, t: number): Float32Array {
  const n = z.length / d;
  if (theta.length !== n * t) throw new RangeError(`θ has ${theta.length} values for ${n} rows of width ${t}`);
  const f = FEATURES[form];
  const w = d + f * t;
  const out = new Float32Array(n * w);
  for (let i = 0; i < n; i++) {
    out.set(z.subarray(i * d, (i + 1) * d), i * w);
    for (let k = 0; k < t; k++) {
      const v = theta[i * t + k];
      const o = i * w + d + k * f;
      out[o] = v;
      if (f > 1) {
        out[o + 1] = Math.sin(Math.PI * v);
        out[o + 2] = Math.cos(Math.PI * v);
        out[o + 3] = Math.sin(2 * Math.PI * v);
        out[o + 4] = Math.cos(2 * Math.PI * v);
      }
    }
  }
  return out;
}

/** A new conditional f of sizes [d + e, hidden, d] whose output starts at zero. */
export function newConditional(sizes: number[], seed: number): MlpModel {
  const m = new MlpModel(sizes, { seed });
  const p = m.getParams();
  p[p.length - 2].fill(0);
  p[p.length - 1].fill(0);
  m.setParams(p);
  return m;
}

/** z + f([z, e(θ)]) for a trained f. */
export function conditionalForward(form: ConditionalForm, sizes: readonly number[], params: Float32Array[], z: Float32Array, theta: Float32Array): Float32Array {
  const d = sizes.at(-1)!;
  const t = (sizes[0] - d) / FEATURES[form];
  const m = new MlpModel([...sizes]);
  try {
    m.setParams(params);
    const shift = m.forward(conditionalInput(form, z, d, theta, t));
    for (let i = 0; i < shift.length; i++) shift[i] += z[i];
    return shift;
  } finally {
    m.dispose();
  }
}

/** One bin of |θ| and each predictor's held-out MSE in it. */
export interface ThetaBin {
  lo: number;
  hi: number;
  pairs: number;
  identity: number | null;
  unconditional: number | null;
  conditional: number | null;
}

/** Held-out MSE against the size of the draw, in four bins of |θ| over [0, 1]. */
export function thetaCurve(magnitude: Float32Array, y: Float32Array, d: number, preds: { identity: Float32Array; unconditional: Float32Array | null; conditional: Float32Array | null }): ThetaBin[] {
  const bins = 4;
  const sums = Array.from({ length: bins }, () => ({ pairs: 0, identity: 0, unconditional: 0, conditional: 0 }));
  const sq = (p: Float32Array, i: number) => {
    let s = 0;
    for (let k = 0; k < d; k++) s += (p[i * d + k] - y[i * d + k]) ** 2;
    return s / d;
  };
  magnitude.forEach((m, i) => {
    const b = sums[Math.min(bins - 1, Math.floor(m * bins))];
    b.pairs++;
    b.identity += sq(preds.identity, i);
    if (preds.unconditional) b.unconditional += sq(preds.unconditional, i);
    if (preds.conditional) b.conditional += sq(preds.conditional, i);
  });
  return sums.map((s, b) => ({
    lo: b / bins, hi: (b + 1) / bins, pairs: s.pairs,
    identity: s.pairs ? s.identity / s.pairs : null,
    unconditional: preds.unconditional && s.pairs ? s.unconditional / s.pairs : null,
    conditional: preds.conditional && s.pairs ? s.conditional / s.pairs : null,
  }));
}

/**
 * Augmentation specs: a pipeline of named ops with parameters, written as text such as
 * `hflip`, `rot90:k=2`, `crop:pad=4+hflip:p=0.5` or `identity`. The canonical text (ops in
 * the given order, parameters sorted, defaults filled in) is the cache key of the
 * embeddings an augmentation produces.
 */
import type { NativeAugOp } from '../native/index.js';

export const AUG_KIND = {
  hflip: 1,
  vflip: 2,
  rot90: 3,
  rotate: 4,
  translate: 5,
  brightness: 6,
  contrast: 7,
  saturation: 8,
  cutout: 9,
} as const;

interface OpDef {
  params: Record<string, { default: number; min: number; max: number; int?: boolean }>;
  /** Whether the op draws random numbers when p = 1. */
  random: (p: Record<string, number>) => boolean;
  native: (p: Record<string, number>) => NativeAugOp;
  doc: string;
}

const P = { default: 1, min: 0, max: 1 };
const op = (kind: number, prob: number, a = 0, b = 0, k = 0): NativeAugOp => ({ kind, p: prob, a, b, k });

/** Colour jitter ops share one parameter: the strength s of a factor drawn in [1-s, 1+s]. */
function colour(kind: number, doc: string): OpDef {
  return { params: { p: P, s: { default: 0.2, min: 0, max: 1 } }, random: (q) => q.s > 0, native: (q) => op(kind, q.p, q.s), doc };
}

export const OPS: Record<string, OpDef> = {
  hflip: { params: { p: P }, random: () => false, native: (q) => op(AUG_KIND.hflip, q.p), doc: 'mirror left-right' },
  vflip: { params: { p: P }, random: () => false, native: (q) => op(AUG_KIND.vflip, q.p), doc: 'mirror top-bottom' },
  rot90: {
    params: { p: P, k: { default: 1, min: 1, max: 3, int: true } },
    random: () => false,
    native: (q) => op(AUG_KIND.rot90, q.p, 0, 0, q.k),
    doc: 'rotate by k quarter turns counter-clockwise',
  },
  rotate: {
    params: { p: P, min: { default: -15, min: -180, max: 180 }, max: { default: 15, min: -180, max: 180 } },
    random: (q) => q.min !== q.max,
    native: (q) => op(AUG_KIND.rotate, q.p, q.min, q.max),
    doc: 'rotate by an angle in degrees drawn from [min, max] (bilinear, zero fill)',
  },
  crop: {
    params: { p: P, pad: { default: 4, min: 1, max: 256, int: true } },
    random: () => true,
    native: (q) => op(AUG_KIND.translate, q.p, 0, 0, q.pad),
    doc: 'pad by `pad` pixels and crop back at a random offset',
  },
  translate: {
    params: { p: P, dx: { default: 0, min: -1024, max: 1024 }, dy: { default: 0, min: -1024, max: 1024 } },
    random: () => false,
    native: (q) => op(AUG_KIND.translate, q.p, q.dx, q.dy, 0),
    doc: 'shift by (dx, dy) pixels, zero fill',
  },
  brightness: colour(AUG_KIND.brightness, 'multiply by a factor in [1-s, 1+s]'),
  contrast: colour(AUG_KIND.contrast, 'scale contrast around the mean grey by a factor in [1-s, 1+s]'),
  saturation: colour(AUG_KIND.saturation, 'scale saturation by a factor in [1-s, 1+s]'),
  cutout: {
    params: { p: P, size: { default: 8, min: 1, max: 1024, int: true } },
    random: () => true,
    native: (q) => op(AUG_KIND.cutout, q.p, 0, 0, q.size),
    doc: 'zero a size×size square at a random centre',
  },
};

export interface AugOpSpec {
  name: string;
  params: Record<string, number>;
}

export interface AugSpec {
  ops: AugOpSpec[];
  /** Canonical text: the cache key. `identity` for no ops. */
  key: string;
  /** True when the same image always gives the same output (no random draws). */
  deterministic: boolean;
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : String(Number(n.toPrecision(6)));
}

/** Parses spec text; throws RangeError naming the bad part and listing what is allowed. */
export function parseAug(text: string): AugSpec {
  if (typeof text !== 'string' || text.trim() === '')
    throw new TypeError(`an augmentation spec must be non-empty text such as "hflip", got ${JSON.stringify(text)}`);
  const t = text.trim();
  if (t === 'identity' || t === 'none') return { ops: [], key: 'identity', deterministic: true };
  const ops = t.split('+').map((part): AugOpSpec => {
    const [name, rest] = part.trim().split(':', 2);
    const def = OPS[name];
    if (!def)
      throw new RangeError(`unknown augmentation "${name}" in "${text}": use one of identity, ${Object.keys(OPS).join(', ')}`);
    const params: Record<string, number> = {};
    for (const [k, d] of Object.entries(def.params)) params[k] = d.default;
    for (const kv of rest ? rest.split(',') : []) {
      const [k, raw] = kv.split('=', 2).map((s) => s.trim());
      const d = def.params[k];
      if (!d) throw new RangeError(`augmentation "${name}" has no parameter "${k}": it takes ${Object.keys(def.params).join(', ')}`);
      const val = Number(raw);
      if (raw === undefined || raw === '' || !Number.isFinite(val) || (d.int && !Number.isInteger(val)) || val < d.min || val > d.max)
        throw new RangeError(`${name}:${k} must be ${d.int ? 'an integer' : 'a number'} in [${d.min}, ${d.max}], got "${raw}"`);
      params[k] = val;
    }
    // Drawn from [min, max]: reversed, it would draw the same angles under another cache key.
    if ('min' in params && 'max' in params && params.min > params.max)
      throw new RangeError(`${name}:min is ${fmt(params.min)}, above max ${fmt(params.max)}: give the range lowest first, e.g. ${name}:min=${fmt(params.max)},max=${fmt(params.min)}`);
    return { name, params };
  });
  const key = ops
    .map((o) => {
      const ps = Object.keys(o.params)
        .sort()
        .filter((k) => !(k === 'p' && o.params.p === 1))
        .map((k) => `${k}=${fmt(o.params[k])}`);
      return ps.length ? `${o.name}:${ps.join(',')}` : o.name;
    })
    .join('+');
  const deterministic = ops.every((o) => o.params.p === 1 && !OPS[o.name].random(o.params));
  return { ops, key, deterministic };
}

export function nativeOps(spec: AugSpec): NativeAugOp[] {
  return spec.ops.map((o) => OPS[o.name].native(o.params));
}

/**
 * A comma-separated list of specs, where a comma followed by `name=` continues the parameters
 * of the spec before it: `hflip,rotate:min=-15,max=15,crop:pad=4` is three specs.
 */
export function splitAugList(text: string): string[] {
  const out: string[] = [];
  for (const part of text.split(',').map((t) => t.trim()).filter(Boolean)) {
    if (out.length && /^[a-z]+=/.test(part)) out[out.length - 1] += `,${part}`;
    else out.push(part);
  }
  return out;
}

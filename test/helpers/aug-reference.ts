/**
 * A plain TypeScript statement of the augmentation semantics of native/include/eb_aug.h,
 * written independently of the C++ kernels, to test them against.
 */
import type { NativeAugOp } from '../../electron/engine/native/index.js';

const M64 = (1n << 64n) - 1n;
function mix64(z: bigint): bigint {
  z = (z + 0x9e3779b97f4a7c15n) & M64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M64;
  return z ^ (z >> 31n);
}
function uniform(seed: number, image: number, op: number, draw: number): number {
  const inner = mix64((BigInt(image) * 0x100000001b3n + BigInt(op * 8 + draw)) & M64);
  const h = mix64(BigInt(seed) ^ inner);
  return Number(h >> 40n) / 16777216;
}

type Affine = [number, number, number, number, number, number];
function then(m: Affine, g: Affine): Affine {
  return [
    m[0] * g[0] + m[1] * g[3], m[0] * g[1] + m[1] * g[4], m[0] * g[2] + m[1] * g[5] + m[2],
    m[3] * g[0] + m[4] * g[3], m[3] * g[1] + m[4] * g[4], m[3] * g[2] + m[4] * g[5] + m[5],
  ];
}
function rotInv(c: number, s: number, cx: number, cy: number): Affine {
  return [c, -s, cx - c * cx + s * cy, s, c, cy - s * cx - c * cy];
}

export interface RefJob {
  pixels: Uint8Array; n: number; inH: number; inW: number; outH: number; outW: number;
  ops: NativeAugOp[]; scale: number; mean: number[]; std: number[]; seed: number; indexOffset: number;
}

/** Returns NCHW float values. */
export function augmentReference(j: RefJob): Float64Array {
  const { outH: H, outW: W } = j;
  const out = new Float64Array(j.n * 3 * H * W);
  for (let i = 0; i < j.n; i++) {
    const image = j.indexOffset + i;
    let m: Affine = [j.inW / W, 0, 0, 0, j.inH / H, 0];
    const post: { kind: number; f: number; rect?: number[] }[] = [];
    j.ops.forEach((op, k) => {
      if (op.p < 1 && uniform(j.seed, image, k, 0) >= op.p) return;
      const u1 = uniform(j.seed, image, k, 1), u2 = uniform(j.seed, image, k, 2);
      const cx = W / 2, cy = H / 2;
      switch (op.kind) {
        case 1: m = then(m, [-1, 0, W, 0, 1, 0]); break;
        case 2: m = then(m, [1, 0, 0, 0, -1, H]); break;
        case 3: { const q = ((op.k % 4) + 4) % 4; m = then(m, rotInv([1, 0, -1, 0][q], [0, 1, 0, -1][q], cx, cy)); break; }
        case 4: { const r = ((op.a + (op.b - op.a) * u1) * Math.PI) / 180; m = then(m, rotInv(Math.cos(r), Math.sin(r), cx, cy)); break; }
        case 5: {
          let dx = op.a, dy = op.b;
          if (op.k > 0) { const span = 2 * op.k + 1; dx = Math.floor(u1 * span) - op.k; dy = Math.floor(u2 * span) - op.k; }
          m = then(m, [1, 0, -dx, 0, 1, -dy]);
          break;
        }
        case 6: case 7: case 8: post.push({ kind: op.kind, f: 1 - op.a + 2 * op.a * u1 }); break;
        case 9: {
          const x0 = Math.floor(u1 * W) - Math.floor(op.k / 2), y0 = Math.floor(u2 * H) - Math.floor(op.k / 2);
          post.push({ kind: 9, f: 0, rect: [x0, y0, x0 + op.k, y0 + op.k] });
          break;
        }
      }
    });
    const img = j.pixels.subarray(i * j.inH * j.inW * 3, (i + 1) * j.inH * j.inW * 3);
    const buf = new Float64Array(H * W * 3);
    const snap = (v: number) => (Math.abs(v - Math.round(v)) < 1e-3 ? Math.round(v) : v);
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        const u = x + 0.5, v = y + 0.5;
        let sx = snap(m[0] * u + m[1] * v + m[2] - 0.5), sy = snap(m[3] * u + m[4] * v + m[5] - 0.5);
        if (sx < -0.5 || sy < -0.5 || sx > j.inW - 0.5 || sy > j.inH - 0.5) continue;
        sx = Math.min(Math.max(sx, 0), j.inW - 1); sy = Math.min(Math.max(sy, 0), j.inH - 1);
        const x0 = Math.floor(sx), y0 = Math.floor(sy);
        const x1 = Math.min(x0 + 1, j.inW - 1), y1 = Math.min(y0 + 1, j.inH - 1);
        const fx = sx - x0, fy = sy - y0;
        for (let c = 0; c < 3; c++) {
          const p = (yy: number, xx: number) => img[(yy * j.inW + xx) * 3 + c];
          const top = p(y0, x0) + (p(y0, x1) - p(y0, x0)) * fx, bot = p(y1, x0) + (p(y1, x1) - p(y1, x0)) * fx;
          buf[(y * W + x) * 3 + c] = top + (bot - top) * fy;
        }
      }
    const clamp = (v: number) => Math.min(Math.max(v, 0), 255);
    const grey = (q: number) => 0.299 * buf[q] + 0.587 * buf[q + 1] + 0.114 * buf[q + 2];
    for (const p of post) {
      let meanGrey = 0;
      if (p.kind === 7) { for (let q = 0; q < H * W; q++) meanGrey += grey(q * 3); meanGrey /= H * W; }
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++) {
          const q = (y * W + x) * 3;
          if (p.kind === 6) for (let c = 0; c < 3; c++) buf[q + c] = clamp(buf[q + c] * p.f);
          if (p.kind === 7) for (let c = 0; c < 3; c++) buf[q + c] = clamp(meanGrey + (buf[q + c] - meanGrey) * p.f);
          if (p.kind === 8) { const g = grey(q); for (let c = 0; c < 3; c++) buf[q + c] = clamp(g + (buf[q + c] - g) * p.f); }
          if (p.kind === 9 && x >= p.rect![0] && x < p.rect![2] && y >= p.rect![1] && y < p.rect![3]) buf[q] = buf[q + 1] = buf[q + 2] = 0;
        }
    }
    for (let c = 0; c < 3; c++)
      for (let q = 0; q < H * W; q++) out[(i * 3 + c) * H * W + q] = (buf[q * 3 + c] * j.scale - j.mean[c]) / j.std[c];
  }
  return out;
}

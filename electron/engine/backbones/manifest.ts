/**
 * The backbone contract (../shared/models/*.json): the input tensor and its preprocessing,
 * the embedding output, optional logits. A user's own description has the same shape.
 */
import { z } from 'zod';

const Triple = z.tuple([z.number(), z.number(), z.number()]);

export const ManifestSchema = z.looseObject({
  name: z.string().min(1).optional(),
  file: z.string().optional(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  architecture: z.string().default('custom'),
  protocol: z.string().optional(),
  input: z.object({
    name: z.string().min(1),
    layout: z.enum(['NCHW', 'NHWC']).default('NCHW'),
    height: z.number().int().positive(),
    width: z.number().int().positive(),
    channels: z.enum(['RGB', 'BGR']).default('RGB'),
    range: z.tuple([z.number(), z.number()]).default([0, 1]),
    mean: Triple.default([0, 0, 0]),
    std: Triple.default([1, 1, 1]),
    normalisation: z.string().optional(),
    resize: z.string().optional(),
    dtype: z.literal('float32').default('float32'),
  }),
  embedding: z.object({ output: z.string().min(1), dim: z.number().int().positive().optional() }).loose(),
  logits: z
    .object({ output: z.string().min(1), classes: z.number().int().positive().optional(), class_names: z.array(z.string()).optional() })
    .loose()
    .optional(),
  base: z.record(z.string(), z.unknown()).optional(),
});

export type Manifest = z.infer<typeof ManifestSchema>;

export function parseManifest(json: unknown, where: string): Manifest {
  const r = ManifestSchema.safeParse(json);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new TypeError(`The backbone description ${where} is not valid: ${issues}. See the manifest contract in README.md.`);
  }
  return r.data;
}

/** True when mean/std are applied by the graph itself, so we must not apply them again. */
export function normalisedInGraph(m: Manifest): boolean {
  return /inside the graph|in graph|in-graph/i.test(m.input.normalisation ?? '');
}

export interface Preprocess {
  height: number;
  width: number;
  nhwc: boolean;
  bgr: boolean;
  /** For the augmentation kernel: out = (pixel * scale - mean) / std. */
  scale: number;
  mean: [number, number, number];
  std: [number, number, number];
  /** Canonical text: part of the embedding cache key. */
  key: string;
}

/** value = range0 + pixel/255 (range1 - range0), then (value - mean) / std unless the graph does it. */
export function preprocessOf(m: Manifest): Preprocess {
  const [r0, r1] = m.input.range;
  const inGraph = normalisedInGraph(m);
  const mean = (inGraph ? [0, 0, 0] : m.input.mean).map((x) => x - r0) as [number, number, number];
  const std = (inGraph ? [1, 1, 1] : m.input.std) as [number, number, number];
  const p = {
    height: m.input.height,
    width: m.input.width,
    nhwc: m.input.layout === 'NHWC',
    bgr: m.input.channels === 'BGR',
    scale: (r1 - r0) / 255,
    mean,
    std,
  };
  return { ...p, key: JSON.stringify({ ...p, resize: 'fill-bilinear' }) };
}

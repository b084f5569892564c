/**
 * Composite augmentations (the paper's future work, "series of basic augmentations"): an Ω
 * trained on the composite directly against the chain of the single ops' Ωs, each applied
 * where the composite's draw fired it, at that op's part of θ, both scored on the same
 * held-out composite pairs.
 */
import { THETA_PER_OP, parseAug } from '../augment/index.js';
import { getBackbone } from '../backbones/index.js';
import { getDataset } from '../datasets/index.js';
import type { Db } from '../db.js';
import { EmbaugError } from '../errors.js';
import { isConditional } from './conditional.js';
import { OMEGA_DEFAULTS, applyOmega, basePairs, trainOmega, type OmegaRequest, type OmegaResult } from './omega.js';
import { mse } from './stats.js';

export interface CompositeFidelity {
  aug: string;
  /** Held-out pairs of the composite (draws × held-out images). */
  pairs: number;
  identityMse: number;
  direct: { chosen: OmegaResult['chosen']; heldOutMse: number; runId: number };
  chain: { heldOutMse: number; parts: { aug: string; chosen: OmegaResult['chosen']; runId: number }[] };
}

/** The single ops of a composite as they act when they fire (the probability is in the composite's θ). */
export function compositeParts(aug: string): string[] {
  const spec = parseAug(aug);
  if (spec.ops.length < 2) throw new EmbaugError('E_ARG', `"${spec.key}" is a single op: a composite joins two or more with + (crop:pad=4+hflip)`);
  return spec.ops.map((op) => {
    const params = Object.entries(op.params).filter(([k]) => k !== 'p').map(([k, v]) => `${k}=${v}`);
    return params.length ? `${op.name}:${params.join(',')}` : op.name;
  });
}

/** `direct`: the composite's Ω when already trained with the same request. */
export async function compositeFidelity(db: Db, req: OmegaRequest & { direct?: OmegaResult }): Promise<CompositeFidelity> {
  const spec = parseAug(req.aug);
  const partAugs = compositeParts(req.aug);
  const direct = req.direct ?? (await trainOmega(db, req));
  const parts = [];
  for (const aug of partAugs) parts.push(await trainOmega(db, { ...req, aug }));
  const cfg = { ...OMEGA_DEFAULTS, ...req.config };
  const source = { dataset: getDataset(db, req.dataset).id, backbone: getBackbone(db, req.backbone).sha256, ...req.selection, threads: req.threads, signal: req.signal, onProgress: req.onProgress };
  const p = await basePairs(db, source, spec, cfg);
  const n = p.xHo.length / p.d;
  let z = p.xHo;
  parts.forEach((om, j) => {
    const theta = p.thHo ? p.thHo.filter((_, k) => Math.floor((k % p.tDim) / THETA_PER_OP) === j) : null;
    const out = applyOmega(om, z, isConditional(om.chosen) ? theta! : undefined);
    // Where the draw did not fire the op, the embedding passes through unchanged.
    const next = new Float32Array(z.length);
    for (let i = 0; i < n; i++) next.set((theta ? theta[i * THETA_PER_OP] : 1) ? out.subarray(i * p.d, (i + 1) * p.d) : z.subarray(i * p.d, (i + 1) * p.d), i * p.d);
    z = next;
  });
  return {
    aug: spec.key, pairs: n, identityMse: mse(p.xHo, p.yHo),
    direct: { chosen: direct.chosen, heldOutMse: direct.fidelity.heldOutMse, runId: direct.runId },
    chain: { heldOutMse: mse(z, p.yHo), parts: parts.map((om) => ({ aug: om.aug, chosen: om.chosen, runId: om.runId })) },
  };
}

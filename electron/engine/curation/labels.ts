/**
 * Likely label errors by confident learning's simplest score: out-of-fold predicted
 * probabilities from heads trained with k-fold cross-validation on the embeddings; an image
 * is suspect in proportion to how little probability its given label gets.
 */
import { createHash } from 'node:crypto';

import type { Selection } from '../datasets/index.js';
import { getDataset, type ImageRow } from '../datasets/index.js';
import type { Db } from '../db.js';
import { embeddingsFor } from '../embeddings/index.js';
import { ProgressMeter, throwIfAborted } from '../jobs/index.js';
import { MlpModel } from '../native/index.js';
import { rows as pick } from '../training/stats.js';
import * as v from '../validate.js';
import type { CurationRequest } from './duplicates.js';

export interface LabelIssue {
  image: ImageRow;
  givenProbability: number;
  predicted: number;
  predictedProbability: number;
  /** 1 − p(given label): higher is more suspect. */
  score: number;
}

export interface LabelReport {
  ranked: LabelIssue[];
  outOfFoldAccuracy: number;
  folds: number;
}

function softmax(logits: Float32Array, c: number): Float32Array {
  const p = new Float32Array(logits.length);
  for (let i = 0; i < logits.length / c; i++) {
    let m = -Infinity;
    for (let k = 0; k < c; k++) m = Math.max(m, logits[i * c + k]);
    let s = 0;
    for (let k = 0; k < c; k++) s += p[i * c + k] = Math.exp(logits[i * c + k] - m);
    for (let k = 0; k < c; k++) p[i * c + k] /= s;
  }
  return p;
}

export async function findLabelErrors(db: Db, req: CurationRequest & { selection?: Selection; folds?: number; epochs?: number; seed?: number }): Promise<LabelReport> {
  // Each image is scored by heads trained without it: one fold would leave them nothing to train on.
  const folds = v.int('folds', req.folds ?? 5, 2, 100), epochs = v.int('epochs', req.epochs ?? 20, 1, 100_000), seed = req.seed ?? 0;
  const ds = getDataset(db, req.dataset);
  const z = await embeddingsFor(db, { dataset: ds.id, backbone: req.backbone, ...req.selection, aug: 'identity', threads: req.threads, signal: req.signal, onProgress: req.onProgress, record: false });
  const n = z.images.length, d = z.dim;
  const labels = Int32Array.from(z.images.map((i) => i.label));
  const c = Math.max(...labels) + 1;
  // Folds by image hash: stable whatever the order.
  const fold = z.images.map((im) => createHash('sha256').update(`${seed}:${im.sha256}`).digest().readUInt32BE(0) % folds);
  const probs = new Float32Array(n * c);
  const meter = new ProgressMeter('cross-validating heads', folds, 'folds', req.onProgress);
  for (let f = 0; f < folds; f++) {
    throwIfAborted(req.signal, 'the label check');
    const tr = fold.flatMap((k, i) => (k === f ? [] : [i]));
    const te = fold.flatMap((k, i) => (k === f ? [i] : []));
    const m = new MlpModel([d, 256, c], { seed: seed + f });
    try {
      await m.train({ x: pick(z.x, d, tr), labels: Int32Array.from(tr.map((i) => labels[i])), batch: 128, epochs, seed: seed + f, optimizer: { kind: 'adam', lr: 1e-3, weightDecay: 1e-4 }, signal: req.signal });
      const p = softmax(m.forward(pick(z.x, d, te)), c);
      te.forEach((i, k) => probs.set(p.subarray(k * c, (k + 1) * c), i * c));
    } finally {
      m.dispose();
    }
    meter.tick();
  }
  let correct = 0;
  const ranked = z.images.map((image, i) => {
    let arg = 0;
    for (let k = 1; k < c; k++) if (probs[i * c + k] > probs[i * c + arg]) arg = k;
    correct += Number(arg === labels[i]);
    const given = probs[i * c + labels[i]];
    return { image, givenProbability: given, predicted: arg, predictedProbability: probs[i * c + arg], score: 1 - given };
  });
  ranked.sort((a, b) => b.score - a.score);
  return { ranked, outOfFoldAccuracy: correct / n, folds };
}

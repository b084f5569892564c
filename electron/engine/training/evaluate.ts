/**
 * What a trained head gets right and wrong on its test images: per-class accuracy, the
 * confusion matrix, and the misclassified images most confidently wrong first. Computed from
 * the logits the head gives, so its accuracy is the run's final test accuracy.
 */
import type { ImageRow } from '../datasets/index.js';
import type { Db } from '../db.js';
import { embedImage } from '../embeddings/index.js';
import { EmbaugError } from '../errors.js';
import { MlpModel } from '../native/index.js';
import { artifactBytes, getRun, runArtifacts } from '../runs/index.js';
import { unpackParams } from './omega.js';

export interface HeadReport {
  classNames: string[];
  n: number;
  accuracy: number;
  perClass: { name: string; n: number; accuracy: number }[];
  /** confusion[t][p]: test images of class t the head called p. */
  confusion: number[][];
  /** The most confidently wrong, at most `MISCLASSIFIED_SHOWN`. */
  misclassified: { idx: number; sha256: string; label: number; predicted: number; probability: number }[];
}

export const MISCLASSIFIED_SHOWN = 48;

/** Softmax of each row of logits (c per row). */
export function softmaxRows(logits: Float32Array, c: number): Float32Array {
  const out = new Float32Array(logits.length);
  for (let i = 0; i < logits.length; i += c) {
    let m = -Infinity;
    for (let k = 0; k < c; k++) m = Math.max(m, logits[i + k]);
    let s = 0;
    for (let k = 0; k < c; k++) s += out[i + k] = Math.exp(logits[i + k] - m);
    for (let k = 0; k < c; k++) out[i + k] /= s;
  }
  return out;
}

export function headReport(logits: Float32Array, images: Pick<ImageRow, 'idx' | 'sha256' | 'label'>[], classNames: string[]): HeadReport {
  const c = classNames.length;
  const p = softmaxRows(logits, c);
  const confusion = classNames.map(() => new Array<number>(c).fill(0));
  const wrong: HeadReport['misclassified'] = [];
  images.forEach((im, i) => {
    let arg = 0;
    for (let k = 1; k < c; k++) if (logits[i * c + k] > logits[i * c + arg]) arg = k;
    confusion[im.label][arg]++;
    if (arg !== im.label) wrong.push({ idx: im.idx, sha256: im.sha256, label: im.label, predicted: arg, probability: p[i * c + arg] });
  });
  const correct = confusion.reduce((s, row, t) => s + row[t], 0);
  return {
    classNames, n: images.length, accuracy: correct / Math.max(1, images.length),
    perClass: confusion.map((row, t) => {
      const n = row.reduce((a, b) => a + b, 0);
      return { name: classNames[t], n, accuracy: n ? row[t] / n : 0 };
    }),
    confusion,
    misclassified: wrong.sort((a, b) => b.probability - a.probability).slice(0, MISCLASSIFIED_SHOWN),
  };
}

/** A finished head's weights, sizes, class names and backbone, from its run. */
export function loadHead(db: Db, runId: number): { params: Float32Array[]; sizes: number[]; classNames: string[]; backbone: string } {
  const run = getRun(db, runId);
  const art = runArtifacts(db, runId).find((a) => a.kind === 'weights');
  if (run.kind !== 'head' || run.status !== 'completed' || !art || !run.backboneSha)
    throw new EmbaugError('E_ARG', `Run ${runId} is not a finished head (Ψ): pick one from the Heads view's list, or \`embaug runs list --kind head\`.`);
  const meta = JSON.parse(art.meta) as { sizes: number[]; classNames: string[] };
  return { params: unpackParams(artifactBytes(db, runId, art.name), meta.sizes), sizes: meta.sizes, classNames: meta.classNames, backbone: run.backboneSha };
}

/** "Try an image": the class probabilities a head gives a picture, through Φ and Ψ. */
export async function classifyImage(db: Db, runId: number, bytes: Uint8Array): Promise<{ classNames: string[]; probabilities: number[]; predicted: number }> {
  const h = loadHead(db, runId);
  const z = await embedImage(db, h.backbone, bytes);
  const m = new MlpModel(h.sizes, { seed: 0 });
  try {
    m.setParams(h.params);
    const p = Array.from(softmaxRows(m.forward(z), h.classNames.length));
    return { classNames: h.classNames, probabilities: p, predicted: p.indexOf(Math.max(...p)) };
  } finally {
    m.dispose();
  }
}

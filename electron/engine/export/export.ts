/**
 * Exporting trained heads Ψ and transformers Ω: ONNX (embedding in; logits and probabilities,
 * or the augmented embedding, out), one deployable ONNX with Φ and Ψ merged (image in), and
 * safetensors weights with a JSON manifest. Every file is checked in ONNX Runtime against the
 * workbench's own forward pass on real embeddings and images before the export is reported
 * done; a failed check removes what was written.
 */
import { createHash, randomBytes } from 'node:crypto';
import { lstatSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';

import { drawTheta, nativeOps, parseAug } from '../augment/index.js';
import { getBackbone, preprocessOf, type BackboneInfo } from '../backbones/index.js';
import { decodeToSize, readBlobs, selectImages, type Selection } from '../datasets/index.js';
import type { Db } from '../db.js';
import { embeddingsFor } from '../embeddings/index.js';
import { EmbaugError } from '../errors.js';
import { MlpModel, augment } from '../native/index.js';
import { artifactBytes, getRun, runArtifacts, startRun, type RunRecord } from '../runs/index.js';
import { conditionalForward, encodedDim, isConditional, unpackParams } from '../training/index.js';
import type { onnx } from 'onnx-proto';

import { conditionalInputNodes, decodeModel, encodeModel, mlpNodes, model, valueInfo } from './onnx.js';
import { encodeSafetensors } from './safetensors.js';
import { outputFolder } from '../paths.js';

export interface ExportRequest {
  runId: number;
  outDir: string;
  /** Base name of the files; letters, digits, dot, dash and underscore only. */
  name?: string;
  merged?: boolean;
  safetensors?: boolean;
  /** Replace files of the same names in outDir; without it an existing file is never touched. */
  force?: boolean;
}

export interface ExportedFile {
  path: string;
  kind: 'onnx' | 'onnx-merged' | 'safetensors' | 'manifest';
  sha256: string;
  bytes: number;
}

export interface ExportResult {
  files: ExportedFile[];
  checks: { what: string; samples: number; maxAbsDiff: number; argmaxAgreement: number | null }[];
  runId: number;
}

interface Trained {
  run: RunRecord;
  kind: 'head' | 'omega';
  sizes: number[];
  params: Float32Array[];
  residual: boolean;
  /** An Ω's form (plain, residual, conditional…); a head's is plain. */
  form: string;
  /** An Ω's augmentation spec. */
  aug: string | null;
  classNames: string[];
  backbone: BackboneInfo;
}

function trained(db: Db, runId: number): Trained {
  const run = getRun(db, runId);
  if (run.status !== 'completed') throw new EmbaugError('E_EXPORT', `Run ${runId} is ${run.status}; only completed head (Ψ) or Ω runs can be exported.`);
  if (!run.backboneSha) throw new EmbaugError('E_EXPORT', `Run ${runId} names no backbone.`);
  const art = runArtifacts(db, runId).find((a) => a.kind === 'weights');
  // An Ω that no trained form beat on held-out pairs is the identity: Φ(g(x)) ≈ Φ(x), no weights.
  if (run.kind === 'omega' && !art && (run.summary as { chosen?: string } | null)?.chosen === 'identity')
    throw new EmbaugError('E_EXPORT', `Run ${runId}'s Ω is the identity (no trained form beat it on held-out pairs), so there are no weights to export: in embedding space this augmentation is Φ(x) itself.`);
  if ((run.kind !== 'head' && run.kind !== 'omega') || !art)
    throw new EmbaugError('E_EXPORT', `Run ${runId} is a${/^[aeiou]/.test(run.kind) ? 'n' : ''} ${run.kind} run without weights: export a head (Ψ) or Ω run (see \`embaug runs list --kind head\`).`);
  const meta = JSON.parse(art.meta) as { sizes: number[]; classNames?: string[]; residual?: boolean; form?: string; aug?: string };
  return {
    run, kind: run.kind, sizes: meta.sizes, params: unpackParams(artifactBytes(db, runId, art.name), meta.sizes), residual: !!meta.residual,
    form: meta.form ?? (meta.residual ? 'residual' : 'plain'), aug: meta.aug ?? null,
    classNames: meta.classNames ?? [], backbone: getBackbone(db, run.backboneSha),
  };
}

/** Runs one file-system step; any failure becomes E_EXPORT naming the path and what was done. */
function fsStep<T>(what: string, path: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof EmbaugError) throw err;
    throw new EmbaugError('E_EXPORT', `Could not ${what} ${path}: ${(err as Error).message}. Nothing was exported; choose another folder.`);
  }
}

function lstatOrNull(path: string) {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
}

/**
 * The export's files, written safely: each goes to a new temporary name in the output folder
 * (created exclusively, never through an existing file or link), is verified from there, and
 * only then is renamed into place. A file of the same name is replaced only with `force`
 * (rename replaces a link itself, never what it points to); a folder never. A failure removes
 * what this export created and nothing else.
 */
class Writer {
  readonly files: ExportedFile[] = [];
  #temps: string[] = [];
  #placed: string[] = [];

  constructor(readonly dir: string, readonly force: boolean) {}

  /** Refuses, before anything is written, names that exist and may not be replaced. */
  check(names: string[]): void {
    const clash = names.map((n) => ({ n, st: lstatOrNull(join(this.dir, n)) })).filter((x) => x.st);
    const dirs = clash.filter((x) => x.st!.isDirectory());
    if (dirs.length) throw new EmbaugError('E_EXPORT', `${dirs.map((x) => join(this.dir, x.n)).join(', ')} ${dirs.length > 1 ? 'are folders' : 'is a folder'}: choose another export name or folder.`);
    if (clash.length && !this.force)
      throw new EmbaugError('E_EXISTS', `${clash.map((x) => join(this.dir, x.n)).join(', ')} exist${clash.length > 1 ? '' : 's'} already: nothing was written. Pass --force to replace ${clash.length > 1 ? 'them' : 'it'}, or choose another name or folder.`, { paths: clash.map((x) => join(this.dir, x.n)) });
  }

  /** Writes bytes to a temporary file beside `name`; returns its path, for verification. */
  stage(name: string, kind: ExportedFile['kind'], bytes: Uint8Array): string {
    const tmp = join(this.dir, `.${name}.${randomBytes(6).toString('hex')}.partial`);
    fsStep('write', tmp, () => writeFileSync(tmp, bytes, { flag: 'wx', mode: 0o644 }));
    this.#temps.push(tmp);
    this.files.push({ path: join(this.dir, name), kind, sha256: sha(bytes), bytes: bytes.length });
    return tmp;
  }

  /** Renames every staged file into place, checking each name again just before. */
  commit(): void {
    this.check(this.files.map((f) => f.path.slice(this.dir.length + 1)));
    this.files.forEach((f, i) => {
      const existed = lstatOrNull(f.path) !== null;
      fsStep('move the finished file into', f.path, () => renameSync(this.#temps[i], f.path));
      if (!existed) this.#placed.push(f.path);
    });
    this.#temps = [];
  }

  discard(): void {
    for (const p of [...this.#temps, ...this.#placed]) rmSync(p, { force: true });
    this.#temps = [];
    this.#placed = [];
  }
}

function sha(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The width of θ a conditional Ω takes, or null for any other model. */
function thetaWidth(t: Trained): number | null {
  if (!isConditional(t.form)) return null;
  return (t.sizes[0] - t.sizes.at(-1)!) / encodedDim(t.form, 1);
}

function headGraph(t: Trained, props: Record<string, unknown>) {
  const out = t.sizes[t.sizes.length - 1];
  const tw = thetaWidth(t);
  // A conditional Ω takes the embedding and θ, and adds its output to the embedding.
  const d = tw === null ? t.sizes[0] : out;
  const cond = tw === null ? null : conditionalInputNodes('embedding', 'theta', tw, t.form === 'conditional-fourier');
  const g = mlpNodes('', cond?.output ?? 'embedding', t.sizes, t.params, t.residual || cond ? 'embedding' : null);
  const outputs = t.kind === 'head'
    ? [valueInfo('logits', ['N', out]), valueInfo('probabilities', ['N', out])]
    : [valueInfo('augmented_embedding', ['N', out])];
  const inputs = [valueInfo('embedding', ['N', d]), ...(tw === null ? [] : [valueInfo('theta', ['N', tw])])];
  const nodes = [...(cond?.nodes ?? []), ...g.nodes];
  if (t.kind === 'head') {
    nodes.push({ opType: 'Identity', name: 'logits', input: [g.output], output: ['logits'] });
    nodes.push({ opType: 'Softmax', name: 'probabilities', input: ['logits'], output: ['probabilities'], attribute: [{ name: 'axis', type: 2, i: 1 }] });
  } else nodes.push({ opType: 'Identity', name: 'augmented_embedding', input: [g.output], output: ['augmented_embedding'] });
  return model({ name: `embaug-${t.kind}`, node: nodes, initializer: [...(cond?.initializers ?? []), ...g.initializers], input: inputs, output: outputs }, props);
}

/** Φ's graph with Ψ appended on its embedding output: image in, probabilities and logits out. */
function mergedGraph(t: Trained, props: Record<string, unknown>): onnx.IModelProto {
  const phi = decodeModel(readFileSync(t.backbone.path));
  const graph = phi.graph as onnx.IGraphProto & { node: onnx.INodeProto[]; initializer: onnx.ITensorProto[] };
  const emb = t.backbone.manifest.embedding.output;
  // Φ's own outputs (its base-task logits among them) are renamed so Ψ's names are free.
  const rename = (n: string) => (n === 'logits' || n === 'probabilities' ? `phi/${n}` : n);
  for (const node of graph.node) {
    node.output = (node.output ?? []).map(rename);
    node.input = (node.input ?? []).map(rename);
  }
  const g = mlpNodes('head/', emb, t.sizes, t.params, null);
  const out = t.sizes[t.sizes.length - 1];
  graph.node.push(
    ...g.nodes,
    { opType: 'Identity', name: 'logits', input: [g.output], output: ['logits'] },
    { opType: 'Softmax', name: 'probabilities', input: ['logits'], output: ['probabilities'], attribute: [{ name: 'axis', type: 2, i: 1 }] },
  );
  graph.initializer.push(...g.initializers);
  graph.output = [valueInfo('probabilities', ['N', out]), valueInfo('logits', ['N', out])];
  return { ...phi, graph, metadataProps: [...(phi.metadataProps ?? []), ...(model({}, props).metadataProps ?? [])] };
}

function compare(what: string, ours: Float32Array, theirs: Float32Array, classes: number | null) {
  let maxAbsDiff = 0;
  for (let i = 0; i < ours.length; i++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(ours[i] - theirs[i]));
  let argmaxAgreement: number | null = null;
  if (classes) {
    const n = ours.length / classes;
    let same = 0;
    const arg = (a: Float32Array, i: number) => {
      let k = 0;
      for (let c = 1; c < classes; c++) if (a[i * classes + c] > a[i * classes + k]) k = c;
      return k;
    };
    for (let i = 0; i < n; i++) same += Number(arg(ours, i) === arg(theirs, i));
    argmaxAgreement = same / n;
  }
  return { what, samples: ours.length / (classes ?? 1), maxAbsDiff, argmaxAgreement };
}

// float32 GEMMs in two libraries sum in different orders; 1e-4 absolute on logits of order 10.
const TOLERANCE = 1e-4;

export async function exportRun(db: Db, req: ExportRequest): Promise<ExportResult> {
  const t = trained(db, req.runId);
  const name = req.name ?? `${t.kind}-run${t.run.id}`;
  if (!/^[A-Za-z0-9._-]+$/.test(name) || name.startsWith('.'))
    throw new EmbaugError('E_ARG', `export name "${name}" may hold only letters, digits, ".", "-" and "_" (no folders).`);
  const outDir = outputFolder(req.outDir, 'E_EXPORT');
  const out = new Writer(outDir, req.force ?? false);
  const withSafetensors = req.safetensors ?? true;
  out.check([
    `${name}.onnx`,
    ...(req.merged && t.kind === 'head' ? [`${name}.merged.onnx`] : []),
    ...(withSafetensors ? [`${name}.safetensors`, `${name}.json`] : []),
  ]);
  const props = {
    embaug_kind: t.kind, classes: t.classNames, embedding_dim: t.sizes[0], layer_sizes: t.sizes, backbone_sha256: t.backbone.sha256,
    backbone: t.backbone.name, run_id: t.run.id, dataset_version: t.run.datasetVersion ?? '', residual: t.residual,
    ...(t.kind === 'omega' ? { form: t.form, augmentation: t.aug ?? '' } : {}),
    ...(thetaWidth(t) !== null ? { theta_dim: thetaWidth(t), theta_layout: 'per op of the augmentation: fired (0/1), then two parameters scaled to [-1, 1]' } : {}),
  };
  const record = startRun(db, { kind: 'export', name: `export run ${t.run.id} to ${outDir}`, parentId: t.run.id, backboneSha: t.backbone.sha256, config: { ...req, outDir, name } });
  try {
    const checks: ExportResult['checks'] = [];
    const mlp = new MlpModel(t.sizes, { residual: t.residual });
    mlp.setParams(t.params);
    try {
      // Real embeddings of the run's own test images (or, for Ω, its base images).
      const cfg = t.run.config as { test?: Selection; selection?: Selection };
      const sel: Selection = { ...(cfg.test ?? cfg.selection ?? {}), limit: 512, balanced: true };
      const z = await embeddingsFor(db, { dataset: t.run.datasetId!, backbone: t.backbone.sha256, ...sel, aug: 'identity', record: false });
      const onnxPath = out.stage(`${name}.onnx`, 'onnx', encodeModel(headGraph(t, props)));
      const s = await ort.InferenceSession.create(onnxPath);
      const tw = thetaWidth(t);
      // A conditional Ω is checked on the θ its augmentation really draws for these images.
      const theta = tw === null ? null : drawTheta(parseAug(t.aug!), 0, z.images.map((i) => i.sha256));
      const res = await s.run({
        embedding: new ort.Tensor('float32', z.x, [z.images.length, tw === null ? t.sizes[0] : t.sizes.at(-1)!]),
        ...(theta ? { theta: new ort.Tensor('float32', theta, [z.images.length, tw!]) } : {}),
      });
      const ours = theta && isConditional(t.form) ? conditionalForward(t.form, t.sizes, t.params, z.x, theta) : mlp.forward(z.x);
      const classes = t.kind === 'head' ? t.sizes.at(-1)! : null;
      checks.push(compare(`${name}.onnx on ${z.images.length} real embeddings`, ours, (res[t.kind === 'head' ? 'logits' : 'augmented_embedding'] as ort.Tensor).data as Float32Array, classes));
      if (t.kind === 'head') {
        const p = (res.probabilities as ort.Tensor).data as Float32Array;
        for (let i = 0; i < z.images.length; i++) {
          let sum = 0;
          for (let c = 0; c < classes!; c++) sum += p[i * classes! + c];
          if (Math.abs(sum - 1) > 1e-4) throw new EmbaugError('E_EXPORT', `probabilities of sample ${i} sum to ${sum}`);
        }
      }
      if (req.merged && t.kind === 'head') {
        const mergedPath = out.stage(`${name}.merged.onnx`, 'onnx-merged', encodeModel(mergedGraph(t, props)));
        const pre = preprocessOf(t.backbone.manifest);
        const rows = selectImages(db, t.run.datasetId!, { ...sel, limit: 256 });
        const px = await decodeToSize(readBlobs(db, rows.map((r) => r.sha256)), pre.width, pre.height);
        const x = augment({ pixels: px, n: rows.length, inH: pre.height, inW: pre.width, ops: nativeOps(parseAug('identity')), scale: pre.scale, mean: pre.mean, std: pre.std, bgr: pre.bgr, nhwc: pre.nhwc });
        const shape = pre.nhwc ? [rows.length, pre.height, pre.width, 3] : [rows.length, 3, pre.height, pre.width];
        const inName = t.backbone.manifest.input.name;
        const phi = await (await ort.InferenceSession.create(t.backbone.path)).run({ [inName]: new ort.Tensor('float32', x, shape) });
        const expect = mlp.forward((phi[t.backbone.manifest.embedding.output] as ort.Tensor).data as Float32Array);
        const merged = await (await ort.InferenceSession.create(mergedPath)).run({ [inName]: new ort.Tensor('float32', x, shape) });
        checks.push(compare(`${name}.merged.onnx on ${rows.length} real images`, expect, (merged.logits as ort.Tensor).data as Float32Array, classes));
      }
    } finally {
      mlp.dispose();
    }
    for (const c of checks)
      if (c.maxAbsDiff > TOLERANCE || (c.argmaxAgreement !== null && c.argmaxAgreement < 1))
        throw new EmbaugError('E_EXPORT', `The check of ${c.what} failed: max difference ${c.maxAbsDiff.toExponential(2)} (limit ${TOLERANCE}), argmax agreement ${c.argmaxAgreement ?? '–'}. Nothing was exported.`);
    if (withSafetensors) {
      const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
      for (let l = 0; l + 1 < t.sizes.length; l++) {
        tensors[`fc${l}.weight`] = { shape: [t.sizes[l + 1], t.sizes[l]], data: t.params[2 * l] };
        tensors[`fc${l}.bias`] = { shape: [t.sizes[l + 1]], data: t.params[2 * l + 1] };
      }
      out.stage(`${name}.safetensors`, 'safetensors', encodeSafetensors(tensors, { format: 'pt', embaug_kind: t.kind }));
      const manifest = {
        kind: t.kind, classes: t.classNames, embedding_dim: thetaWidth(t) === null ? t.sizes[0] : t.sizes.at(-1), layer_sizes: t.sizes, activation: 'relu', residual: t.residual,
        ...(t.kind === 'omega' ? { form: t.form, augmentation: t.aug } : {}),
        ...(thetaWidth(t) !== null ? { theta_dim: thetaWidth(t), input: '[embedding, e(theta)]; the output adds the embedding' } : {}),
        weights: `${name}.safetensors`, layout: 'fc{l}.weight is [out, in]; y = x W^T + b', preprocessing: t.backbone.manifest.input,
        backbone: { name: t.backbone.name, sha256: t.backbone.sha256, embedding_output: t.backbone.manifest.embedding.output },
        run: t.run.id, dataset_version: t.run.datasetVersion, checks,
      };
      out.stage(`${name}.json`, 'manifest', Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`));
    }
    out.commit();
    record.complete({ files: out.files, checks });
    return { files: out.files, checks, runId: record.id };
  } catch (err) {
    out.discard();
    throw record.fail(err);
  }
}


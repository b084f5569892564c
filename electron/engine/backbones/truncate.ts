/**
 * Any ONNX image classifier as a backbone: list the tensors that could serve as its
 * embedding (by default the input of the last Gemm/MatMul, the features before the
 * classifier), and cut the graph there, pooling a rank-4 feature map, so that the model
 * gains an embedding output next to its own.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';

import { type Db, dataDir } from '../db.js';
import { EmbaugError } from '../errors.js';
import { decodeModel, encodeModel, proto } from '../export/onnx.js';
import type { Manifest } from './manifest.js';
import { addBackbone, type BackboneInfo } from './registry.js';
import { makeDirs } from '../paths.js';

export interface Candidate {
  tensor: string;
  /** How the tensor is used: "input of Gemm /fc/Gemm", "output of GlobalAveragePool …". */
  role: string;
}

export interface Candidates {
  input: { name: string; shape: (number | string)[]; elemType: number };
  candidates: Candidate[];
  default: string | null;
}

function imageInput(m: onnx.IModelProto) {
  const inits = new Set((m.graph?.initializer ?? []).map((i) => i.name));
  const inputs = (m.graph?.input ?? []).filter((i) => !inits.has(i.name));
  if (inputs.length !== 1)
    throw new EmbaugError('E_MODEL', `The model has ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ')}); a backbone takes exactly one image input.`);
  const t = inputs[0].type?.tensorType;
  const shape = (t?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : Number(d.dimValue ?? 0) || '?'));
  return { name: inputs[0].name!, shape, elemType: t?.elemType ?? 0 };
}

export function embeddingCandidates(bytes: Uint8Array): Candidates {
  const m = decodeModel(bytes);
  const input = imageInput(m);
  const inits = new Set((m.graph?.initializer ?? []).map((i) => i.name));
  const candidates: Candidate[] = [];
  for (const n of m.graph?.node ?? []) {
    if ((n.opType === 'Gemm' || n.opType === 'MatMul') && n.input?.[0] && !inits.has(n.input[0]))
      candidates.push({ tensor: n.input[0], role: `input of ${n.opType} ${n.name || n.output?.[0]}` });
    if (['GlobalAveragePool', 'Flatten', 'Reshape', 'AveragePool', 'GlobalMaxPool'].includes(n.opType ?? ''))
      for (const o of n.output ?? []) candidates.push({ tensor: o, role: `output of ${n.opType} ${n.name || o}` });
  }
  const lastGemm = [...(m.graph?.node ?? [])].reverse().find((n) => (n.opType === 'Gemm' || n.opType === 'MatMul') && n.input?.[0] && !inits.has(n.input[0]));
  const seen = new Set<string>();
  return { input, candidates: candidates.filter((c) => !seen.has(c.tensor) && seen.add(c.tensor)).reverse(), default: lastGemm?.input?.[0] ?? null };
}

/** Cuts a classifier (beside the database) and registers the result as a backbone. */
export async function addClassifierBackbone(db: Db, req: { onnxPath: string; tensor?: string; input: Partial<Manifest['input']>; name?: string }): Promise<BackboneInfo> {
  const dir = join(dataDir(db), 'backbones');
  makeDirs(dir);
  const outPath = join(dir, `${basename(req.onnxPath, '.onnx')}.embedding.onnx`);
  const manifest = await truncateClassifier({ onnxPath: req.onnxPath, outPath, tensor: req.tensor, input: req.input });
  return addBackbone(db, { onnxPath: outPath, manifest, name: req.name ?? basename(req.onnxPath, '.onnx') });
}

export interface TruncateRequest {
  onnxPath: string;
  outPath: string;
  /** The tensor to take as the embedding; the default candidate when absent. */
  tensor?: string;
  /** The user's preprocessing; height and width are required when the model's are dynamic. */
  input: Partial<Manifest['input']>;
}

/** Cuts the graph, checks the result in ONNX Runtime, writes it, and returns its manifest. */
export async function truncateClassifier(req: TruncateRequest): Promise<Manifest> {
  const bytes = readFileSync(req.onnxPath);
  const c = embeddingCandidates(bytes);
  if (c.input.elemType !== proto.TensorProto.DataType.FLOAT)
    throw new EmbaugError('E_MODEL', `Input "${c.input.name}" is not float32 (ONNX type ${c.input.elemType}); only float image inputs are supported.`);
  if (c.input.shape.length !== 4) throw new EmbaugError('E_MODEL', `Input "${c.input.name}" has rank ${c.input.shape.length}; an image input has rank 4.`);
  const layout = req.input.layout ?? (c.input.shape[3] === 3 ? 'NHWC' : 'NCHW');
  const [hDim, wDim] = layout === 'NCHW' ? [c.input.shape[2], c.input.shape[3]] : [c.input.shape[1], c.input.shape[2]];
  const height = req.input.height ?? (typeof hDim === 'number' ? hDim : undefined);
  const width = req.input.width ?? (typeof wDim === 'number' ? wDim : undefined);
  if (!height || !width) throw new EmbaugError('E_MODEL', `Input "${c.input.name}" has a dynamic spatial size [${c.input.shape.join(',')}]: give the size to feed it (--size HxW).`);
  const tensor = req.tensor ?? c.default;
  if (!tensor) throw new EmbaugError('E_MODEL', 'The model has no Gemm or MatMul to take the embedding before: name a tensor (see `embaug backbone candidates`).');
  const m = decodeModel(bytes);
  const graph = m.graph as onnx.IGraphProto & { node: onnx.INodeProto[]; output: onnx.IValueInfoProto[] };
  const produced = new Set(graph.node.flatMap((n) => n.output ?? []));
  if (!produced.has(tensor)) throw new EmbaugError('E_MODEL', `No node produces "${tensor}". Candidates: ${c.candidates.map((x) => x.tensor).join(', ')}.`);
  // Learn the tensor's rank with a test batch, exposing it as an extra output.
  const probeShape = layout === 'NCHW' ? [1, 3, height, width] : [1, height, width, 3];
  const probe = { ...m, graph: { ...graph, output: [...graph.output, { name: tensor }] } };
  let dims: readonly number[];
  try {
    const s = await ort.InferenceSession.create(encodeModel(probe));
    dims = ((await s.run({ [c.input.name]: new ort.Tensor('float32', new Float32Array(probeShape.reduce((a, b) => a * b)), probeShape) }))[tensor] as ort.Tensor).dims;
  } catch (err) {
    throw new EmbaugError('E_MODEL', `The model does not run on a [${probeShape.join(',')}] input: ${(err as Error).message}`);
  }
  if (dims.length !== 2 && dims.length !== 4) throw new EmbaugError('E_MODEL', `"${tensor}" has rank ${dims.length}; an embedding must be a tensor of rank 2 (or 4, which is pooled).`);
  const out = produced.has('embedding') || graph.output.some((o) => o.name === 'embedding') ? 'embaug_embedding' : 'embedding';
  if (dims.length === 4) {
    graph.node.push({ opType: 'GlobalAveragePool', name: `${out}/pool`, input: [tensor], output: [`${out}/pooled`] }, { opType: 'Flatten', name: `${out}/flatten`, input: [`${out}/pooled`], output: [out] });
  } else graph.node.push({ opType: 'Identity', name: out, input: [tensor], output: [out] });
  // Feature maps inside ONNX convolutions are NCHW whatever the input layout.
  const dim = dims[1];
  graph.output = [{ name: out, type: { tensorType: { elemType: proto.TensorProto.DataType.FLOAT, shape: { dim: [{ dimParam: 'N' }, { dimValue: dim }] } } } }, ...graph.output];
  writeFileSync(req.outPath, encodeModel({ ...m, graph }));
  const classifier = graph.output.find((o) => o.name !== out);
  return {
    architecture: 'imported',
    input: {
      name: c.input.name, layout, height, width, channels: req.input.channels ?? 'RGB', range: req.input.range ?? [0, 1], mean: req.input.mean ?? [0, 0, 0],
      std: req.input.std ?? [1, 1, 1], normalisation: req.input.normalisation ?? 'by embaug', dtype: 'float32',
    },
    embedding: { output: out, dim, taken_at: `${dims.length === 4 ? 'global average of ' : ''}${tensor}` },
    ...(classifier ? { logits: { output: classifier.name! } } : {}),
  };
}

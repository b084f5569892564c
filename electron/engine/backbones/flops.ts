/**
 * What one forward pass of an ONNX model on one image is made of, from its layer shapes: every
 * intermediate tensor is exposed as an output for one run. Its FLOPs (Conv, Gemm and MatMul
 * count 2 per multiply-add; other ops are cheap by comparison and not counted), and the bytes
 * of its largest intermediate tensor, which sets the batch that runs fastest (phiBatch).
 */
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';

import { decodeModel, encodeModel } from '../export/onnx.js';

async function probe(path: string, inputName: string, inputShape: number[]) {
  const m = decodeModel(readFileSync(path));
  const graph = m.graph!;
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name!, (t.dims ?? []).map(Number)]));
  const outputs = new Set((graph.output ?? []).map((o) => o.name!));
  const all = { ...m, graph: { ...graph, output: [...(graph.output ?? []), ...(graph.node ?? []).flatMap((n) => n.output ?? []).filter((o) => o && !outputs.has(o)).map((name) => ({ name }))] } };
  const s = await ort.InferenceSession.create(encodeModel(all));
  const feeds = { [inputName]: new ort.Tensor('float32', new Float32Array(inputShape.reduce((a, b) => a * b)), inputShape) };
  const out = await s.run(feeds);
  const dims = (name: string): number[] => (out[name] as ort.Tensor | undefined)?.dims.map(Number) ?? inits.get(name) ?? (name === inputName ? inputShape : []);
  return { graph, out, dims };
}

export async function forwardFlops(path: string, inputName: string, inputShape: number[]): Promise<number> {
  const { graph, dims } = await probe(path, inputName, inputShape);
  let flops = 0;
  for (const n of graph.node ?? []) {
    const y = dims(n.output![0]);
    if (n.opType === 'Conv') {
      const w = dims(n.input![1]); // [Cout, Cin/groups, kH, kW]
      flops += 2 * y.reduce((a, b) => a * b, 1) * w.slice(1).reduce((a, b) => a * b, 1);
    } else if (n.opType === 'Gemm' || n.opType === 'MatMul') {
      const a = dims(n.input![0]);
      const transA = (n.attribute ?? []).find((x) => x.name === 'transA')?.i;
      const k = n.opType === 'Gemm' && Number(transA) === 1 ? a[0] : a[a.length - 1];
      flops += 2 * y.reduce((p, q) => p * q, 1) * k;
    }
  }
  return flops / inputShape[0];
}

/** Bytes of the largest tensor a forward pass makes, per image. */
export async function largestActivation(path: string, inputName: string, inputShape: number[]): Promise<number> {
  const { out } = await probe(path, inputName, inputShape);
  return Math.max(...Object.values(out).map((t) => ((t as ort.Tensor).data as ArrayBufferView).byteLength ?? 0)) / inputShape[0];
}

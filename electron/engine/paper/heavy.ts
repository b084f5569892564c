/**
 * A ResNet-50-sized Φ for timing only: the architecture of He et al. (2016) at 224×224 (batch
 * norm folded into the convolutions, as exported backbones have it), with seeded random
 * weights. Its embeddings mean nothing; its cost per image is what a user with a heavy
 * backbone pays per Φ pass, which is what the few-shot report projects wall time with.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';

import { encodeModel, model, proto, tensor, valueInfo } from '../export/onnx.js';
import type { onnx } from 'onnx-proto';
import { keyedRng } from '../training/stochastic.js';

const INT = proto.AttributeProto.AttributeType.INT;
const INTS = proto.AttributeProto.AttributeType.INTS;

/** The graph, its parameter count and its multiply-accumulates per image. */
export function resnet50Graph(seed = 0): { model: onnx.IModelProto; params: number; macs: number } {
  const nodes: onnx.INodeProto[] = [];
  const inits: onnx.ITensorProto[] = [];
  const rand = keyedRng('resnet50-timing', seed);
  let params = 0, macs = 0, count = 0;
  /** A convolution on an hw×hw input (plus ReLU), returning its output and size. */
  const conv = (x: string, hw: number, cin: number, cout: number, k: number, stride: number, relu: boolean): [string, number] => {
    const name = `conv${count++}`;
    const n = cout * cin * k * k;
    const bound = Math.sqrt(6 / (cin * k * k));
    const w = new Float32Array(n);
    for (let i = 0; i < n; i++) w[i] = (2 * rand() - 1) * bound;
    inits.push(tensor(`${name}.w`, [cout, cin, k, k], w), tensor(`${name}.b`, [cout], new Float32Array(cout)));
    const pad = Math.floor(k / 2);
    nodes.push({
      opType: 'Conv', name, input: [x, `${name}.w`, `${name}.b`], output: [name],
      attribute: [{ name: 'kernel_shape', type: INTS, ints: [k, k] }, { name: 'strides', type: INTS, ints: [stride, stride] }, { name: 'pads', type: INTS, ints: [pad, pad, pad, pad] }],
    });
    params += n + cout;
    const out = Math.floor((hw + 2 * pad - k) / stride) + 1;
    macs += n * out * out;
    if (!relu) return [name, out];
    nodes.push({ opType: 'Relu', name: `${name}.relu`, input: [name], output: [`${name}.relu`] });
    return [`${name}.relu`, out];
  };
  let [x, hw] = conv('image', 224, 3, 64, 7, 2, true);
  nodes.push({ opType: 'MaxPool', name: 'pool', input: [x], output: ['pool'], attribute: [{ name: 'kernel_shape', type: INTS, ints: [3, 3] }, { name: 'strides', type: INTS, ints: [2, 2] }, { name: 'pads', type: INTS, ints: [1, 1, 1, 1] }] });
  x = 'pool';
  hw = Math.floor((hw + 2 - 3) / 2) + 1;
  let cin = 64;
  [[3, 64], [4, 128], [6, 256], [3, 512]].forEach(([blocks, width], stage) => {
    for (let b = 0; b < blocks; b++) {
      const stride = b === 0 && stage > 0 ? 2 : 1;
      const [a] = conv(x, hw, cin, width, 1, 1, true);
      const [c, out] = conv(a, hw, width, width, 3, stride, true);
      const [e] = conv(c, out, width, width * 4, 1, 1, false);
      const skip = b === 0 ? conv(x, hw, cin, width * 4, 1, stride, false)[0] : x;
      const add = `add${count++}`;
      nodes.push({ opType: 'Add', name: add, input: [e, skip], output: [add] }, { opType: 'Relu', name: `${add}.relu`, input: [add], output: [`${add}.relu`] });
      x = `${add}.relu`;
      cin = width * 4;
      hw = out;
    }
  });
  nodes.push(
    { opType: 'GlobalAveragePool', name: 'gap', input: [x], output: ['gap'] },
    { opType: 'Flatten', name: 'embedding', input: ['gap'], output: ['embedding'], attribute: [{ name: 'axis', type: INT, i: 1 }] },
  );
  const m = model({ name: 'resnet50-timing-only', node: nodes, initializer: inits, input: [valueInfo('image', ['N', 3, 224, 224])], output: [valueInfo('embedding', ['N', 2048])] }, { purpose: 'timing only: random weights' });
  return { model: m, params, macs };
}

export interface HeavyTiming {
  what: string;
  params: number;
  gflopsPerImage: number;
  secondsPerImage: number;
  images: number;
  threads: number;
}

/** Seconds per image of the ResNet-50-sized Φ in ONNX Runtime on this machine (batch 16). */
export async function timeHeavyBackbone(threads: number, images = 48): Promise<HeavyTiming> {
  const g = resnet50Graph();
  const dir = mkdtempSync(join(tmpdir(), 'embaug-heavy-'));
  try {
    const file = join(dir, 'resnet50-timing.onnx');
    writeFileSync(file, encodeModel(g.model));
    const s = await ort.InferenceSession.create(file, { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
    const batch = 16;
    const x = new ort.Tensor('float32', new Float32Array(batch * 3 * 224 * 224).fill(0.5), [batch, 3, 224, 224]);
    await s.run({ image: x });
    const t0 = performance.now();
    const runs = Math.max(1, Math.round(images / batch));
    for (let r = 0; r < runs; r++) await s.run({ image: x });
    const seconds = (performance.now() - t0) / 1000;
    await s.release();
    return { what: 'ResNet-50-sized graph at 224×224, random weights (timing only)', params: g.params, gflopsPerImage: (2 * g.macs) / 1e9, secondsPerImage: seconds / (runs * batch), images: runs * batch, threads };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Backbones for timing only, with seeded random weights (batch norm folded into the
 * convolutions, as exported backbones have it): a ResNet-50 at 224×224, and the bundled CIFAR
 * ResNet-18 at any width. Their embeddings mean nothing; their cost per image is what a user
 * with a heavy backbone pays per Φ pass, which is what the few-shot report projects wall time
 * with and what the `eq8` benchmark times end to end.
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

export interface TimingGraph {
  model: onnx.IModelProto;
  params: number;
  /** Multiply-accumulates per image. */
  macs: number;
}

/**
 * Convolutions (batch norm folded in, as exported backbones have it) with seeded random
 * weights, counting parameters and multiply-accumulates as they are added.
 */
class ConvGraph {
  readonly nodes: onnx.INodeProto[] = [];
  private readonly inits: onnx.ITensorProto[] = [];
  private readonly rand: () => number;
  params = 0;
  macs = 0;
  private count = 0;

  constructor(key: string, seed: number) {
    this.rand = keyedRng(key, seed);
  }

  /** A k×k convolution on an hw×hw input (ReLU after it when asked); its output and size. */
  conv(x: string, hw: number, cin: number, cout: number, k: number, stride: number, relu: boolean): [string, number] {
    const name = `conv${this.count++}`;
    const n = cout * cin * k * k;
    const bound = Math.sqrt(6 / (cin * k * k));
    const w = new Float32Array(n);
    for (let i = 0; i < n; i++) w[i] = (2 * this.rand() - 1) * bound;
    this.inits.push(tensor(`${name}.w`, [cout, cin, k, k], w), tensor(`${name}.b`, [cout], new Float32Array(cout)));
    const pad = Math.floor(k / 2);
    this.nodes.push({
      opType: 'Conv', name, input: [x, `${name}.w`, `${name}.b`], output: [name],
      attribute: [{ name: 'kernel_shape', type: INTS, ints: [k, k] }, { name: 'strides', type: INTS, ints: [stride, stride] }, { name: 'pads', type: INTS, ints: [pad, pad, pad, pad] }],
    });
    this.params += n + cout;
    const out = Math.floor((hw + 2 * pad - k) / stride) + 1;
    this.macs += n * out * out;
    return relu ? [this.relu(name), out] : [name, out];
  }

  relu(x: string): string {
    this.nodes.push({ opType: 'Relu', name: `${x}.relu`, input: [x], output: [`${x}.relu`] });
    return `${x}.relu`;
  }

  /** ReLU(a + b), the end of a residual block. */
  addRelu(a: string, b: string): string {
    const add = `add${this.count++}`;
    this.nodes.push({ opType: 'Add', name: add, input: [a, b], output: [add] });
    return this.relu(add);
  }

  /** Global average pooling into the `embedding` output, and the finished model. */
  finish(x: string, name: string, size: number, dim: number): TimingGraph {
    this.nodes.push(
      { opType: 'GlobalAveragePool', name: 'gap', input: [x], output: ['gap'] },
      { opType: 'Flatten', name: 'embedding', input: ['gap'], output: ['embedding'], attribute: [{ name: 'axis', type: INT, i: 1 }] },
    );
    const graph = { name, node: this.nodes, initializer: this.inits, input: [valueInfo('image', ['N', 3, size, size])], output: [valueInfo('embedding', ['N', dim])] };
    return { model: model(graph, { purpose: 'timing only: random weights' }), params: this.params, macs: this.macs };
  }
}

/** ResNet-50 (He et al., 2016) at 224×224. */
export function resnet50Graph(seed = 0): TimingGraph {
  const g = new ConvGraph('resnet50-timing', seed);
  let [x, hw] = g.conv('image', 224, 3, 64, 7, 2, true);
  g.nodes.push({ opType: 'MaxPool', name: 'pool', input: [x], output: ['pool'], attribute: [{ name: 'kernel_shape', type: INTS, ints: [3, 3] }, { name: 'strides', type: INTS, ints: [2, 2] }, { name: 'pads', type: INTS, ints: [1, 1, 1, 1] }] });
  x = 'pool';
  hw = Math.floor((hw + 2 - 3) / 2) + 1;
  let cin = 64;
  [[3, 64], [4, 128], [6, 256], [3, 512]].forEach(([blocks, width], stage) => {
    for (let b = 0; b < blocks; b++) {
      const stride = b === 0 && stage > 0 ? 2 : 1;
      const [a] = g.conv(x, hw, cin, width, 1, 1, true);
      const [c, out] = g.conv(a, hw, width, width, 3, stride, true);
      const [e] = g.conv(c, out, width, width * 4, 1, 1, false);
      x = g.addRelu(e, b === 0 ? g.conv(x, hw, cin, width * 4, 1, stride, false)[0] : x);
      cin = width * 4;
      hw = out;
    }
  });
  return g.finish(x, 'resnet50-timing-only', 224, 2048);
}

/**
 * The CIFAR ResNet-18 of the bundled backbones (../shared/models/nets.py: 3×3 stem, basic
 * blocks, 32×32 input) at any width; width 64 is the network at its published size (11 M
 * parameters), which the bundled ones shrink to 16 for this CPU.
 */
export function cifarResnet18Graph(width: number, seed = 0): TimingGraph {
  const g = new ConvGraph(`resnet18-w${width}-timing`, seed);
  let [x, hw] = g.conv('image', 32, 3, width, 3, 1, true);
  let cin = width;
  [width, 2 * width, 4 * width, 8 * width].forEach((cout, stage) => {
    for (let b = 0; b < 2; b++) {
      const stride = b === 0 && stage > 0 ? 2 : 1;
      const [a, out] = g.conv(x, hw, cin, cout, 3, stride, true);
      const [c] = g.conv(a, out, cout, cout, 3, 1, false);
      x = g.addRelu(c, stride !== 1 || cin !== cout ? g.conv(x, hw, cin, cout, 1, stride, false)[0] : x);
      cin = cout;
      hw = out;
    }
  });
  return g.finish(x, `resnet18-w${width}-timing-only`, 32, cin);
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

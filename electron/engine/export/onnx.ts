/**
 * Building ONNX graphs with onnx-proto (protobufjs): MLP heads as Gemm/Relu/Softmax nodes, and
 * a backbone and a head merged into one graph.
 */
import pkg from 'onnx-proto';
import type { onnx } from 'onnx-proto';

// onnx-proto is CommonJS: its namespace comes through the default export.
export const proto = pkg.onnx;

const FLOAT = proto.TensorProto.DataType.FLOAT;

export function decodeModel(bytes: Uint8Array): onnx.ModelProto {
  return proto.ModelProto.decode(bytes);
}

export function encodeModel(m: onnx.IModelProto): Uint8Array {
  return proto.ModelProto.encode(m).finish();
}

export function tensor(name: string, dims: number[], data: Float32Array): onnx.ITensorProto {
  return { name, dims, dataType: FLOAT, rawData: new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)) };
}

export function valueInfo(name: string, dims: (number | string)[]): onnx.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  };
}

export interface MlpGraph {
  nodes: onnx.INodeProto[];
  initializers: onnx.ITensorProto[];
  /** Name of the output tensor (the last layer's pre-activation). */
  output: string;
}

/**
 * Nodes for an MLP with weights [out, in] row-major (Gemm with transB = 1 takes them as
 * stored), ReLU between layers, and `skip` + f(input) when a skip tensor is named (the
 * residual form: the input itself; a conditional Ω: the embedding part of its input).
 */
export function mlpNodes(prefix: string, input: string, sizes: number[], params: Float32Array[], skip: string | null): MlpGraph {
  const nodes: onnx.INodeProto[] = [];
  const initializers: onnx.ITensorProto[] = [];
  let x = input;
  const layers = sizes.length - 1;
  for (let l = 0; l < layers; l++) {
    const w = `${prefix}fc${l}.weight`, b = `${prefix}fc${l}.bias`, y = `${prefix}fc${l}`;
    initializers.push(tensor(w, [sizes[l + 1], sizes[l]], params[2 * l]), tensor(b, [sizes[l + 1]], params[2 * l + 1]));
    nodes.push({ opType: 'Gemm', name: y, input: [x, w, b], output: [y], attribute: [{ name: 'transB', type: proto.AttributeProto.AttributeType.INT, i: 1 }] });
    x = y;
    if (l + 1 < layers) {
      nodes.push({ opType: 'Relu', name: `${y}.relu`, input: [y], output: [`${y}.relu`] });
      x = `${y}.relu`;
    }
  }
  if (skip) {
    nodes.push({ opType: 'Add', name: `${prefix}residual`, input: [skip, x], output: [`${prefix}residual`] });
    x = `${prefix}residual`;
  }
  return { nodes, initializers, output: x };
}

function int64s(name: string, values: number[]): onnx.ITensorProto {
  return { name, dims: [values.length], dataType: proto.TensorProto.DataType.INT64, int64Data: values };
}

/**
 * The input of a conditional Ω, [embedding, e(θ)]: θ itself, or with the Fourier features
 * the engine computes (per θ component: θ, sin πθ, cos πθ, sin 2πθ, cos 2πθ, in that order).
 */
export function conditionalInputNodes(embedding: string, theta: string, thetaDim: number, fourier: boolean): MlpGraph {
  const nodes: onnx.INodeProto[] = [];
  const initializers: onnx.ITensorProto[] = [];
  let enc = theta;
  if (fourier) {
    initializers.push(tensor('theta.pi', [1], Float32Array.of(Math.PI)), tensor('theta.2pi', [1], Float32Array.of(2 * Math.PI)), int64s('theta.column', [0, thetaDim, 1]), int64s('theta.flat', [0, 5 * thetaDim]));
    nodes.push({ opType: 'Reshape', name: 'theta.t', input: [theta, 'theta.column'], output: ['theta.t'] });
    const parts = ['theta.t'];
    for (const [k, c] of [['1', 'theta.pi'], ['2', 'theta.2pi']]) {
      nodes.push({ opType: 'Mul', name: `theta.a${k}`, input: ['theta.t', c], output: [`theta.a${k}`] });
      for (const f of ['Sin', 'Cos']) {
        nodes.push({ opType: f, name: `theta.${f.toLowerCase()}${k}`, input: [`theta.a${k}`], output: [`theta.${f.toLowerCase()}${k}`] });
        parts.push(`theta.${f.toLowerCase()}${k}`);
      }
    }
    nodes.push({ opType: 'Concat', name: 'theta.features', input: parts, output: ['theta.features'], attribute: [{ name: 'axis', type: proto.AttributeProto.AttributeType.INT, i: 2 }] });
    nodes.push({ opType: 'Reshape', name: 'theta.encoded', input: ['theta.features', 'theta.flat'], output: ['theta.encoded'] });
    enc = 'theta.encoded';
  }
  nodes.push({ opType: 'Concat', name: 'omega.input', input: [embedding, enc], output: ['omega.input'], attribute: [{ name: 'axis', type: proto.AttributeProto.AttributeType.INT, i: 1 }] });
  return { nodes, initializers, output: 'omega.input' };
}

export function metadata(props: Record<string, unknown>): onnx.IStringStringEntryProto[] {
  return Object.entries(props).map(([key, v]) => ({ key, value: typeof v === 'string' ? v : JSON.stringify(v) }));
}

export function model(graph: onnx.IGraphProto, props: Record<string, unknown>, opset = 13): onnx.IModelProto {
  return { irVersion: 7, producerName: 'embaug', producerVersion: '0.1', opsetImport: [{ domain: '', version: opset }], graph, metadataProps: metadata(props) };
}

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
 * stored), ReLU between layers, and z + f(z) when residual.
 */
export function mlpNodes(prefix: string, input: string, sizes: number[], params: Float32Array[], residual: boolean): MlpGraph {
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
  if (residual) {
    nodes.push({ opType: 'Add', name: `${prefix}residual`, input: [input, x], output: [`${prefix}residual`] });
    x = `${prefix}residual`;
  }
  return { nodes, initializers, output: x };
}

export function metadata(props: Record<string, unknown>): onnx.IStringStringEntryProto[] {
  return Object.entries(props).map(([key, v]) => ({ key, value: typeof v === 'string' ? v : JSON.stringify(v) }));
}

export function model(graph: onnx.IGraphProto, props: Record<string, unknown>, opset = 13): onnx.IModelProto {
  return { irVersion: 7, producerName: 'embaug', producerVersion: '0.1', opsetImport: [{ domain: '', version: opset }], graph, metadataProps: metadata(props) };
}

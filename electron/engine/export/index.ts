export * from './export.js';
export { decodeModel, encodeModel } from './onnx.js';
export { decodeSafetensors, encodeSafetensors } from './safetensors.js';

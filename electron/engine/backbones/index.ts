export * from './flops.js';
export * from './manifest.js';
export { onnxThreads, setOnnxIdle, type OnnxLanes } from './onnx-thread.js';
export * from './registry.js';
export * from './truncate.js';

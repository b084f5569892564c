/** The compute addon's typed, validated surface. */
export { ABI_VERSION, loadNative, type BackendInfo, type EpochStats } from './binding.js';
export * from './backends.js';
export * from './images.js';
export * from './mlp.js';
export * from './similarity.js';
export * from './stats.js';

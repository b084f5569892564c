export * from './flops.js';
export * from './manifest.js';
export * from './registry.js';
export * from './truncate.js';

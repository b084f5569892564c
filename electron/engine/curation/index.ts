export * from './duplicates.js';
export * from './labels.js';
export * from './outliers.js';
export * from './neighbours.js';

export * from './progress.js';
export * from './independent.js';

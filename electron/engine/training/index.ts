export * from './head.js';
export * from './omega.js';
export * from './stats.js';
export * from './stochastic.js';
export * from './conditional.js';
export * from './composite.js';
export * from './evaluate.js';

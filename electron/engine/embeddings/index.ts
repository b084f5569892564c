export * from './cache.js';
export * from './extract.js';

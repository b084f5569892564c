export * from './cache.js';
export * from './extract.js';
export * from './parquet.js';

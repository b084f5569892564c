export * from './extract.js';
export * from './grid.js';
export * from './merge.js';
export * from './shard.js';
export * from './slurm.js';

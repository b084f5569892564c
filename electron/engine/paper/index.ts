export * from './eq8.js';
export * from './protocols.js';
export * from './report.js';
export * from './reproduce.js';
export * from './shape.js';

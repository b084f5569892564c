export * from './report.js';
export * from './study.js';
export * from './advise.js';

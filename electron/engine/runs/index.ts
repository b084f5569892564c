export * from './store.js';
export * from './mlflow.js';
export * from './transfer.js';

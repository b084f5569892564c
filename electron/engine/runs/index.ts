export * from './store.js';
export * from './mlflow.js';

// Starts a job worker from the TypeScript sources (a checkout run through tsx): loader hooks
// of the main thread do not reach worker threads, so the worker registers tsx itself.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');

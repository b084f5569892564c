// Starts the ONNX Runtime thread from the TypeScript sources (a checkout run through tsx):
// loader hooks of the main thread do not reach worker threads, so it registers tsx itself.
import { register } from 'tsx/esm/api';

register();
await import('./onnx-worker.ts');

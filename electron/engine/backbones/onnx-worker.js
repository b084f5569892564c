// @ts-check
/**
 * One ONNX Runtime session on a thread of its own. onnxruntime-node's `run` computes
 * synchronously on the calling thread, so in the main thread it held up the reads, decoding
 * and cache writes of the next batch; here they go on beside it. Plain JavaScript: a worker
 * thread gets none of the main thread's loader hooks, and through tsx it took four times as
 * long to start (175 against 45 ms, measured), a delay every extraction's first batch waited.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';

/** @type {import('./onnx-thread.js').OnnxWorkerData} */
const { path, threads } = workerData;
const port = /** @type {import('node:worker_threads').MessagePort} */ (parentPort);
const ready = ort.InferenceSession.create(path, {
  executionProviders: ['cpu'],
  intraOpNumThreads: threads,
  interOpNumThreads: 1,
  graphOptimizationLevel: 'all',
});

// Loaded or not, the thread may stop now without interrupting the load (see OnnxThread).
ready.then(
  () => port.postMessage({ loaded: true }),
  () => port.postMessage({ loaded: true }),
);

port.on('message', async (/** @type {import('./onnx-thread.js').OnnxRequest} */ m) => {
  try {
    const sess = await ready;
    const out = await sess.run({ [m.inputName]: new ort.Tensor('float32', m.input, m.dims) }, [m.output]);
    // The runtime's own buffer cannot be handed over; a copy of one batch's outputs can.
    const data = Float32Array.from(/** @type {Float32Array} */ (out[m.output].data));
    // The input goes back too, for the caller to fill again (see OnnxThread.run's recycle).
    const whole = m.input.byteOffset === 0 && m.input.byteLength === m.input.buffer.byteLength;
    port.postMessage({ id: m.id, data, input: whole ? m.input : undefined }, whole ? [data.buffer, /** @type {ArrayBuffer} */ (m.input.buffer)] : [data.buffer]);
  } catch (err) {
    port.postMessage({ id: m.id, error: /** @type {Error} */ (err).message });
  }
});

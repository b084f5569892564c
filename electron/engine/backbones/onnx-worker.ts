/**
 * One ONNX Runtime session on a thread of its own. onnxruntime-node's `run` computes
 * synchronously on the calling thread, so in the main thread it held up the reads, decoding
 * and cache writes of the next batch; here they go on beside it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';

import type { OnnxReply, OnnxRequest, OnnxWorkerData } from './onnx-thread.js';

const { path, threads } = workerData as OnnxWorkerData;
const port = parentPort!;
const ready = ort.InferenceSession.create(path, {
  executionProviders: ['cpu'],
  intraOpNumThreads: threads,
  interOpNumThreads: 1,
  graphOptimizationLevel: 'all',
});

port.on('message', async (m: OnnxRequest) => {
  let reply: OnnxReply;
  try {
    const sess = await ready;
    const out = await sess.run({ [m.inputName]: new ort.Tensor('float32', m.input, m.dims) }, [m.output]);
    // The runtime's own buffer cannot be handed over; a copy of one batch's outputs can.
    const data = Float32Array.from((out[m.output] as ort.Tensor).data as Float32Array);
    reply = { id: m.id, data };
    port.postMessage(reply, [data.buffer]);
  } catch (err) {
    reply = { id: m.id, error: (err as Error).message };
    port.postMessage(reply);
  }
});

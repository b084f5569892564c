/** A job worker thread: opens its own database connection and runs one task. */
import { parentPort, workerData } from 'node:worker_threads';

import { openDb } from '../engine/db.js';
import { errorInfo } from '../engine/errors.js';
import { setThreads } from '../engine/native/index.js';
import type { JobKind } from './args.js';
import { TASKS } from './tasks.js';

export interface WorkerInput {
  kind: JobKind;
  args: unknown;
  dbPath: string;
  /** Cores for ONNX Runtime and decoding. */
  threads: number;
  /** OpenBLAS's threads: one for a head (see JobRunner.start), else `threads`. */
  blasThreads: number;
  settings: { modelsDir: string; dataDir: string; outDir: string };
}

export type WorkerMessage =
  | { type: 'progress'; progress: import('../engine/jobs/index.js').Progress }
  | { type: 'epoch'; series: string; stats: import('../engine/native/index.js').EpochStats }
  | { type: 'log'; line: string }
  | { type: 'done'; result: unknown }
  | { type: 'error'; error: { code: string; message: string } };

const input = workerData as WorkerInput;
const port = parentPort!;
const ac = new AbortController();
port.on('message', (m: { type: string }) => m.type === 'cancel' && ac.abort());
const send = (m: WorkerMessage) => port.postMessage(m);

try {
  setThreads(input.blasThreads);
  const db = openDb(input.dbPath);
  try {
    const result = await (TASKS[input.kind] as (c: unknown, a: unknown) => Promise<unknown>)(
      {
        db, threads: input.threads, signal: ac.signal, settings: input.settings,
        onProgress: (progress: unknown) => send({ type: 'progress', progress } as WorkerMessage),
        onEpoch: (series: string, stats: unknown) => send({ type: 'epoch', series, stats } as WorkerMessage),
        log: (line: string) => send({ type: 'log', line }),
      },
      input.args,
    );
    send({ type: 'done', result: JSON.parse(JSON.stringify(result ?? null)) });
  } finally {
    db.close();
  }
} catch (err) {
  send({ type: 'error', error: errorInfo(err) });
}

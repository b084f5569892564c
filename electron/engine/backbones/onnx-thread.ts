/** Φ on worker threads: a pool per (model file, threads); a thread stops after a while idle. */
import { cpus } from 'node:os';
import { Worker } from 'node:worker_threads';

import { EmbaugError } from '../errors.js';

export interface OnnxWorkerData {
  path: string;
  threads: number;
}
export interface OnnxRequest {
  id: number;
  inputName: string;
  input: Float32Array;
  dims: number[];
  output: string;
}
export type OnnxReply = { id: number; data: Float32Array; input?: Float32Array } | { id: number; error: string } | { loaded: true };

// Plain JavaScript beside this file, in the sources and in the build alike.
const ENTRY = new URL('./onnx-worker.js', import.meta.url);

// Each thread holds its model's session and ONNX Runtime's memory arena (20–40 MB at the
// bundled backbones' batches: six such threads took the process from 102 to 270 MB, and it fell
// to 189 when they stopped): a reproduction touches six backbones and the desktop app lives on
// after it, so a thread with no work for this long stops and frees them. Long enough that the
// batches of one extraction, and the epochs of a head drawing pixel views, never wait for a
// thread to start.
let idleMs = 10_000;

/** How long a Φ thread waits for work before it stops (milliseconds); returns the previous value. */
export function setOnnxIdle(ms: number): number {
  const was = idleMs;
  idleMs = ms;
  return was;
}

class OnnxThread {
  #worker: Worker;
  #next = 0;
  #pending = new Map<number, { resolve: (v: Float32Array) => void; reject: (e: Error) => void; recycle?: (input: Float32Array) => void }>();
  #idle: NodeJS.Timeout | undefined;
  #leases = 0;
  #onExit: () => void;
  /** Why the thread is gone, once it is: a caller holding it gets that, not a run that never ends. */
  #dead: string | null = null;
  /** Whether its session has finished loading (or failed to). */
  #loaded = false;

  constructor(readonly path: string, readonly threads: number, onExit: () => void) {
    this.#onExit = onExit;
    // None of the parent's Node flags: the thread needs none, and some (--input-type) stop it.
    this.#worker = new Worker(ENTRY, { workerData: { path, threads } satisfies OnnxWorkerData, execArgv: [] });
    // An idle thread must not keep the process alive; a pending run does, and so does a session
    // still loading: a thread stopped inside onnxruntime-node's model load (the process ending
    // after a short extraction that needed only the other thread) aborted the whole process,
    // about one short extraction in twenty ("terminate called after throwing an instance of
    // 'Napi::Error'": its binding cannot throw into a thread that is stopping).
    this.#worker.on('message', (r: OnnxReply) => {
      if ('loaded' in r) {
        this.#loaded = true;
        if (this.#pending.size === 0) this.#worker.unref();
        return;
      }
      const p = this.#pending.get(r.id);
      if (!p) return;
      this.#pending.delete(r.id);
      this.#idleWhenFree();
      if ('error' in r) p.reject(new EmbaugError('E_MODEL', `ONNX Runtime failed on ${this.path}: ${r.error}`));
      else {
        if (r.input) p.recycle?.(r.input);
        p.resolve(r.data);
      }
    });
    const fail = (why: string) => {
      this.#dead = `the ONNX Runtime thread for ${this.path} ${why}`;
      onExit();
      for (const p of this.#pending.values()) p.reject(new EmbaugError('E_WORKER', this.#dead));
      this.#pending.clear();
    };
    this.#worker.on('error', (err) => fail(`failed: ${err.message}`));
    this.#worker.on('exit', (code) => fail(`stopped (exit code ${code})`));
  }

  get pending(): number {
    return this.#pending.size;
  }

  get leases(): number {
    return this.#leases;
  }

  lease(): void {
    this.#leases++;
    clearTimeout(this.#idle);
  }

  release(): void {
    this.#leases--;
    this.#idleWhenFree();
  }

  /** With no run pending it keeps no program alive; held by no caller too, it stops after a while. */
  #idleWhenFree(): void {
    if (this.#pending.size > 0) return;
    if (this.#loaded) this.#worker.unref();
    if (this.#leases > 0) return;
    // Out of the pool first, so that no run is handed to a thread on its way out.
    this.#idle = setTimeout(() => {
      this.#onExit();
      void this.#worker.terminate();
    }, idleMs).unref();
  }

  /**
   * The named output of a batch. The input's memory goes to the thread: do not reuse it, but
   * `recycle` is handed it back, whole, once the run is done.
   */
  run(inputName: string, input: Float32Array, dims: number[], output: string, recycle?: (input: Float32Array) => void): Promise<Float32Array> {
    if (this.#dead) return Promise.reject(new EmbaugError('E_WORKER', this.#dead));
    const id = this.#next++;
    clearTimeout(this.#idle);
    return new Promise<Float32Array>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, recycle });
      this.#worker.ref();
      const req: OnnxRequest = { id, inputName, input, dims, output };
      const whole = input.byteOffset === 0 && input.byteLength === input.buffer.byteLength;
      this.#worker.postMessage(req, whole ? [input.buffer as ArrayBuffer] : []);
    });
  }
}

/** Threads of a pool held by one caller for a stream of batches (see OnnxPool.lease). */
export interface OnnxLanes {
  /** Threads held: the caller keeps two batches queued on each. */
  readonly size: number;
  /** Runs a batch on the held thread with the fewest pending (see OnnxThread.run). */
  run(inputName: string, input: Float32Array, dims: number[], output: string, recycle?: (input: Float32Array) => void): Promise<Float32Array>;
  /** Gives the threads back; they stop after a while idle, as any. */
  release(): void;
}

/**
 * A model's ONNX Runtime threads at one intra-op thread count: work goes to an idle one, and
 * while all are busy a new one starts, up to as many as the cores hold (two trainings that run
 * Φ at one thread each then use a core each instead of taking turns). Outputs do not depend on
 * which one runs a batch.
 */
class OnnxPool {
  #threads: OnnxThread[] = [];

  constructor(readonly path: string, readonly threads: number, readonly max: number) {}

  /** Threads started and running. */
  get size(): number {
    return this.#threads.length;
  }

  #start(): OnnxThread {
    const made: OnnxThread = new OnnxThread(this.path, this.threads, () => (this.#threads = this.#threads.filter((x) => x !== made)));
    this.#threads.push(made);
    return made;
  }

  run(inputName: string, input: Float32Array, dims: number[], output: string, recycle?: (input: Float32Array) => void): Promise<Float32Array> {
    let t = this.#threads.find((x) => x.pending === 0);
    if (!t && this.#threads.length < this.max) t = this.#start();
    t ??= this.#threads.reduce((a, b) => (b.pending < a.pending ? b : a));
    return t.run(inputName, input, dims, output, recycle);
  }

  /**
   * Up to `n` threads (no more than the pool may start) for one caller's stream of batches:
   * threads no one holds first, new ones while the pool has room, then the least held. A caller
   * that queues a second batch on a thread before the first is done keeps it busy while the
   * main thread is elsewhere (reading, writing), and holding keeps a caller of one core on one
   * thread however many batches it queues. Held threads do not stop while held.
   */
  lease(n: number): OnnxLanes {
    const held: OnnxThread[] = [];
    while (held.length < Math.min(n, this.max)) {
      const free = this.#threads.filter((x) => !held.includes(x)).sort((a, b) => a.leases - b.leases || a.pending - b.pending);
      const t = free.length > 0 && (free[0].leases === 0 || this.#threads.length >= this.max) ? free[0] : this.#start();
      t.lease();
      held.push(t);
    }
    let released = false;
    return {
      size: held.length,
      run: (...args) => held.reduce((a, b) => (b.pending < a.pending ? b : a)).run(...args),
      release: () => {
        if (!released) for (const t of held) t.release();
        released = true;
      },
    };
  }
}

const pools = new Map<string, OnnxPool>();

/** The ONNX Runtime threads of a model file at `threads` intra-op threads each, started on use. */
export function onnxThreads(path: string, threads: number): OnnxPool {
  const key = `${path}#${threads}`;
  let p = pools.get(key);
  if (!p) {
    p = new OnnxPool(path, threads, Math.max(1, Math.floor(cpus().length / threads)));
    pools.set(key, p);
  }
  return p;
}

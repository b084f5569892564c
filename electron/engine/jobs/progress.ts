/** Progress of long work (done/total, rate, ETA) and cooperative cancellation. */
import { EmbaugError } from '../errors.js';

export interface Progress {
  stage: string;
  done: number;
  total: number;
  unit: string;
  /** Units per second over the whole stage so far. */
  rate: number;
  etaSeconds: number | null;
}

export type OnProgress = (p: Progress) => void;

export class ProgressMeter {
  #t0 = performance.now();
  #last = 0;
  done = 0;

  constructor(
    readonly stage: string,
    readonly total: number,
    readonly unit: string,
    readonly on?: OnProgress,
    readonly minIntervalMs = 250,
  ) {
    this.#emit();
  }

  tick(n = 1): void {
    this.done += n;
    const now = performance.now();
    if (now - this.#last >= this.minIntervalMs || this.done >= this.total) this.#emit(now);
  }

  /**
   * Work of `size` units done by a callee that reports its own progress in the same units:
   * its events move this meter instead of being shown, and `end` counts what it did not
   * report (an extraction reports only the images it had to run, not those found cached).
   */
  part(size: number): { onProgress: OnProgress; end: () => void } {
    let seen = 0;
    return {
      onProgress: (p) => {
        const d = Math.min(p.done, size) - seen;
        if (d > 0) {
          seen += d;
          this.tick(d);
        }
      },
      end: () => {
        this.tick(size - seen);
        seen = size;
      },
    };
  }

  #emit(now = performance.now()): void {
    this.#last = now;
    const seconds = (now - this.#t0) / 1000;
    const rate = seconds > 0 ? this.done / seconds : 0;
    const left = this.total - this.done;
    this.on?.({
      stage: this.stage,
      done: this.done,
      total: this.total,
      unit: this.unit,
      rate,
      etaSeconds: rate > 0 ? left / rate : null,
    });
  }
}

export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new EmbaugError('E_CANCELLED', `${what} was cancelled`);
}

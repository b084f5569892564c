/** The compute backends (CPU, CUDA), their threads, and the FLOP-rate probes for benchmarks. */
import { EmbaugError } from '../errors.js';
import * as v from '../validate.js';
import { guard, type BackendInfo } from './binding.js';

export function listBackends(): BackendInfo[] {
  return guard((b) => b.listBackends());
}

/** Threads for OpenBLAS and the CPU kernels; 0 means one per core. */
export function setThreads(n: number): void {
  const t = v.int('threads', n, 0, 1024);
  guard((b) => b.setThreads(t));
}

export function getThreads(): number {
  return guard((b) => b.getThreads());
}

/** Measured FMA throughput of this CPU (GFLOP/s), for benchmarks. */
export function peakGflops(threads: number, seconds = 1): number {
  const t = v.int('threads', threads, 1, 1024), s = v.num('seconds', seconds, 0.01, 60);
  return guard((b) => b.peakGflops(t, s));
}

/** Seconds for `reps` GEMMs C[m,n] = op(A)·op(B), K = k, on a backend, for benchmarks: row-major, B transposed (x·Wᵀ, a forward layer) unless `op` says otherwise. */
export function timeGemm(backend: BackendName, m: number, n: number, k: number, reps: number, op: { ta?: boolean; tb?: boolean } = {}): number {
  const be = requireBackend(backend), r = v.int('reps', reps, 1);
  return guard((b) => b.timeGemm(be, m, n, k, r, op.ta ?? false, op.tb ?? true));
}

export type BackendName = 'cpu' | 'cuda';

export function requireBackend(name: string): BackendName {
  const b = v.oneOf('backend', name, ['cpu', 'cuda'] as const);
  const info = listBackends().find((x) => x.name === b);
  if (!info?.available) throw new EmbaugError('E_BACKEND_UNAVAILABLE', `Backend "${b}" is unavailable: ${info?.reason}`);
  return b;
}


/** MlpModel: a dense MLP (Linear+ReLU layers, linear output) trained and run on a compute backend. */
import { EmbaugError } from '../errors.js';
import * as v from '../validate.js';
import { requireBackend, type BackendName } from './backends.js';
import { guard, guardAsync, type EpochStats, type NativeMlp } from './binding.js';


export interface OptimizerConfig {
  kind: 'sgd' | 'adam';
  lr: number;
  momentum?: number;
  weightDecay?: number;
  nesterov?: boolean;
  beta1?: number;
  beta2?: number;
  eps?: number;
  schedule?: 'constant' | 'cosine';
}

/** A learning rate of 0 passes every check and learns nothing: a run's worth of time for an untrained model. */
function positiveLr(lr: number): number {
  if (lr === 0) throw new RangeError('optimizer.lr must be above 0 (at 0 nothing is learned), got 0');
  return lr;
}

/**
 * A training's settings, checked: what `train` checks besides its data, so that a caller with
 * data still to extract (a head, an Ω) can refuse bad settings before that work.
 */
export function trainSettings(o: Pick<TrainOptions, 'batch' | 'epochs' | 'seed' | 'firstEpoch' | 'totalEpochs' | 'mixupAlpha' | 'isdaLambda' | 'optimizer'>) {
  const opt = o.optimizer;
  if (typeof opt !== 'object' || opt === null) throw new TypeError(`optimizer must be an object such as {kind: 'sgd', lr: 0.01}, got ${String(opt)}`);
  return {
    batch: v.int('batch', o.batch, 1, 1 << 16),
    epochs: v.int('epochs', o.epochs, 1, 100000),
    seed: v.int('seed', o.seed, 0, 2 ** 52),
    firstEpoch: v.int('firstEpoch', o.firstEpoch ?? 0, 0),
    totalEpochs: v.int('totalEpochs', o.totalEpochs ?? 0, 0),
    mixupAlpha: v.num('mixupAlpha', o.mixupAlpha ?? 0, 0, 100),
    isdaLambda: v.num('isdaLambda', o.isdaLambda ?? 0, 0, 100),
    optimizer: {
      kind: v.oneOf('optimizer.kind', opt.kind, ['sgd', 'adam'] as const),
      lr: positiveLr(v.num('optimizer.lr', opt.lr, 0, 100)),
      momentum: v.num('optimizer.momentum', opt.momentum ?? 0.9, 0, 1),
      weightDecay: v.num('optimizer.weightDecay', opt.weightDecay ?? 0, 0, 1),
      nesterov: opt.nesterov ?? false,
      beta1: v.num('optimizer.beta1', opt.beta1 ?? 0.9, 0, 1),
      beta2: v.num('optimizer.beta2', opt.beta2 ?? 0.999, 0, 1),
      eps: v.num('optimizer.eps', opt.eps ?? 1e-8, 0, 1),
      schedule: v.oneOf('optimizer.schedule', opt.schedule ?? 'constant', ['constant', 'cosine'] as const),
    },
  };
}

export interface Supervised {
  x: Float32Array;
  labels?: Int32Array;
  targets?: Float32Array;
}

export interface TrainOptions extends Supervised {
  /** Rows of x are `views` blocks of n samples; each epoch picks one view per sample at random. */
  views?: number;
  val?: Supervised;
  batch: number;
  epochs: number;
  seed: number;
  firstEpoch?: number;
  totalEpochs?: number;
  /** Mixup of the inputs within each batch at λ ~ Beta(α, α); 0 = off. Classification only. */
  mixupAlpha?: number;
  /**
   * ISDA's λ0 (Wang et al., 2019): the loss is the closed-form upper bound of the expected
   * cross-entropy under class-conditional Gaussian noise on the last layer's input, with the
   * class covariances estimated online and λ ramped from 0 to λ0; 0 = off. Classification only.
   */
  isdaLambda?: number;
  optimizer: OptimizerConfig;
  onEpoch?: (s: EpochStats) => void;
  signal?: AbortSignal;
}

export interface MlpOptions {
  backend?: BackendName;
  seed?: number;
  /** Ω(z) = z + f(z) with f's last layer initialised at zero: starts as the identity. */
  residual?: boolean;
}

/** Adam's state for `adamStepVia`, kept by the caller: float32 weights and moments, layer by layer. */
export interface AdamState {
  params: Float32Array[];
  m: Float32Array[];
  v: Float32Array[];
}

/**
 * Parameters of one MLP at most: with gradients and two optimiser moments that is 4 GiB.
 * Ω and Ψ of a 2048-d embedding have about 8.4 M; anything near the cap is a mistake.
 */
export const MAX_PARAMS = 2 ** 28;

/** A dense MLP on a compute backend: Linear+ReLU layers and a linear output. */
export class MlpModel {
  readonly sizes: readonly number[];
  readonly residual: boolean;
  #m: NativeMlp;

  constructor(sizes: number[], opts: MlpOptions = {}) {
    if (!Array.isArray(sizes) || sizes.length < 2)
      throw new TypeError(`sizes must list at least an input and an output size, got ${JSON.stringify(sizes)}`);
    sizes.forEach((s, i) => v.int(`sizes[${i}]`, s, 1, 1 << 20));
    const params = sizes.slice(1).reduce((sum, out, l) => sum + out * (sizes[l] + 1), 0);
    if (params > MAX_PARAMS)
      throw new RangeError(
        `an MLP of sizes [${sizes.join(', ')}] has ${params.toExponential(2)} parameters, over the limit of ${MAX_PARAMS.toExponential(2)} ` +
          '(weights, gradients and optimiser state take 16 bytes each): use smaller layers',
      );
    const residual = opts.residual ?? false;
    if (residual && sizes[0] !== sizes[sizes.length - 1])
      throw new RangeError(`a residual MLP needs equal input and output sizes, got ${sizes[0]} and ${sizes.at(-1)}`);
    const backend = requireBackend(opts.backend ?? 'cpu');
    const seed = v.int('seed', opts.seed ?? 0, 0, 2 ** 52);
    this.sizes = Object.freeze([...sizes]);
    this.residual = residual;
    this.#m = guard((b) => new b.Mlp([...sizes], backend, seed, residual));
  }

  get inDim(): number {
    return this.sizes[0];
  }
  get outDim(): number {
    return this.sizes[this.sizes.length - 1];
  }
  get busy(): boolean {
    return this.#m.busy;
  }
  get disposed(): boolean {
    return this.#m.disposed;
  }
  get backend(): string | null {
    return this.#m.backend;
  }

  #rows(name: string, x: unknown): number {
    const arr = v.typed(name, x, Float32Array);
    if (arr.length === 0 || arr.length % this.inDim !== 0)
      throw new RangeError(`${name} must hold whole rows of ${this.inDim} features, got ${arr.length} values`);
    v.finite(name, arr, this.inDim);
    return arr.length / this.inDim;
  }

  #supervision(prefix: string, s: Supervised, n: number): Int32Array | Float32Array {
    if ((s.labels === undefined) === (s.targets === undefined))
      throw new TypeError(`${prefix}: give exactly one of labels (Int32Array) or targets (Float32Array)`);
    if (s.labels !== undefined)
      return v.labelsInRange(`${prefix}labels`, v.typed(`${prefix}labels`, s.labels, Int32Array, n), this.outDim);
    return v.finite(`${prefix}targets`, v.typed(`${prefix}targets`, s.targets, Float32Array, n * this.outDim), this.outDim);
  }

  /** Outputs (logits or regressed vectors) for rows of x. */
  forward(x: Float32Array): Float32Array {
    const n = this.#rows('x', x);
    return guard(() => this.#m.forward(x, n));
  }

  /** Mean loss and every parameter's gradient on one batch; no update. For checks and tests. */
  gradients(s: Supervised): { loss: number; grads: Float32Array[] } {
    const n = this.#rows('x', s.x);
    const y = this.#supervision('', s, n);
    return guard(() => this.#m.gradients(s.x, n, y));
  }

  /**
   * One Adam step of a loss computed in JavaScript (an energy score, a likelihood), with one
   * forward pass: `targetsOf(out)` turns the batch's outputs into regression targets whose MSE
   * gradient is the wanted one. The step is taken in double precision on `state` (updated in
   * place) as a JavaScript loop over it would take it, with the step size `lr` already
   * bias-corrected, and the model then holds `state.params`. Returns the batch's MSE against
   * the targets, or null when a weight stopped being finite: the model then keeps its
   * weights, and `state` holds the failed step.
   */
  adamStepVia(x: Float32Array, targetsOf: (out: Float32Array) => Float32Array, state: AdamState, lr: number, beta1 = 0.9, beta2 = 0.999, eps = 1e-8): number | null {
    const n = this.#rows('x', x);
    const lens = this.sizes.slice(1).flatMap((out, l) => [out * this.sizes[l], out]);
    for (const k of ['params', 'm', 'v'] as const) {
      const ts = state[k];
      if (!Array.isArray(ts) || ts.length !== lens.length) throw new TypeError(`state.${k} must hold ${lens.length} Float32Arrays, one per weight and bias`);
      ts.forEach((t, i) => v.typed(`state.${k}[${i}]`, t, Float32Array, lens[i]));
    }
    const checked = (out: Float32Array) => v.finite('targets', v.typed('targets', targetsOf(out), Float32Array, out.length), this.outDim);
    return guard(() => this.#m.adamStepVia(x, n, checked, state.params, state.m, state.v, lr, beta1, beta2, eps));
  }

  /**
   * Whole-epoch training off the event loop; resolves with the per-epoch history. On the CPU the
   * arrays are read in place while it trains: they must not be written to before it settles.
   */
  async train(o: TrainOptions): Promise<EpochStats[]> {
    const views = v.int('views', o.views ?? 1, 1, 1024);
    const rows = this.#rows('x', o.x);
    if (rows % views !== 0) throw new RangeError(`x has ${rows} rows, not a multiple of views=${views}`);
    const n = rows / views;
    const y = this.#supervision('', o, n);
    if ((o.mixupAlpha || o.isdaLambda) && !(y instanceof Int32Array)) throw new TypeError(`${o.mixupAlpha ? 'mixup' : 'ISDA'} needs class labels, not regression targets`);
    if (o.mixupAlpha && o.isdaLambda) throw new RangeError('mixup and ISDA are alternatives: give mixupAlpha or isdaLambda, not both');
    let val: { valX: Float32Array; valN: number; valLabels?: Int32Array; valTargets?: Float32Array } | undefined;
    if (o.val) {
      const vn = this.#rows('val.x', o.val.x);
      const vy = this.#supervision('val.', o.val, vn);
      if ((vy instanceof Int32Array) !== (y instanceof Int32Array))
        throw new TypeError('val must be supervised like the training set (both labels or both targets)');
      val = { valX: o.val.x, valN: vn, ...(vy instanceof Int32Array ? { valLabels: vy } : { valTargets: vy }) };
    }
    const settings = trainSettings(o);
    if (this.#m.disposed) throw new EmbaugError('E_DISPOSED', 'this model was disposed: create a new one');
    if (this.#m.busy) throw new EmbaugError('E_BUSY', 'this model is already training: await train() or call cancel()');
    if (o.signal?.aborted) throw new EmbaugError('E_CANCELLED', 'training was cancelled before it started');
    const args = {
      x: o.x,
      views,
      n,
      ...(y instanceof Int32Array ? { labels: y } : { targets: y }),
      ...val,
      ...settings,
    };
    const onAbort = () => this.#m.cancel();
    o.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await guardAsync(() => this.#m.train(args, o.onEpoch));
    } finally {
      o.signal?.removeEventListener('abort', onAbort);
    }
  }

  cancel(): void {
    this.#m.cancel();
  }

  /** Weights and biases, layer by layer: W0 [out×in] row-major, b0, W1, b1, ... */
  getParams(): Float32Array[] {
    return guard(() => this.#m.getParams());
  }

  setParams(params: Float32Array[]): void {
    if (!Array.isArray(params)) throw new TypeError('params must be an array of Float32Array');
    params.forEach((p, i) => v.finite(`params[${i}]`, v.typed(`params[${i}]`, p, Float32Array)));
    guard(() => this.#m.setParams(params));
  }

  dispose(): void {
    guard(() => this.#m.dispose());
  }
}


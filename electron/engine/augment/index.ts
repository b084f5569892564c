export { parseAug, nativeOps, OPS, AUG_KIND } from './spec.js';
export type { AugSpec, AugOpSpec } from './spec.js';

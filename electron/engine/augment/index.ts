export { parseAug, nativeOps, splitAugList, OPS, AUG_KIND } from './spec.js';
export type { AugSpec, AugOpSpec } from './spec.js';
export { THETA_PER_OP, drawTheta, imageIndex, thetaDim, thetaMagnitude } from './theta.js';

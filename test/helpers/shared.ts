/** Locations of the read-only fixtures beside the checkout (../shared), and temp folders. */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { mulberry32 } from '../../electron/engine/random.js';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SHARED = resolve(process.env.EMBAUG_SHARED ?? join(REPO, '..', 'shared'));
export const WDS = join(SHARED, 'datasets', 'cifar10-wds');
export const MODELS = join(SHARED, 'models');

// Every test reads real data from here; without it each would fail with a bare ENOENT.
for (const need of [WDS, MODELS])
  if (!existsSync(need))
    throw new Error(`The test data is missing: ${need} does not exist. The tests read CIFAR-10 shards and the bundled backbones from the shared folder beside the checkout (${SHARED}): clone next to it, or point EMBAUG_SHARED at it.`);

export interface GoldenImage {
  shard: string;
  key: string;
  label: number;
  pixels: Uint8Array;
  embedding: number[];
  logits: number[];
}

export function golden(): { sha256: string; images: GoldenImage[] } {
  const g = JSON.parse(readFileSync(join(MODELS, 'tiny-resnet18-w4.golden.json'), 'utf8'));
  return {
    sha256: g.sha256,
    images: g.images.map((im: Record<string, unknown>) => ({
      ...im,
      pixels: new Uint8Array(Buffer.from(im.pixels_hwc_rgb_uint8_base64 as string, 'base64')),
    })),
  };
}

/** A temp folder removed by the returned function. */
export function tempDir(prefix = 'embaug-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Deterministic pseudo-random numbers for fixtures (mulberry32). */
export const rng = mulberry32;

/**
 * Where things are, as settings rather than paths in code: environment variables first,
 * then the per-user folders of the platform (XDG on Linux, the usual ones on macOS and
 * Windows), then what ships with the workbench.
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

import { packageRoot } from './paths.js';

/** The user's cache folder for embaug (downloads), overridable with EMBAUG_CACHE. */
export function cacheDir(env = process.env, platform = process.platform): string {
  if (env.EMBAUG_CACHE) return resolve(env.EMBAUG_CACHE);
  if (platform === 'darwin') return join(homedir(), 'Library', 'Caches', 'embaug');
  if (platform === 'win32') return join(env.LOCALAPPDATA ?? join(homedir(), 'AppData', 'Local'), 'embaug', 'Cache');
  return join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'embaug');
}

/** Folder with local copies of data sets (cifar10-wds/, cifar-10-batches-bin/, ...): EMBAUG_DATA, else the cache. */
export function defaultDataDir(env = process.env): string {
  return env.EMBAUG_DATA ? resolve(env.EMBAUG_DATA) : join(cacheDir(env), 'data');
}

/** The bundled backbones, unless EMBAUG_MODELS points elsewhere. */
export function defaultModelsDir(env = process.env): string {
  // Packaged apps unpack models/ from the asar archive: ONNX Runtime reads real files.
  return env.EMBAUG_MODELS ? resolve(env.EMBAUG_MODELS) : join(packageRoot(), 'models').replace(`app.asar${'/'}`, 'app.asar.unpacked/');
}

/** The default pixel limit of one image: a bigger header is refused before decoding. */
export const DEFAULT_MAX_PIXELS = 50_000_000;

/**
 * Images whose header declares more pixels than this are refused before anything is
 * allocated for them (a forged 65500×65500 JPEG header would ask for 12.9 GB): EMBAUG_MAX_PIXELS,
 * else 50 megapixels.
 */
export function maxPixels(env = process.env): number {
  const v = env.EMBAUG_MAX_PIXELS;
  if (v === undefined || v === '') return DEFAULT_MAX_PIXELS;
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < 1)
    throw new RangeError(`EMBAUG_MAX_PIXELS must be a whole number of pixels (e.g. 50000000), got "${v}"`);
  return n;
}

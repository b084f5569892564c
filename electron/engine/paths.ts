/**
 * The package root, found by walking up to embaug's package.json: the same answer from the
 * TypeScript sources (electron/engine) and from the build (dist/electron/engine).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

export function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'embaug') return (root = dir);
    const up = dirname(dir);
    if (up === dir) throw new Error(`embaug's package.json was not found above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

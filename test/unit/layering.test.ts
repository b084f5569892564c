/**
 * The layers of STYLE.md, checked on every import: the engine never imports Electron or the
 * front ends; the renderer imports only types from electron/.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { it } from 'node:test';

import { REPO } from '../helpers/shared.js';

function files(dir: string, ext: RegExp): string[] {
  return readdirSync(join(REPO, dir), { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile() && ext.test(d.name))
    .map((d) => join(d.parentPath ?? (d as unknown as { path: string }).path, d.name));
}

const imports = (file: string) => [...readFileSync(file, 'utf8').matchAll(/^\s*import\s+(type\s+)?[^'"]*?from\s+['"]([^'"]+)['"]/gm)].map((m) => ({ type: !!m[1], spec: m[2] }));

it('the engine imports neither electron nor the front ends', () => {
  const engine = join(REPO, 'electron', 'engine');
  const bad = files('electron/engine', /\.ts$/).flatMap((f) =>
    imports(f)
      .filter((i) => i.spec === 'electron' || (i.spec.startsWith('.') && !resolve(dirname(f), i.spec).startsWith(engine)))
      .map((i) => `${relative(REPO, f)} imports ${i.spec}`),
  );
  assert.deepEqual(bad, []);
});

it('the renderer takes only types from electron/', () => {
  const bad = files('renderer/src', /\.(ts|svelte)$/).flatMap((f) =>
    imports(f).filter((i) => i.spec.includes('electron/') && !i.type).map((i) => `${relative(REPO, f)} imports ${i.spec} at run time`),
  );
  assert.deepEqual(bad, []);
});

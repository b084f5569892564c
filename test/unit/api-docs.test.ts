/**
 * docs/api.md documents the engine as its front ends use it: every function, class and constant
 * that the CLI, the IPC handlers, the job runner, web mode or the desktop shell import from
 * electron/engine is named there. Types are left to the signatures that carry them.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { it } from 'node:test';
import { pathToFileURL } from 'node:url';

import { REPO } from '../helpers/shared.js';

const ENGINE = join(REPO, 'electron', 'engine');

function frontEndFiles(dir = join(REPO, 'electron')): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return p === ENGINE ? [] : frontEndFiles(p);
    return /\.(ts|js)$/.test(e.name) ? [p] : [];
  });
}

/** The values front ends import from the engine that `doc` does not name, as `name (module)`. */
async function undocumented(doc: string): Promise<string[]> {
  const missing = new Set<string>();
  for (const file of frontEndFiles()) {
    for (const m of readFileSync(file, 'utf8').matchAll(/import\s+(type\s+)?\{([^}]*)\}\s+from\s+'([^']+)'/g)) {
      const target = resolve(dirname(file), m[3]);
      if (m[1] || !target.startsWith(ENGINE + '/')) continue;
      const mod = (await import(pathToFileURL(target.replace(/\.js$/, '.ts')).href)) as Record<string, unknown>;
      for (const spec of m[2].split(',')) {
        const [name, kind] = [spec.trim().replace(/^type\s+/, '').split(/\s+as\s+/)[0], spec.trim().startsWith('type ') ? 'type' : 'value'];
        if (!name || kind === 'type' || !(name in mod)) continue;
        if (!new RegExp(`\\b${name}\\b`).test(doc)) missing.add(`${name} (${relative(REPO, target)})`);
      }
    }
  }
  return [...missing].sort();
}

const DOC = readFileSync(join(REPO, 'docs', 'api.md'), 'utf8');

it('docs/api.md names every function, class and constant a front end imports from the engine', async () => {
  assert.deepEqual(await undocumented(DOC), []);
});

it('the check finds a value the front ends import that the docs leave out', async () => {
  const found = await undocumented(DOC.replaceAll('listDatasets', 'datasets'));
  assert.deepEqual(found, ['listDatasets (electron/engine/datasets/index.js)']);
});

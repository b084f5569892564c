/**
 * The layers of STYLE.md, enforced by dependency-cruiser's rules (.dependency-cruiser.cjs) on
 * every import, type-only ones included: the engine never imports Electron or a front end;
 * the renderer takes only types from electron/; no import cycle anywhere.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { it } from 'node:test';

import { REPO, tempDir } from '../helpers/shared.js';

const CRUISE = join(REPO, 'node_modules', '.bin', 'depcruise');

function cruise(cwd: string, paths: string[]): { rule: string; from: string; to: string }[] {
  const r = spawnSync(CRUISE, [...paths, '--config', join(REPO, '.dependency-cruiser.cjs'), '--output-type', 'json'], { cwd, encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.ok(r.stdout, r.stderr);
  const out = JSON.parse(r.stdout) as { summary: { violations: { rule: { name: string }; from: string; to: string }[] } };
  return out.summary.violations.map((v) => ({ rule: v.rule.name, from: v.from, to: v.to }));
}

it('the code base keeps its layers and has no import cycle', () => {
  assert.deepEqual(cruise(REPO, ['electron', 'renderer/src']), []);
});

it('the rules catch an engine file importing a front end, a cycle, and code in the renderer', () => {
  const tmp = tempDir();
  try {
    const put = (file: string, text: string) => {
      mkdirSync(dirname(join(tmp.dir, file)), { recursive: true });
      writeFileSync(join(tmp.dir, file), text);
    };
    copyFileSync(join(REPO, 'tsconfig.json'), join(tmp.dir, 'tsconfig.json'));
    put('electron/cli/main.ts', 'export const x = 1;\n');
    put('electron/engine/bad.ts', "import { x } from '../cli/main.js';\nexport const y = x;\n");
    put('electron/engine/a.ts', "import { b } from './b.js';\nexport const a = () => b;\n");
    put('electron/engine/b.ts', "import { a } from './a.js';\nexport const b = () => a;\n");
    put('electron/ipc/contract.ts', 'export const CHANNELS = [];\nexport type T = number;\n');
    put('renderer/src/ok.ts', "import type { T } from '../../electron/ipc/contract.js';\nexport const t: T = 1;\n");
    put('renderer/src/bad.ts', "import { CHANNELS } from '../../electron/ipc/contract.js';\nexport const c = CHANNELS;\n");
    const v = cruise(tmp.dir, ['electron', 'renderer/src']);
    const rules = (name: string) => v.filter((x) => x.rule === name).map((x) => `${x.from} -> ${x.to}`).sort();
    assert.deepEqual(rules('engine-is-headless'), ['electron/engine/bad.ts -> electron/cli/main.ts']);
    assert.ok(rules('no-cycles').some((x) => x.startsWith('electron/engine/a.ts')), JSON.stringify(v));
    assert.deepEqual(rules('renderer-takes-only-types'), ['renderer/src/bad.ts -> electron/ipc/contract.ts']);
  } finally {
    tmp.cleanup();
  }
});

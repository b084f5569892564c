/**
 * npm 12 skips the install script of every dependency its project has not approved in
 * `allowScripts`, and an install that skipped better-sqlite3's build still "succeeds", with no
 * database driver: every dependency that has a script must be reviewed here, approved or denied.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';

import { REPO } from '../helpers/shared.js';

it("every dependency's install script is approved or denied in package.json, the ones the product needs approved", (t) => {
  const r = spawnSync('npm', ['install-scripts', 'ls', '--json'], { cwd: REPO, encoding: 'utf8' });
  if (r.status !== 0 && /Unknown command|not a valid command/i.test(r.stderr + r.stdout)) return t.skip(`npm ${spawnSync('npm', ['--version'], { encoding: 'utf8' }).stdout.trim()} has no install-scripts command (npm 11.16 and later have it)`);
  assert.equal(r.status, 0, r.stderr);
  const pending = (JSON.parse(r.stdout) as { allowScripts: { name: string }[] }).allowScripts.map((p) => p.name);
  assert.deepEqual(pending, [], `not reviewed in package.json's allowScripts: ${pending.join(', ')} (npm install-scripts approve or deny)`);
  const allow = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { allowScripts: Record<string, boolean> }).allowScripts;
  assert.equal(allow['better-sqlite3'], true, "better-sqlite3's build must run");
  assert.equal(allow['onnxruntime-node'], false, 'onnxruntime-node must not download CUDA libraries at install time');
});

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { samples, writeShard } from '../helpers/fixtures.js';
import { MODELS, REPO, WDS, tempDir } from '../helpers/shared.js';

const tmp = tempDir();
const db = join(tmp.dir, 'cli.db');

function embaug(...args: string[]) {
  const r = spawnSync(process.execPath, [join(REPO, 'bin', 'embaug.js'), ...args], { encoding: 'utf8', cwd: tmp.dir, env: { ...process.env, EMBAUG_DB: db } });
  return { code: r.status, out: r.stdout, err: r.stderr, json: () => JSON.parse(r.stdout) };
}

describe('the embaug command', () => {
  before(async () => {
    const dir = join(tmp.dir, 'shards');
    mkdirSync(dir);
    await writeShard(join(dir, 'train-000000.tar'), await samples('train-000000.tar', 120));
    await writeShard(join(dir, 'test-000000.tar'), await samples('test-000000.tar', 40));
    copyFileSync(join(WDS, 'classes.txt'), join(dir, 'classes.txt'));
  });
  after(() => tmp.cleanup());

  it('imports, registers, extracts and reports, with --json for scripts', () => {
    const imp = embaug('data', 'import', join(tmp.dir, 'shards'), '--kind', 'wds', '--name', 'mini', '--json');
    assert.equal(imp.code, 0, imp.err);
    assert.equal(imp.json().imageCount, 160);
    assert.match(imp.err, /checking images: 160\/160 images \(100%\)/);
    const bb = embaug('backbone', 'add', join(MODELS, 'tiny-resnet18-w4.onnx'), '--json');
    assert.equal(bb.code, 0, bb.err);
    assert.equal(bb.json().dim, 32);
    const ex = embaug('extract', '--dataset', 'mini', '--backbone', 'tiny-resnet18-w4', '--aug', 'vflip', '--split', 'train', '--classes', '0-4');
    assert.equal(ex.code, 0, ex.err);
    assert.match(ex.out, /^embedding set \d+: \d+ extracted, 0 already cached, \d+ images\/s/);
    assert.match(ex.err, /extracting embeddings: \d+\/\d+ images \(100%\)\s+\d+ images\/s\s+ETA/);
    const stats = embaug('cache', 'stats', '--json').json();
    assert.equal(stats.sets[0].augKey, 'vflip');
    const list = embaug('data', 'list');
    assert.match(list.out, /^id\s+name\s+kind\s+images/m);
    assert.match(list.out, /mini\s+wds\s+160\s+10/);
    const runs = embaug('runs', 'list', '--json').json();
    assert.equal(runs[0].kind, 'extract');
    assert.equal(runs[0].status, 'completed');
    const show = embaug('runs', 'show', String(runs[0].id));
    assert.match(show.out, /config: \{"aug":"vflip"/);
  });

  it('exit codes say what failed: usage 2, not found 3, bad input 4', () => {
    const usage = embaug('extract', '--dataset', 'mini');
    assert.equal(usage.code, 2);
    assert.match(usage.err, /extract needs --dataset and --backbone/);
    assert.equal(embaug('frobnicate').code, 2);
    const missing = embaug('extract', '--dataset', 'nope', '--backbone', 'tiny-resnet18-w4', '--json');
    assert.equal(missing.code, 3);
    assert.equal(missing.json().error.code, 'E_NOT_FOUND');
    const bad = embaug('data', 'import', join(tmp.dir, 'shards'), '--kind', 'cifar');
    assert.equal(bad.code, 4);
    assert.match(bad.err, /not a CIFAR binary folder/);
    const aug = embaug('extract', '--dataset', 'mini', '--backbone', 'tiny-resnet18-w4', '--aug', 'hflop');
    assert.equal(aug.code, 2);
    assert.match(aug.err, /unknown augmentation "hflop"/);
  });

  it('edits a data set into versions, diffs, restores and exports them, and curates it', () => {
    const v0 = embaug('data', 'versions', 'mini', '--json').json();
    assert.equal(v0.length, 1);
    const edit = embaug('data', 'edit', 'mini', '--relabel', '0,1', '--to', '7', '--exclude', 'split=test', '--message', 'check');
    assert.equal(edit.code, 0, edit.err);
    assert.match(edit.out, /^new version [0-9a-f]{16}… \(120 images, 10 classes\): check/);
    const vs = embaug('data', 'versions', 'mini', '--json').json();
    const diff = embaug('data', 'diff', 'mini', vs[0].hash.slice(0, 10), vs[1].hash.slice(0, 10), '--json').json();
    assert.equal(diff.removed.length, 40);
    assert.ok(diff.relabelled.every((r: { to: number }) => r.to === 7));
    assert.equal(embaug('data', 'restore', 'mini', vs[0].hash).code, 0);
    assert.equal(embaug('data', 'list', '--json').json()[0].version, vs[0].hash);
    const out = join(tmp.dir, 'exported');
    assert.equal(embaug('data', 'export', 'mini', '--format', 'wds', '--out', out).code, 0);
    assert.equal(embaug('data', 'import', out, '--kind', 'wds', '--name', 'again', '--json').json().version, vs[0].hash);
    const bad = embaug('data', 'edit', 'mini', '--relabel', '0', '--to', '12');
    assert.equal(bad.code, 2);
    assert.match(bad.err, /label 12 is not a class of mini/);
    const dup = embaug('curate', 'duplicates', '--dataset', 'again', '--backbone', 'tiny-resnet18-w4', '--json');
    assert.equal(dup.code, 0, dup.err);
    assert.ok(Array.isArray(dup.json().near));
    assert.match(embaug('curate', 'balance', '--dataset', 'mini').out, /^class\s+split\s+images/);
  });

  it('prints help for every command', () => {
    const h = embaug('--help');
    assert.equal(h.code, 0);
    for (const c of ['embaug data <command>', 'import <path>', 'embaug backbone <command>', 'embaug extract', 'embaug cache stats', 'embaug runs <command>']) assert.ok(h.out.includes(c), c);
  });
});

/**
 * Awkward but realistic import inputs: label files that would exhaust memory, forged image
 * headers, class names that name other places on disk, the same image in two classes,
 * links and names that cannot be imported, and the import's write lock.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import sharp from 'sharp';
import { pack } from 'tar-stream';
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';

import { openDb, type Db } from '../../electron/engine/db.js';
import { EmbaugError } from '../../electron/engine/errors.js';
import { editDataset, exportDataset, getDataset, importDataset, listDatasets } from '../../electron/engine/datasets/index.js';
import { samples, writeShard, type Sample } from '../helpers/fixtures.js';
import { tempDir } from '../helpers/shared.js';

const dump = (db: Db) =>
  JSON.stringify(['datasets', 'images', 'blobs', 'dataset_versions', 'runs'].map((t) => db.prepare(`SELECT count(*) AS n FROM ${t}`).get()));

/** A real JPEG whose SOF header is patched to claim w×h pixels. */
function forgeSize(jpeg: Buffer, w: number, h: number): Buffer {
  const b = Buffer.from(jpeg);
  for (let i = 2; i + 9 < b.length; ) {
    if (b[i] !== 0xff) throw new Error('not a marker');
    const m = b[i + 1];
    if (m >= 0xc0 && m <= 0xc2) {
      b.writeUInt16BE(h, i + 5);
      b.writeUInt16BE(w, i + 7);
      return b;
    }
    i += 2 + b.readUInt16BE(i + 2);
  }
  throw new Error('no SOF marker');
}

async function tarOf(file: string, entries: { name: string; data?: string | Buffer; type?: 'symlink' | 'link'; linkname?: string }[]) {
  const p = pack();
  const done = pipeline(p, createWriteStream(file));
  for (const e of entries) p.entry(e.type ? { name: e.name, type: e.type, linkname: e.linkname } : { name: e.name }, e.data ?? '');
  p.finalize();
  await done;
}

describe('import hardening', () => {
  const tmp = tempDir();
  let db: Db;
  let s: Sample[];
  before(async () => {
    s = await samples('train-000000.tar', 40);
    db = openDb(join(tmp.dir, 'db.sqlite'));
  });
  after(() => {
    db.close();
    tmp.cleanup();
  });

  it('labels are plain decimal indices; huge, empty, hex and fractional ones are skipped with the reason', async () => {
    const dir = join(tmp.dir, 'labels');
    mkdirSync(dir);
    const bad: [string, string][] = [['3000000000', 'exceeds the limit'], ['2000000', 'exceeds the limit'], ['', 'empty'], ['   \n', 'empty'], ['0x3', 'not a plain decimal'], ['3.0', 'not a plain decimal'], ['-1', 'not a plain decimal'], ['1e3', 'not a plain decimal']];
    await tarOf(join(dir, 'train-000000.tar'), [
      ...bad.flatMap(([cls], i) => [{ name: `bad${i}.jpg`, data: s[i].jpeg }, { name: `bad${i}.cls`, data: cls }]),
      { name: 'ok1.jpg', data: s[10].jpeg }, { name: 'ok1.cls', data: ' 7\n' },
      { name: 'ok2.jpg', data: s[11].jpeg }, { name: 'ok2.cls', data: '2' },
      { name: 'ok3.jpg', data: s[12].jpeg }, { name: 'ok3.json', data: '{"label": "7"}' },
      { name: 'bad-json.jpg', data: s[13].jpeg }, { name: 'bad-json.json', data: '{"label": 3.5}' },
    ]);
    const t0 = Date.now();
    const ds = await importDataset(db, { kind: 'wds', path: dir, name: 'labels' });
    assert.ok(Date.now() - t0 < 30_000);
    // The classes are the labels seen, not 0..max: two classes, not 3,000,000,001.
    assert.deepEqual(ds.classes, ['class_2', 'class_7']);
    assert.equal(ds.imageCount, 3);
    const reasons = Object.fromEntries(ds.report.skipped.map((k) => [k.source.split(':')[1], k.reason]));
    bad.forEach(([, why], i) => assert.match(reasons[`bad${i}`], new RegExp(why), `bad${i}: ${reasons[`bad${i}`]}`));
    assert.match(reasons['bad-json'], /not a plain decimal/);
    assert.ok(JSON.stringify(ds.report).length < 10_000);
  });

  it('an image whose header claims too many pixels is refused before anything is allocated for it', async () => {
    const dir = join(tmp.dir, 'forged');
    mkdirSync(join(dir, 'a'), { recursive: true });
    writeFileSync(join(dir, 'a', 'huge.jpg'), forgeSize(s[0].jpeg, 20000, 20000));
    writeFileSync(join(dir, 'a', 'huger.jpg'), forgeSize(s[1].jpeg, 65500, 65500));
    writeFileSync(join(dir, 'a', 'fine.jpg'), s[2].jpeg);
    writeFileSync(join(dir, 'a', 'big.png'), await sharp({ create: { width: 200, height: 200, channels: 3, background: '#808080' } }).png().toBuffer());
    global.gc?.();
    const rss0 = process.memoryUsage().rss;
    const ds = await importDataset(db, { kind: 'folder', path: dir, name: 'forged', splitRule: { test: 0, seed: 0 }, maxPixels: 10_000 });
    const grew = process.memoryUsage().rss - rss0;
    assert.equal(ds.imageCount, 1);
    const why = Object.fromEntries(ds.report.skipped.map((k) => [k.source, k.reason]));
    assert.match(why['a/huge.jpg'], /20000×20000 pixels exceeds the limit of 10000 pixels/);
    assert.match(why['a/huger.jpg'], /65500×65500 pixels exceeds the limit/);
    assert.match(why['a/big.png'], /png image exceeds the limit of 10000 pixels/);
    assert.ok(grew < 300e6, `RSS grew by ${(grew / 1e6).toFixed(0)} MB`);
    // With the default limit of 50 megapixels the PNG is fine, the forged headers are not.
    const ds2 = await importDataset(db, { kind: 'folder', path: dir, name: 'forged-default', splitRule: { test: 0, seed: 0 } });
    assert.equal(ds2.imageCount, 2);
    assert.match(ds2.report.skipped.find((k) => k.source === 'a/huge.jpg')!.reason, /exceeds the limit of 50000000 pixels/);
  });

  it('class names that name other places are refused at import and at rename, and export never leaves its folder', async () => {
    const before = dump(db);
    const wds = join(tmp.dir, 'escape-wds');
    mkdirSync(wds);
    await writeShard(join(wds, 'train-000000.tar'), s.slice(0, 4).map((x) => ({ ...x, label: x.label % 2 })));
    for (const bad of ['../../somewhere/escaped', '..', 'a\\b', 'tab\there', 'nul\0x']) {
      writeFileSync(join(wds, 'classes.txt'), `ok\n${bad}\n`);
      await assert.rejects(importDataset(db, { kind: 'wds', path: wds, name: 'escape' }), (e: unknown) => e instanceof EmbaugError && e.code === 'E_IMPORT' && /cannot be used/.test(e.message) && /nothing was imported/.test(e.message), bad);
    }
    // The manifest of a folder import is a source of class names too.
    const folder = join(tmp.dir, 'escape-folder');
    mkdirSync(join(folder, 'x'), { recursive: true });
    writeFileSync(join(folder, 'x', 'a.jpg'), s[0].jpeg);
    writeFileSync(join(folder, 'embaug-manifest.json'), JSON.stringify({ classes: ['../../../etc'], class_folders: ['x'] }));
    await assert.rejects(importDataset(db, { kind: 'folder', path: folder, name: 'escape2' }), /cannot be used/);
    assert.equal(dump(db), before);
    writeFileSync(join(wds, 'classes.txt'), 'cat\ndog\n');
    const ds = await importDataset(db, { kind: 'wds', path: wds, name: 'renames' });
    for (const bad of ['../../x', '/abs', '..', 'a\0b', 'line\nbreak'])
      assert.throws(() => editDataset(db, ds.id, [{ op: 'renameClass', label: 0, name: bad }]), /cannot be used/, bad);
    // A database from elsewhere may hold any name: the exporter maps it to a safe folder.
    editDataset(db, ds.id, [{ op: 'renameClass', label: 0, name: 'what? a:b' }]);
    db.prepare('UPDATE datasets SET classes = ? WHERE id = ?').run(JSON.stringify(['what? a:b', '../../outside']), ds.id);
    const out = join(tmp.dir, 'exp', 'out');
    await exportDataset(db, ds.id, { format: 'folder', out });
    assert.deepEqual(readdirSync(join(tmp.dir, 'exp')), ['out']);
    assert.deepEqual(readdirSync(join(out, 'train')).sort(), ['.._.._outside', 'what_ a_b'].sort());
    assert.ok(!existsSync(join(tmp.dir, 'outside')));
    // Re-imported, the manifest restores the names that had to change.
    db.prepare('UPDATE datasets SET classes = ? WHERE id = ?').run(JSON.stringify(['what? a:b', 'dog']), ds.id);
    const out2 = join(tmp.dir, 'exp2');
    await exportDataset(db, ds.id, { format: 'folder', out: out2 });
    const back = await importDataset(db, { kind: 'folder', path: out2, name: 'renames-back' });
    assert.deepEqual(back.classes, ['what? a:b', 'dog']);
    assert.equal(back.imageCount, ds.imageCount);
  });

  it('the same image in two classes is reported as a label conflict, saying which copy was kept', async () => {
    const dir = join(tmp.dir, 'conflict');
    for (const c of ['cat', 'dog']) mkdirSync(join(dir, c), { recursive: true });
    writeFileSync(join(dir, 'cat', 'one.jpg'), s[0].jpeg);
    writeFileSync(join(dir, 'dog', 'same.jpg'), s[0].jpeg);
    writeFileSync(join(dir, 'dog', 'two.jpg'), s[1].jpeg);
    writeFileSync(join(dir, 'dog', 'copy.jpg'), s[1].jpeg);
    const ds = await importDataset(db, { kind: 'folder', path: dir, name: 'conflict', splitRule: { test: 0, seed: 0 } });
    assert.equal(ds.imageCount, 2);
    assert.equal(ds.report.conflicts.length, 1);
    assert.deepEqual(ds.report.conflicts[0].kept, { source: 'cat/one.jpg', label: 'cat' });
    assert.deepEqual(ds.report.conflicts[0].dropped, { source: 'dog/same.jpg', label: 'dog' });
    const why = Object.fromEntries(ds.report.skipped.map((k) => [k.source, k.reason]));
    assert.match(why['dog/same.jpg'], /conflicting label.*cat\/one\.jpg.*"cat" and was kept.*"dog"/);
    assert.match(why['dog/two.jpg'] ?? why['dog/copy.jpg'], /duplicate of/);
  });

  it('links and names that are not UTF-8 are reported as skipped, with the reason', async () => {
    const dir = join(tmp.dir, 'links');
    mkdirSync(join(dir, 'cat'), { recursive: true });
    mkdirSync(join(tmp.dir, 'elsewhere'), { recursive: true });
    writeFileSync(join(tmp.dir, 'elsewhere', 'x.jpg'), s[5].jpeg);
    writeFileSync(join(dir, 'cat', 'real.jpg'), s[3].jpeg);
    symlinkSync(join(tmp.dir, 'elsewhere', 'x.jpg'), join(dir, 'cat', 'link.jpg'));
    symlinkSync(join(tmp.dir, 'elsewhere'), join(dir, 'cat', 'linked-folder'));
    symlinkSync(join(tmp.dir, 'elsewhere'), join(dir, 'dog'));
    writeFileSync(Buffer.concat([Buffer.from(join(dir, 'cat') + '/'), Buffer.from([0x66, 0xff, 0xfe, 0x2e, 0x6a, 0x70, 0x67])]), s[4].jpeg);
    const ds = await importDataset(db, { kind: 'folder', path: dir, name: 'links', splitRule: { test: 0, seed: 0 } });
    assert.equal(ds.imageCount, 1);
    const why = Object.fromEntries(ds.report.skipped.map((k) => [k.source, k.reason]));
    assert.match(why['cat/link.jpg'], /symbolic link/);
    assert.match(why['cat/linked-folder'], /symbolic link/);
    assert.match(why.dog, /symbolic link/);
    const bad = ds.report.skipped.find((k) => /not valid UTF-8/.test(k.reason));
    assert.ok(bad, JSON.stringify(ds.report.skipped));
    assert.match(bad.reason, /66fffe2e6a7067/);
    // Tar members that are links, or whose names are not UTF-8.
    const wds = join(tmp.dir, 'link-wds');
    mkdirSync(wds);
    await tarOf(join(wds, 'train-000000.tar'), [
      { name: 'a.jpg', data: s[6].jpeg }, { name: 'a.cls', data: '1' },
      { name: 'b.jpg', type: 'symlink', linkname: '/etc/passwd' }, { name: 'b.cls', data: '1' },
      { name: 'c.jpg', type: 'link', linkname: 'a.jpg' },
    ]);
    const d2 = await importDataset(db, { kind: 'wds', path: wds, name: 'link-wds' });
    assert.equal(d2.imageCount, 1);
    const w2 = Object.fromEntries(d2.report.skipped.map((k) => [k.source, k.reason]));
    assert.match(w2['train-000000.tar:b.jpg'], /symbolic link member/);
    assert.match(w2['train-000000.tar:c.jpg'], /hard link member/);
  });

  it('writes in short transactions into a hidden staging set: others can write meanwhile and see nothing half-done', async () => {
    const dir = join(tmp.dir, 'staging');
    mkdirSync(dir);
    const many = await samples('train-000000.tar', 1600);
    await writeShard(join(dir, 'train-000000.tar'), many);
    const other = new Database(join(tmp.dir, 'db.sqlite'), { timeout: 0 });
    let writes = 0, seenStaging = 0;
    try {
      const ds = await importDataset(db, {
        kind: 'wds', path: dir, name: 'staged',
        onProgress: (p) => {
          if (p.done === 0) return;
          // Between batches (and after the last, before publishing) a writer with no patience
          // at all gets the lock, and finds the rows written so far in a staging set.
          other.prepare(`INSERT INTO runs (kind, name, config, status, started_at, host) VALUES ('probe', 'probe', '{}', 'completed', '', '{}')`).run();
          writes++;
          seenStaging += (other.prepare(`SELECT count(*) AS n FROM datasets WHERE state = 'staging'`).get() as { n: number }).n;
          assert.ok(!listDatasets(db).some((d) => d.name === 'staged'), 'not visible before it is published');
        },
      });
      assert.equal(ds.imageCount, 1600);
      assert.ok(writes >= 1, `${writes} writes between batches`);
      assert.equal(seenStaging, writes);
      const staged = other.prepare(`SELECT count(*) AS n FROM images i JOIN datasets d ON d.id = i.dataset_id WHERE d.name = 'staged'`).get() as { n: number };
      assert.equal(staged.n, 1600);
      assert.equal((other.prepare(`SELECT count(*) AS n FROM datasets WHERE state = 'staging'`).get() as { n: number }).n, 0);
    } finally {
      other.close();
    }
  });

  it('staging rows left by a killed process are removed at the next open, with their bytes', async () => {
    const path = join(tmp.dir, 'killed.sqlite');
    const d = openDb(path);
    await importDataset(d, { kind: 'folder', path: join(tmp.dir, 'conflict'), name: 'kept', splitRule: { test: 0, seed: 0 } });
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
    const host = JSON.stringify({ hostname: (await import('node:os')).hostname(), pid: Number(dead) });
    const id = Number(d.prepare(`INSERT INTO datasets (name, kind, source, classes, version, image_count, import_report, created_at, state, owner) VALUES ('staging:x', 'folder', '/', '[]', '', 0, '{}', '', 'staging', ?)`).run(host).lastInsertRowid);
    d.prepare(`INSERT INTO blobs (sha256, format, bytes) VALUES ('orphan', 'jpeg', x'00')`).run();
    d.prepare(`INSERT INTO images (dataset_id, idx, sha256, label, split, width, height, source) VALUES (?, 0, 'orphan', 0, 'train', 1, 1, 'x')`).run(id);
    d.close();
    const again = openDb(path);
    try {
      assert.equal((again.prepare(`SELECT count(*) AS n FROM datasets`).get() as { n: number }).n, 1);
      assert.equal(again.prepare(`SELECT 1 FROM blobs WHERE sha256 = 'orphan'`).get(), undefined);
      assert.equal(getDataset(again, 'kept').imageCount, 2);
      assert.equal(again.pragma('integrity_check', { simple: true }), 'ok');
    } finally {
      again.close();
    }
  });
});

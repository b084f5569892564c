/**
 * A few hundred mutated WebDataset shards and image folders thrown at the importer: each
 * import either succeeds with a report, or is refused with E_IMPORT and leaves the database
 * as it was; the database stays whole and nothing is written outside the test folder.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { openDb, type Db } from '../../electron/engine/db.js';
import { EmbaugError } from '../../electron/engine/errors.js';
import { importDataset } from '../../electron/engine/datasets/index.js';
import { samples, writeShard, type Sample } from '../helpers/fixtures.js';
import { rng, tempDir } from '../helpers/shared.js';

const state = (db: Db) =>
  JSON.stringify(['datasets', 'images', 'blobs', 'dataset_versions'].map((t) => db.prepare(`SELECT count(*) AS n FROM ${t}`).get()));

describe('importer fuzz', () => {
  const tmp = tempDir();
  let db: Db, s: Sample[], shard: Buffer;
  const outside = () => readdirSync(tmpdir()).filter((f) => !f.startsWith('embaug-test-')).sort().join('\n');
  let outside0: string;
  before(async () => {
    s = await samples('train-000000.tar', 12);
    db = openDb(join(tmp.dir, 'fuzz.db'));
    const f = join(tmp.dir, 'clean.tar');
    await writeShard(f, s.slice(0, 6));
    shard = (await import('node:fs')).readFileSync(f);
    outside0 = outside();
  });
  after(() => {
    db.close();
    tmp.cleanup();
  });

  /** Imports, and checks the outcome: a report, or a clean refusal that changed nothing. */
  async function attempt(kind: 'wds' | 'folder', path: string, name: string): Promise<'imported' | 'refused'> {
    const before = state(db);
    try {
      const ds = await importDataset(db, { kind, path, name, splitRule: { test: 0.5, seed: 1 } });
      assert.ok(ds.imageCount > 0 && ds.classes.length > 0 && ds.classes.length <= ds.imageCount);
      assert.equal(ds.report.imported, ds.imageCount);
      return 'imported';
    } catch (err) {
      assert.ok(err instanceof EmbaugError, `${name}: not an EmbaugError: ${(err as Error).stack}`);
      assert.equal(err.code, 'E_IMPORT', `${name}: ${err.message}`);
      assert.equal(state(db), before, `${name} changed the database though refused`);
      return 'refused';
    }
  }

  it('mutated shards', async () => {
    const r = rng(11);
    const counts = { imported: 0, refused: 0 };
    for (let i = 0; i < 150; i++) {
      const dir = join(tmp.dir, `wds-${i}`);
      mkdirSync(dir);
      const m = i % 6;
      let bytes = Buffer.from(shard);
      if (m === 0) bytes = bytes.subarray(0, Math.floor(r() * bytes.length)); // truncated
      else if (m === 1) for (let k = 0; k < 1 + r() * 20; k++) bytes[Math.floor(r() * bytes.length)] ^= 1 + Math.floor(r() * 255); // flipped bytes
      else if (m === 2) bytes = Buffer.concat([bytes.subarray(0, 512 * Math.floor(r() * (bytes.length / 512))), Buffer.alloc(Math.floor(r() * 2048), Math.floor(r() * 256))]);
      if (m <= 2) writeFileSync(join(dir, 'train-000000.tar'), bytes);
      else {
        const labels = ['0', '9', '', '-1', '1e9', '3000000000', '0x3', ' 4 ', '\u0000', 'NaN', '2.5', '99999', '100000'];
        const names = ['a', '../../up', '/abs/x', 'dir/b', 'c.d.e', '.hidden', 'ü', 'x'.repeat(90)];
        await writeShard(join(dir, 'train-000000.tar'), [], (p) => {
          for (let k = 0; k < 4; k++) {
            const key = names[Math.floor(r() * names.length)] + k;
            if (r() < 0.8) p.entry({ name: `${key}.jpg` }, m === 3 && r() < 0.3 ? s[k].jpeg.subarray(0, 50) : s[k].jpeg);
            if (r() < 0.8) p.entry({ name: `${key}.cls` }, labels[Math.floor(r() * labels.length)]);
            if (m === 4 && r() < 0.5) p.entry({ name: `${key}.json` }, r() < 0.5 ? '{"label": 1' : JSON.stringify({ label: labels[Math.floor(r() * labels.length)] }));
            if (m === 5 && r() < 0.5) p.entry({ name: `${key}.png`, type: 'symlink', linkname: '/etc/passwd' }, '');
          }
        });
        if (r() < 0.3) writeFileSync(join(dir, 'classes.txt'), r() < 0.5 ? 'a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n' : '..\n../x\n');
      }
      counts[await attempt('wds', dir, `wds-${i}`)]++;
      rmSync(dir, { recursive: true });
    }
    assert.ok(counts.imported > 10 && counts.refused > 10, JSON.stringify(counts));
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
    assert.equal(outside(), outside0);
  });

  it('mutated folders', async () => {
    const r = rng(12);
    const counts = { imported: 0, refused: 0 };
    const classNames = ['cat', 'dog', '..', 'a\tb', 'CON', 'ü', 'x'.repeat(200), ' sp '];
    for (let i = 0; i < 150; i++) {
      const root = join(tmp.dir, `folder-${i}`);
      mkdirSync(root);
      for (let k = 0; k < 1 + Math.floor(r() * 3); k++) {
        const cls = classNames[Math.floor(r() * classNames.length)];
        if (cls === '..') continue;
        const dir = join(root, r() < 0.3 ? join(['train', 'test', 'junk'][Math.floor(r() * 3)], cls) : cls);
        mkdirSync(dir, { recursive: true });
        for (let j = 0; j < 1 + Math.floor(r() * 3); j++) {
          const x = s[Math.floor(r() * s.length)];
          const v = r();
          const f = join(dir, `${k}-${j}${v < 0.8 ? '.jpg' : '.bin'}`);
          if (v < 0.6) writeFileSync(f, x.jpeg);
          else if (v < 0.7) writeFileSync(f, x.jpeg.subarray(0, Math.floor(r() * x.jpeg.length)));
          else if (v < 0.8) symlinkSync('/etc/hostname', f);
          else if (v < 0.9) writeFileSync(f, Buffer.from([0xff, 0xd8, 0xff, 0xe0, ...Array.from({ length: 40 }, () => Math.floor(r() * 256))]));
          else writeFileSync(Buffer.concat([Buffer.from(`${dir}/`), Buffer.from([0x80 + j, 0xff])]), x.jpeg);
        }
      }
      if (r() < 0.2) writeFileSync(join(root, 'embaug-manifest.json'), r() < 0.5 ? '{"classes": ["cat", "../../x"]}' : '{broken');
      counts[await attempt('folder', root, `folder-${i}`)]++;
      rmSync(root, { recursive: true });
    }
    assert.ok(counts.imported > 10 && counts.refused > 10, JSON.stringify(counts));
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
    assert.equal(outside(), outside0);
  });
});

import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';

import { openDb, type Db } from '../../electron/engine/db.js';
import { EmbaugError } from '../../electron/engine/errors.js';
import { importDataset, listDatasets, readBlobs, selectImages, decodeToSize } from '../../electron/engine/datasets/index.js';
import { CIFAR10_CLASSES, samples, writeCifar10Bin, writeShard, type Sample } from '../helpers/fixtures.js';
import { WDS, tempDir } from '../helpers/shared.js';

const tables = (db: Db) =>
  Object.fromEntries(['datasets', 'images', 'blobs'].map((t) => [t, (db.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n]));

describe('data set import', () => {
  const tmp = tempDir();
  let train: Sample[], test: Sample[];
  let db: Db;
  before(async () => {
    train = await samples('train-000000.tar', 240);
    test = await samples('test-000000.tar', 60);
    db = openDb(join(tmp.dir, 'db.sqlite'));
  });
  after(() => {
    db.close();
    tmp.cleanup();
  });

  it('imports WebDataset shards with splits from shard names and classes.txt', async () => {
    const dir = join(tmp.dir, 'wds');
    mkdirSync(dir);
    await writeShard(join(dir, 'train-000000.tar'), train.slice(0, 120));
    await writeShard(join(dir, 'train-000001.tar'), train.slice(120), (p) => {
      p.entry({ name: 'orphan.cls' }, '3'); // a label with no image
    });
    await writeShard(join(dir, 'test-000000.tar'), test);
    copyFileSync(join(WDS, 'classes.txt'), join(dir, 'classes.txt'));
    const ds = await importDataset(db, { kind: 'wds', path: dir, name: 'wds-mini' });
    assert.equal(ds.imageCount, 300);
    assert.deepEqual(ds.report.perSplit, { train: 240, test: 60 });
    assert.deepEqual(ds.classes, CIFAR10_CLASSES);
    assert.deepEqual(ds.report.skipped, [{ source: 'train-000001.tar:orphan', reason: 'no image member (has cls)' }]);
    const rows = selectImages(db, ds.id, { split: 'test' });
    assert.equal(rows.length, 60);
    assert.equal(rows[0].label, test[0].label);
    assert.equal(rows[0].source, `test-000000.tar:${test[0].key}.jpg`);
    assert.equal(rows[0].width, 32);
    // The stored bytes are the shard's bytes.
    assert.deepEqual(Buffer.from(readBlobs(db, [rows[0].sha256])[0].bytes), test[0].jpeg);
  });

  it('selects a class-split task with labels renumbered, and balanced subsets', () => {
    const ds = listDatasets(db).find((d) => d.name === 'wds-mini')!;
    const target = selectImages(db, ds.id, { split: 'train', classes: [5, 6, 7, 8, 9] });
    const all = selectImages(db, ds.id, { split: 'train' });
    assert.equal(target.length, all.filter((r) => r.label >= 5).length);
    assert.ok(target.every((r) => r.label >= 0 && r.label <= 4));
    assert.equal(target[0].sha256, all.find((r) => r.label >= 5)!.sha256);
    const bal = selectImages(db, ds.id, { split: 'train', limit: 50, balanced: true });
    assert.equal(bal.length, 50);
    assert.ok(new Set(bal.map((r) => r.label)).size === 10);
  });

  it('imports an image folder and reports every bad file, converting what it can', async () => {
    const root = join(tmp.dir, 'folder');
    const mk = (p: string) => mkdirSync(join(root, p), { recursive: true });
    ['chat/ünïcødé', 'dog', 'empty', 'ship'].forEach(mk);
    train.slice(0, 10).forEach((s, i) => writeFileSync(join(root, i < 5 ? 'chat/ünïcødé' : 'dog', `${s.key}.jpg`), s.jpeg));
    writeFileSync(join(root, 'dog', 'copy.jpg'), train[5].jpeg); // duplicate bytes
    writeFileSync(join(root, 'dog', 'truncated.jpg'), train[11].jpeg.subarray(0, 400));
    writeFileSync(join(root, 'dog', 'corrupt.jpg'), Buffer.alloc(900, 0xff).fill(0x12, 3));
    writeFileSync(join(root, 'dog', 'notes.txt'), 'not an image at all, just some text here');
    const px = await decodeToSize([{ bytes: train[12].jpeg, format: 'jpeg', width: 32, height: 32 }], 32, 32);
    await sharp(px, { raw: { width: 32, height: 32, channels: 3 } }).toColourspace('b-w').png().toFile(join(root, 'ship', 'gray.png'));
    await sharp(px, { raw: { width: 32, height: 32, channels: 3 } }).ensureAlpha(0.5).png().toFile(join(root, 'ship', 'rgba.png'));
    await sharp(px, { raw: { width: 32, height: 32, channels: 3 } }).png().toColourspace('rgb16').toFile(join(root, 'ship', 'deep.png'));
    await sharp(px, { raw: { width: 32, height: 32, channels: 3 } }).resize(64, 48).webp().toFile(join(root, 'ship', 'big.webp'));
    const ds = await importDataset(db, { kind: 'folder', path: root, name: 'folder', splitRule: { test: 0.3, seed: 1 } });
    assert.equal(ds.imageCount, 14);
    assert.deepEqual(ds.classes, ['chat', 'dog', 'ship']);
    assert.deepEqual(ds.report.emptyClasses, ['empty']);
    const reasons = Object.fromEntries(ds.report.skipped.map((s) => [s.source.split('/').pop(), s.reason]));
    // copy.jpg sorts before the original, so the original is the one reported.
    assert.equal(reasons[`${train[5].key}.jpg`], 'duplicate of dog/copy.jpg (same bytes)');
    assert.match(reasons['truncated.jpg'], /could not be decoded|corrupt or truncated/);
    assert.match(reasons['corrupt.jpg'], /could not be decoded|corrupt or truncated|not an image/);
    assert.match(reasons['notes.txt'], /not an image/);
    assert.equal(Object.keys(reasons).length, 4);
    assert.equal(ds.report.converted.grayscale, 1);
    assert.equal(ds.report.converted.alpha, 1);
    assert.equal(ds.report.converted['16-bit'], 1);
    assert.deepEqual(ds.report.sizes, { '32x32': 13, '64x48': 1 });
    const rows = selectImages(db, ds.id);
    assert.ok(rows.some((r) => r.source.includes('ünïcødé')));
    assert.deepEqual(new Set(rows.map((r) => r.split)), new Set(['train', 'test']));
    // Every stored image decodes to the backbone size, whatever its format or size.
    // The others before the JPEGs, so that a JPEG's place in libjpeg-turbo's batch is not its slot.
    const blobs = readBlobs(db, rows.map((r) => r.sha256)).sort((a, b) => Number(a.format === 'jpeg') - Number(b.format === 'jpeg'));
    const px2 = await decodeToSize(blobs, 32, 32);
    assert.equal(px2.length, 14 * 3072);
    // One call mixes libjpeg-turbo's batch and sharp's images: each lands in its own slot.
    assert.ok(blobs[0].format !== 'jpeg' && blobs.at(-1)!.format === 'jpeg');
    for (const [i, b] of blobs.entries())
      assert.deepEqual(px2.subarray(i * 3072, (i + 1) * 3072), await decodeToSize([b], 32, 32), `image ${i}: ${b.format} ${b.width}x${b.height}`);
  });

  it('takes root/<split>/<class>/* as given splits', async () => {
    const root = join(tmp.dir, 'bysplit');
    for (const [split, items] of [['train', train.slice(20, 26)], ['test', test.slice(0, 4)]] as const)
      items.forEach((s) => {
        mkdirSync(join(root, split, CIFAR10_CLASSES[s.label]), { recursive: true });
        writeFileSync(join(root, split, CIFAR10_CLASSES[s.label], `${s.key}.jpg`), s.jpeg);
      });
    const ds = await importDataset(db, { kind: 'folder', path: root, name: 'bysplit' });
    assert.deepEqual(ds.report.perSplit, { train: 6, test: 4 });
  });

  it('imports the official CIFAR-10 binary format pixel for pixel', async () => {
    const dir = join(tmp.dir, 'cifar-10-batches-bin');
    const pixels = await writeCifar10Bin(dir, train.slice(0, 50), test.slice(0, 10));
    const ds = await importDataset(db, { kind: 'cifar', path: dir, name: 'cifar-bin' });
    assert.equal(ds.kind, 'cifar10-bin');
    assert.deepEqual(ds.report.perSplit, { train: 50, test: 10 });
    const rows = selectImages(db, ds.id, { split: 'test' });
    assert.equal(rows[0].source, 'test_batch.bin#0');
    assert.equal(rows[0].label, test[0].label);
    assert.deepEqual(readBlobs(db, [rows[0].sha256])[0].bytes, pixels.get(test[0].key));
  });

  it('a failed import leaves the database exactly as it was', async () => {
    const before = tables(db);
    // A truncated CIFAR batch file: refused, nothing written.
    const dir = join(tmp.dir, 'bad-cifar');
    await writeCifar10Bin(dir, train.slice(0, 10), test.slice(0, 2));
    writeFileSync(join(dir, 'test_batch.bin'), Buffer.alloc(3073 * 2 - 100));
    await assert.rejects(importDataset(db, { kind: 'cifar', path: dir, name: 'bad' }), /not a whole number of 3073-byte records/);
    // A name that exists.
    await assert.rejects(importDataset(db, { kind: 'wds', path: join(tmp.dir, 'wds'), name: 'wds-mini' }), /exists already/);
    // A folder with nothing usable.
    const junk = join(tmp.dir, 'junk', 'cls');
    mkdirSync(junk, { recursive: true });
    writeFileSync(join(junk, 'a.jpg'), 'no');
    await assert.rejects(importDataset(db, { kind: 'folder', path: join(tmp.dir, 'junk'), name: 'junk' }), (e: unknown) => e instanceof EmbaugError && e.code === 'E_IMPORT' && /No usable image/.test(e.message));
    // Cancelled half-way through checking.
    const ac = new AbortController();
    const p = importDataset(db, { kind: 'wds', path: join(tmp.dir, 'wds'), name: 'cancelled', signal: ac.signal, onProgress: (pr) => pr.done > 0 && ac.abort() });
    await assert.rejects(p, /cancelled/);
    assert.deepEqual(tables(db), before);
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
  });

  it('refuses paths that are not what the kind needs, saying what to give', async () => {
    await assert.rejects(importDataset(db, { kind: 'wds', path: join(tmp.dir, 'nope'), name: 'x' }), /is not a folder/);
    await assert.rejects(importDataset(db, { kind: 'cifar', path: join(tmp.dir, 'wds'), name: 'x' }), /not a CIFAR binary folder: expected data_batch_1..5.bin/);
    const link = join(tmp.dir, 'link');
    symlinkSync(join(tmp.dir, 'folder'), link);
    const ds = await importDataset(db, { kind: 'folder', path: link, name: 'via-link' });
    assert.equal(ds.imageCount, 14);
  });
});

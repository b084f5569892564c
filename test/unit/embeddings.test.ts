import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import * as ort from 'onnxruntime-node';

import { addBackbone, getBackbone, preprocessOf } from '../../electron/engine/backbones/index.js';
import { decodeToSize, importDataset, readBlobs, selectImages, type DatasetInfo } from '../../electron/engine/datasets/index.js';
import { MIGRATIONS, openDb, type Db } from '../../electron/engine/db.js';
import { PixelMemo, cacheSetRows, cacheStats, embeddingsFor, exportCacheParquet, extract, findSet, getOrCreateSet, importCacheParquet, loadVectors, logitsAccuracy, phiBatch, phiPass, readEmbeddingsParquet, writeEmbeddingsParquet } from '../../electron/engine/embeddings/index.js';
import { augment } from '../../electron/engine/native/index.js';
import { getRun, listRuns } from '../../electron/engine/runs/index.js';
import { samples, writeShard } from '../helpers/fixtures.js';
import { MODELS, REPO, WDS, tempDir } from '../helpers/shared.js';

describe('embedding extraction and cache', () => {
  const tmp = tempDir();
  const dbPath = join(tmp.dir, 'db.sqlite');
  let db: Db;
  let ds: DatasetInfo;
  before(async () => {
    const dir = join(tmp.dir, 'wds');
    mkdirSync(dir);
    await writeShard(join(dir, 'test-000000.tar'), await samples('test-000000.tar', 300));
    copyFileSync(join(WDS, 'classes.txt'), join(dir, 'classes.txt'));
    db = openDb(dbPath);
    ds = await importDataset(db, { kind: 'wds', path: dir, name: 'mini' });
    await addBackbone(db, { onnxPath: join(MODELS, 'tiny-resnet18-w4.onnx') });
  });
  after(() => {
    db.close();
    tmp.cleanup();
  });

  async function direct(shas: string[], flip: boolean, output = 'embedding'): Promise<Float32Array> {
    const px = await decodeToSize(readBlobs(db, shas), 32, 32);
    const pre = preprocessOf({ input: { name: 'image', layout: 'NCHW', height: 32, width: 32, channels: 'RGB', range: [0, 1], mean: [0, 0, 0], std: [1, 1, 1], normalisation: 'inside the graph', dtype: 'float32' }, embedding: { output: 'embedding' }, architecture: 'x' });
    const x = augment({ pixels: px, n: shas.length, inH: 32, inW: 32, ops: flip ? [{ kind: 1, p: 1, a: 0, b: 0, k: 0 }] : [], scale: pre.scale, mean: pre.mean, std: pre.std });
    const s = await ort.InferenceSession.create(join(MODELS, 'tiny-resnet18-w4.onnx'));
    return (await s.run({ image: new ort.Tensor('float32', x, [shas.length, 3, 32, 32]) }))[output].data as Float32Array;
  }

  it('extracts Φ(x) and Φ(hflip(x)) equal to ONNX Runtime on the same pixels, and records a run', async () => {
    const seen: number[] = [];
    const r = await extract(db, { dataset: 'mini', backbone: 'tiny-resnet18-w4', aug: 'hflip', batch: 64, threads: 2, onProgress: (p) => seen.push(p.done) });
    assert.equal(r.extracted, 300);
    assert.equal(seen.at(-1), 300);
    const shas = r.images.map((i) => i.sha256);
    const got = loadVectors(db, r.setId, shas);
    const want = await direct(shas, true);
    let worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
    assert.ok(worst < 1e-5, `max difference ${worst}`);
    const plain = await embeddingsFor(db, { dataset: 'mini', backbone: 'tiny-resnet18-w4', aug: 'identity' });
    assert.notDeepEqual(plain.x, got);
    const run = listRuns(db, { kind: 'extract' })[0];
    assert.equal(run.status, 'completed');
    assert.equal(run.datasetVersion, ds.version);
    assert.equal((run.summary as { extracted: number }).extracted, 300);
  });

  it('a second extraction reads the cache; float16 is an option within half precision', async () => {
    const runsBefore = listRuns(db, { kind: 'extract' }).length;
    const again = await extract(db, { dataset: 'mini', backbone: 'tiny-resnet18-w4', aug: 'hflip' });
    assert.deepEqual([again.extracted, again.cached], [0, 300]);
    assert.equal(listRuns(db, { kind: 'extract' }).length, runsBefore, 'a look-up that extracts nothing is no run');
    const f16 = await embeddingsFor(db, { dataset: 'mini', backbone: 'tiny-resnet18-w4', aug: 'hflip', dtype: 'float16' });
    const f32 = loadVectors(db, again.setId, f16.images.map((i) => i.sha256));
    for (let i = 0; i < f32.length; i++) assert.ok(Math.abs(f16.x[i] - f32[i]) <= 1e-3 * Math.max(1, Math.abs(f32[i])));
    const stats = cacheStats(db);
    const sets = stats.sets.filter((s) => s.augKey === 'hflip');
    assert.deepEqual(sets.map((s) => s.dtype).sort(), ['float16', 'float32']);
    assert.equal(sets.find((s) => s.dtype === 'float16')!.bytes * 2, sets.find((s) => s.dtype === 'float32')!.bytes);
  });

  it('Parquet keeps float16 sets as float16, bit for bit, into a fresh database; one file holds one kind of vector', () => {
    const ids = cacheStats(db).sets.map((x) => x.id);
    const rows = cacheSetRows(db, ids);
    const f16 = rows.find((r) => r.dtype === 'float16')!, f32 = rows.find((r) => r.dtype === 'float32')!;
    assert.throws(() => writeEmbeddingsParquet(join(tmp.dir, 'mixed.parquet'), [f16, f32]), /one Parquet file holds vectors of one length and type, but these sets mix 32-d float16 with 32-d float32/i);
    const file = join(tmp.dir, 'half.parquet');
    writeEmbeddingsParquet(file, [f16]);
    const back = readEmbeddingsParquet(file);
    assert.equal(back.meta!.sets[0].dtype, 'float16');
    assert.deepEqual(back.sets.map((x) => [x.augKey, x.dtype, x.dim, x.shas.length]), [[f16.augKey, 'float16', 32, f16.shas.length]]);
    assert.deepEqual(Buffer.from(back.sets[0].vectors.buffer, back.sets[0].vectors.byteOffset, back.sets[0].vectors.byteLength), Buffer.from(f16.vectors.buffer, f16.vectors.byteOffset, f16.vectors.byteLength));
    const other = openDb(join(tmp.dir, 'other.sqlite'));
    try {
      assert.throws(() => importCacheParquet(other, file), /holds embeddings of backbone tiny-resnet18-w4 \(sha256 [0-9a-f]{16}…\), which this database does not have: register that ONNX file first/);
    } finally {
      other.close();
    }
  });

  it('random augmentations are cached per seed and reproducible', async () => {
    const a = await embeddingsFor(db, { dataset: 'mini', backbone: 'tiny-resnet18-w4', aug: 'crop:pad=4+hflip:p=0.5', seed: 1, limit: 50 });
    const b = await embeddingsFor(db, { dataset: 'mini', backbone: 'tiny-resnet18-w4', aug: 'crop:pad=4+hflip:p=0.5', seed: 2, limit: 50 });
    assert.notEqual(a.setId, b.setId);
    assert.notDeepEqual(a.x, b.x);
    // Same seed again in another database: the same vectors (draws are keyed by image, not by batch).
    const other = openDb(join(tmp.dir, 'other.sqlite'));
    await importDataset(other, { kind: 'wds', path: join(tmp.dir, 'wds'), name: 'mini' });
    await addBackbone(other, { onnxPath: join(MODELS, 'tiny-resnet18-w4.onnx') });
    const c = await embeddingsFor(other, { dataset: 'mini', backbone: 'tiny-resnet18-w4', aug: 'crop:pad=4+hflip:p=0.5', seed: 1, limit: 50, batch: 7 });
    assert.deepEqual(c.x, a.x);
    other.close();
  });

  it("a base model's logits are cached beside its embeddings: its accuracy is ONNX Runtime's argmax, and measuring again runs no Φ", async () => {
    await extract(db, { dataset: 'mini', backbone: 'tiny-resnet18-w4' });
    const rows = selectImages(db, ds.id, {});
    const logits = await direct(rows.map((r) => r.sha256), false, 'logits');
    let correct = 0;
    rows.forEach((r, i) => (correct += Number(logits.subarray(i * 5, i * 5 + 5).indexOf(Math.max(...logits.subarray(i * 5, i * 5 + 5))) === r.label)));
    const runs = () => listRuns(db, { kind: 'extract' }).length;
    const before = runs();
    const first = await logitsAccuracy(db, { dataset: 'mini', backbone: 'tiny-resnet18-w4', threads: 2 });
    assert.deepEqual(first, { accuracy: correct / rows.length, n: rows.length });
    assert.equal(runs(), before + 1, 'the first measurement extracts the logits');
    const again = await logitsAccuracy(db, { dataset: 'mini', backbone: 'tiny-resnet18-w4' });
    assert.deepEqual(again, first);
    assert.equal(runs(), before + 1, 'the second reads them from the cache');
    const sets = cacheStats(db).sets.filter((x) => x.augKey === 'identity' && x.dtype === 'float32');
    assert.deepEqual(sets.map((x) => [x.output, x.dim, x.count]).sort(), [['embedding', 32, 300], ['logits', 5, 300]]);
    // A logits set exported on its own comes back as logits.
    const out = join(tmp.dir, 'logits.parquet');
    exportCacheParquet(db, out, [sets.find((x) => x.output === 'logits')!.id]);
    assert.deepEqual(readEmbeddingsParquet(out).sets.map((x) => [x.output, x.dim, x.shas.length]), [['logits', 5, 300]]);
    // A file that does not fit the backbone's description imports nothing, not even its good sets.
    const [good] = readEmbeddingsParquet(out).sets;
    const fresh = openDb(join(tmp.dir, 'fresh.sqlite'));
    try {
      await addBackbone(fresh, { onnxPath: join(MODELS, 'tiny-resnet18-w4.onnx') });
      const bad = (name: string, sets: typeof good[]) => (writeEmbeddingsParquet(join(tmp.dir, name), sets), join(tmp.dir, name));
      assert.throws(() => importCacheParquet(fresh, bad('features.parquet', [good, { ...good, augKey: 'hflip', output: 'features' }])), /features\.parquet does not fit .*has no output "features" in its description: its outputs are "embedding" and "logits"\. Export the file again/);
      assert.throws(() => importCacheParquet(fresh, bad('short.parquet', [{ ...good, output: 'embedding' }])), /short\.parquet holds 5-d vectors as backbone tiny-resnet18-w4's output "embedding", which has 32 values/);
      assert.equal(cacheStats(fresh).sets.length, 0);
      assert.deepEqual(importCacheParquet(fresh, out).map((x) => [x.rows, x.added]), [[300, 300]]);
    } finally {
      fresh.close();
    }
    await assert.rejects(extract(db, { dataset: 'mini', backbone: 'tiny-resnet18-w4', output: 'features' }), /has no output "features".*"embedding" and "logits"/);
  });

  it('reading 50,000 cached vectors is a single scan (checked here at 300 × D)', () => {
    const set = findSet(db, { backboneSha: listRuns(db)[0].backboneSha!, output: 'embedding', augKey: 'hflip', preprocessKey: preprocessOf({ input: { name: 'image', layout: 'NCHW', height: 32, width: 32, channels: 'RGB', range: [0, 1], mean: [0, 0, 0], std: [1, 1, 1], normalisation: 'inside the graph', dtype: 'float32' }, embedding: { output: 'embedding' }, architecture: 'x' }).key, seed: 0, dtype: 'float32' });
    assert.ok(set && set.count === 300 && set.dim === 32);
    const plan = db.prepare('EXPLAIN QUERY PLAN SELECT image_sha, vec FROM embeddings WHERE set_id = ?').all(set.id) as { detail: string }[];
    assert.match(plan[0].detail, /SEARCH embeddings USING PRIMARY KEY \(set_id=\?\)/);
  });

  it('an extraction killed mid-way resumes with no duplicate and no missing row; the run is marked interrupted', async () => {
    const big = join(tmp.dir, 'big');
    mkdirSync(big);
    await writeShard(join(big, 'train-000000.tar'), await samples('train-000000.tar', 3000));
    copyFileSync(join(WDS, 'classes.txt'), join(big, 'classes.txt'));
    const bigDs = await importDataset(db, { kind: 'wds', path: big, name: 'big' });
    await addBackbone(db, { onnxPath: join(MODELS, 'resnet18-w16-hflip.onnx') });
    const child = spawn(process.execPath, [join(REPO, 'bin', 'embaug.js'), 'extract', '--dataset', 'big', '--backbone', 'resnet18-w16-hflip', '--batch', '32', '--threads', '1', '--db', dbPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    await new Promise<void>((resolve, reject) => {
      child.stderr.on('data', (d) => {
        err += d;
        // Kill once some batches are written but well before the end.
        if (/extracting embeddings: [1-9]\d*\/3000/.test(err)) {
          child.kill('SIGKILL');
          resolve();
        }
      });
      child.on('exit', () => reject(new Error(`the child ended before it was killed: ${err}`)));
    });
    await new Promise((r) => child.on('close', r));
    const reopened = openDb(dbPath); // the open sweeps runs whose process is gone
    assert.equal(reopened.pragma('integrity_check', { simple: true }), 'ok');
    const killed = listRuns(reopened, { kind: 'extract' }).find((r) => r.datasetId === bigDs.id)!;
    assert.equal(getRun(reopened, killed.id).status, 'interrupted');
    const partial = (reopened.prepare('SELECT count(*) AS n FROM embeddings WHERE set_id = ?').get(killed.config.setId) as { n: number }).n;
    assert.ok(partial > 0 && partial < 3000, `partial = ${partial}`);
    const resumed = await extract(reopened, { dataset: 'big', backbone: 'resnet18-w16-hflip', threads: 2 });
    assert.deepEqual([resumed.cached, resumed.extracted], [partial, 3000 - partial]);
    const counts = reopened.prepare('SELECT count(*) AS n, count(DISTINCT image_sha) AS d FROM embeddings WHERE set_id = ?').get(resumed.setId) as { n: number; d: number };
    assert.deepEqual(counts, { n: 3000, d: 3000 });
    assert.equal(loadVectors(reopened, resumed.setId, resumed.images.map((i) => i.sha256)).length, 3000 * 128);
    reopened.close();
  });
});

describe('Φ passes over parts in flight', () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  it('give the same vectors, bit for bit and in the order asked, whatever the threads and the batch and with decoded images kept between passes; the default batch follows the largest tensor', async () => {
    const dir = join(tmp.dir, 'wds');
    mkdirSync(dir);
    await writeShard(join(dir, 'test-000000.tar'), await samples('test-000000.tar', 300));
    copyFileSync(join(WDS, 'classes.txt'), join(dir, 'classes.txt'));
    const db = openDb(join(tmp.dir, 'db.sqlite'));
    try {
      const ds = await importDataset(db, { kind: 'wds', path: dir, name: 'mini' });
      await addBackbone(db, { onnxPath: join(MODELS, 'resnet18-w16-hflip.onnx') });
      const bb = getBackbone(db, 'resnet18-w16-hflip');
      const rows = selectImages(db, ds.id, {});
      const pass = async (threads: number, batch: number, pixels?: PixelMemo) => {
        const seen: string[] = [];
        const parts: Float32Array[] = [];
        await phiPass(db, bb, rows, { aug: 'hflip', seed: 0, batch, threads, pixels }, (r, v) => {
          seen.push(...r.map((x) => x.sha256));
          parts.push(v);
        });
        assert.deepEqual(seen, rows.map((r) => r.sha256), `threads ${threads}, batch ${batch}: rows out of order`);
        return Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)));
      };
      // One session on whole batches; two on parts of 32; three on parts of 17, the last of 11.
      const one = await pass(1, 256);
      assert.equal(one.length, 300 * 128 * 4);
      assert.ok(one.equals(await pass(2, 64)));
      assert.ok(one.equals(await pass(3, 50)));
      // Images decoded once for several passes (a memo with room for 100 of the 300, which keeps
      // the first it meets): the same vectors whether an image comes from it or from the database.
      const pixels = new PixelMemo(100 * 32 * 32 * 3);
      assert.ok(one.equals(await pass(2, 64, pixels)));
      assert.deepEqual([pixels.hits, pixels.misses], [0, 300]);
      assert.ok(one.equals(await pass(3, 50, pixels)));
      assert.deepEqual([pixels.hits, pixels.misses], [100, 500]);
      // The default batch keeps a batch's largest tensor within 4 MiB: 64 KB an image here,
      // 145 KB for inception-w8's widest concatenation.
      assert.equal(await phiBatch(bb), 64);
      await addBackbone(db, { onnxPath: join(MODELS, 'inception-w8-hflip.onnx') });
      assert.equal(await phiBatch(getBackbone(db, 'inception-w8-hflip')), 16);
    } finally {
      db.close();
    }
  });
});

describe('a cache from before sets named their output', () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  it('is migrated in place: sets keep their ids and vectors, are of their backbone embedding output, and a logits set can sit beside each', () => {
    const path = join(tmp.dir, 'old.sqlite');
    const v = MIGRATIONS.findIndex((m) => m.includes('embedding_sets_v6'));
    const old = new Database(path);
    for (const m of MIGRATIONS.slice(0, v)) old.exec(m);
    old.pragma(`user_version = ${v}`);
    const sha = 'ab'.repeat(32);
    old.prepare('INSERT INTO backbones (sha256, name, path, manifest, dim, added_at) VALUES (?, ?, ?, ?, ?, ?)').run(sha, 'old', '/nowhere.onnx', JSON.stringify({ embedding: { output: 'feat' } }), 2, 'then');
    old.prepare('INSERT INTO embedding_sets (id, backbone_sha, aug_key, preprocess_key, seed, dtype, dim, created_at) VALUES (7, ?, ?, ?, 0, ?, 2, ?)').run(sha, 'hflip', 'p', 'float32', 'then');
    for (const s of ['a', 'b', 'c']) old.prepare('INSERT INTO embeddings (set_id, image_sha, vec) VALUES (7, ?, ?)').run(s, Buffer.from(new Float32Array([1, 2]).buffer));
    old.close();

    const db = openDb(path);
    assert.equal(db.pragma('user_version', { simple: true }), MIGRATIONS.length);
    assert.equal(db.pragma('foreign_keys', { simple: true }), 1, 'foreign keys are back on after the migration');
    assert.deepEqual(db.prepare('SELECT id, output, aug_key FROM embedding_sets').all(), [{ id: 7, output: 'feat', aug_key: 'hflip' }]);
    assert.deepEqual(loadVectors(db, 7, ['c', 'a']), new Float32Array([1, 2, 1, 2]));
    const key = { backboneSha: sha, augKey: 'hflip', preprocessKey: 'p', seed: 0, dtype: 'float32' as const };
    assert.equal(getOrCreateSet(db, { ...key, output: 'feat' }, 2), 7);
    const logits = getOrCreateSet(db, { ...key, output: 'scores' }, 5);
    assert.notEqual(logits, 7);
    // Exporting the cache takes its embeddings unless logits are asked for: one file, one length of vector.
    db.prepare('INSERT INTO embeddings (set_id, image_sha, vec) VALUES (?, ?, ?)').run(logits, 'a', Buffer.from(new Float32Array(5).buffer));
    const out = join(tmp.dir, 'old.parquet');
    assert.equal(exportCacheParquet(db, out).sets, 1);
    assert.deepEqual(readEmbeddingsParquet(out).sets.map((x) => [x.output, x.shas.length]), [['feat', 3]]);
    // The vectors point at the rebuilt table: deleting a set still takes its vectors with it.
    db.prepare('DELETE FROM embedding_sets WHERE id = 7').run();
    assert.deepEqual(db.prepare('SELECT set_id, count(*) AS n FROM embeddings GROUP BY set_id').all(), [{ set_id: logits, n: 1 }]);
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
    db.close();
  });
});

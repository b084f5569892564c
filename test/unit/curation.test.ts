import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';

import { addBackbone } from '../../electron/engine/backbones/index.js';
import { classNeighbours, embeddingMap, findDuplicates, findLabelErrors, findOutliers } from '../../electron/engine/curation/index.js';
import { decodeSnapshot } from '../../electron/engine/datasets/snapshot.js';
import { diffVersions, editDataset, exportDataset, getDataset, importDataset, listVersions, restoreVersion, selectImages } from '../../electron/engine/datasets/index.js';
import { openDb, type Db } from '../../electron/engine/db.js';
import { EmbaugError } from '../../electron/engine/errors.js';
import { indicesBy } from '../../electron/engine/grouping.js';
import { trainHead } from '../../electron/engine/training/index.js';
import { plantedFolder, samples, writeShard, type PlantedCopy } from '../helpers/fixtures.js';
import { MODELS, REPO, WDS, rng, tempDir } from '../helpers/shared.js';

const RESNET = join(MODELS, 'resnet18-w16-hflip.onnx');

describe('grouping a data set\'s images', () => {
  it('keeps every index once, groups in order of first appearance, each in increasing order', () => {
    const labels = [3, 1, 3, 3, 0, 1, 0];
    const g = indicesBy(labels.length, (i) => labels[i]);
    assert.deepEqual([...g.entries()], [[3, [0, 2, 3]], [1, [1, 5]], [0, [4, 6]]]);
    assert.equal(indicesBy(0, () => 0).size, 0);
  });
});

describe('finding duplicates and leaks', () => {
  const tmp = tempDir();
  let db: Db;
  let planted: PlantedCopy[] = [];
  before(async () => {
    db = openDb(join(tmp.dir, 'db.sqlite'));
    await addBackbone(db, { onnxPath: RESNET });
    const root = join(tmp.dir, 'images');
    // 200 planted copies among all 10,000 real test images and 1,500 training images.
    const train = await samples('train-000000.tar', 1500), test = [...(await samples('test-000000.tar', 5000)), ...(await samples('test-000001.tar', 5000))];
    planted = await plantedFolder(root, train, test);
    await importDataset(db, { kind: 'folder', path: root, name: 'planted' });
  });
  after(() => {
    db.close();
    tmp.cleanup();
  });

  // Which of CIFAR-10's own images are one photograph, judged by eye (how: the file's "about").
  // With it, a claimed pair is true when both images are one photograph: a planted copy and its
  // original, or two of CIFAR's own images judged so. Pairs of images nobody judged count false.
  const judged: { photographs: string[][]; judgedDifferent: string[][] } = JSON.parse(readFileSync(join(REPO, 'test', 'fixtures', 'cifar10-same-photographs.json'), 'utf8'));
  it('with its defaults among 11,700 images: every exact duplicate, near ones at precision ≥ 0.9 and recall ≥ 0.9, every cross-split pair a leak', async (t) => {
    const r = await findDuplicates(db, { dataset: 'planted', backbone: 'resnet18-w16-hflip', threads: 2 });
    const groupOf = new Map<string, { kind: string; leak: boolean; id: number }>();
    [...r.exact, ...r.near].forEach((g, id) => g.images.forEach((im) => groupOf.set(`${im.source}|${g.kind}`, { kind: g.kind, leak: g.leak, id })));
    const together = (p: (typeof planted)[number]) => {
      const kind = p.kind === 'exact' ? 'exact' : 'near';
      const a = groupOf.get(`${p.orig}|${kind}`), b = groupOf.get(`${p.copy}|${kind}`);
      return a && b && a.id === b.id ? a : null;
    };
    const exact = planted.filter((p) => p.kind === 'exact');
    assert.deepEqual(exact.filter((p) => !together(p)).map((p) => p.copy), [], 'every exact duplicate is found');
    const key = (source: string) => basename(source).replace(/\.\w+$/, '');
    const photograph = new Map(judged.photographs.flatMap((keys, id) => keys.map((k) => [k, String(id)] as const)));
    for (const p of planted) photograph.set(key(p.copy), photograph.get(key(p.orig)) ?? photograph.set(key(p.orig), key(p.orig)).get(key(p.orig))!);
    const onePhotograph = (a: string, b: string) => photograph.has(key(a)) && photograph.get(key(a)) === photograph.get(key(b));
    // Near duplicates as pairs: every pair of images in a near group is a claim.
    const claimed = r.near.flatMap((g) => g.images.flatMap((a, i) => g.images.slice(i + 1).map((b) => [a.source, b.source].sort())));
    const right = claimed.filter(([a, b]) => onePhotograph(a, b));
    const precision = right.length / Math.max(1, claimed.length);
    const claimedKeys = new Set(claimed.map((c) => c.join('|')));
    const nearPlanted = planted.filter((p) => p.kind !== 'exact');
    const missed = nearPlanted.filter((p) => !claimedKeys.has([p.orig, p.copy].sort().join('|')));
    const recall = 1 - missed.length / nearPlanted.length;
    // Recall among CIFAR's own: pairs of one judged photograph (both images in the test's set).
    const present = new Set(selectImages(db, getDataset(db, 'planted').id).map((im) => key(im.source)));
    const ownPairs = judged.photographs.flatMap((keys) => keys.filter((k) => present.has(k)).flatMap((a, i, ks) => ks.slice(i + 1).map((b) => `${a}|${b}`)));
    const claimedOwn = new Set(claimed.map(([a, b]) => [key(a), key(b)].join('|')).flatMap((k) => [k, k.split('|').reverse().join('|')]));
    t.diagnostic(`near duplicates among ${present.size} images: precision ${precision.toFixed(3)} (${right.length} of ${claimed.length} pairs claimed are one photograph), recall ${recall.toFixed(3)} on the planted copies (${nearPlanted.length - missed.length} of ${nearPlanted.length}; missed: ${(['flip', 'crop', 'jpeg'] as const).map((k) => `${missed.filter((p) => p.kind === k).length} ${k}`).join(', ')}) and ${(ownPairs.filter((p) => claimedOwn.has(p)).length / ownPairs.length).toFixed(3)} on the pairs of CIFAR-10's own judged one photograph (${ownPairs.filter((p) => claimedOwn.has(p)).length} of ${ownPairs.length}); ${r.exact.length} exact and ${r.near.length} near groups, ${r.leaks} leaks`);
    const wrong = claimed.filter(([a, b]) => !onePhotograph(a, b));
    const seen = new Set([...judged.photographs, ...judged.judgedDifferent].flat().concat(planted.flatMap((p) => [key(p.orig), key(p.copy)])));
    t.diagnostic(`claimed pairs that are not one photograph: ${wrong.length}, of which ${wrong.filter(([a, b]) => !seen.has(key(a)) || !seen.has(key(b))).length} involve an image nobody judged${wrong.length ? `: ${wrong.slice(0, 10).map(([a, b]) => `${key(a)} ~ ${key(b)}`).join(', ')}` : ''}`);
    assert.ok(precision >= 0.9, `near-duplicate precision ${precision.toFixed(3)}`);
    assert.ok(recall >= 0.9, `near-duplicate recall ${recall.toFixed(3)}`);
    const found = planted.filter((p) => p.kind !== 'exact' && together(p));
    assert.deepEqual([...exact, ...found].filter((q) => q.cross && !together(q)!.leak).map((q) => q.copy), [], 'every cross-split pair is a leak');
    assert.equal(r.leaks, [...r.exact, ...r.near].filter((g) => g.leak).length);
  });

  it('shows the neighbour searches\' progress and stops when cancelled in them or while comparing candidate pairs, saying so', async () => {
    // Cancelled as each stage shows its first progress (the neighbour searches' chunks of 11,700
    // images take less than the meter's 250 ms between events); the comparison once under way.
    for (const [stage, after] of [['neighbours by embedding', 0], ['neighbours by pixels', 0], ['comparing candidate pairs', 1]] as const) {
      const ac = new AbortController();
      const stages: string[] = [];
      const p = findDuplicates(db, {
        dataset: 'planted', backbone: 'resnet18-w16-hflip', threads: 2, signal: ac.signal,
        onProgress: (pr) => {
          stages.push(pr.stage);
          if (pr.stage === stage && pr.done >= after) {
            // A throw here rejects the search with it instead of E_CANCELLED.
            if (stage !== 'comparing candidate pairs') assert.equal(pr.total, 11_700, `${stage}: every image asks`);
            ac.abort();
          }
        },
      });
      await assert.rejects(p, (e: unknown) => e instanceof EmbaugError && e.code === 'E_CANCELLED' && /the duplicate search was cancelled/.test(e.message), stage);
      assert.equal(stages.at(-1), stage, `cancelled in "${stage}", stages seen: ${[...new Set(stages)].join(', ')}`);
    }
  });

  it('refuses a similarity threshold or a neighbour count out of range before any work', async () => {
    for (const [o, message] of [[{ threshold: 5 }, /^RangeError: threshold \(a cosine similarity\) must be in \[-1, 1\], got 5$/], [{ neighbours: 0 }, /^RangeError: neighbours must be in \[1, 1000\], got 0$/]] as const) {
      const stages: string[] = [];
      await assert.rejects(findDuplicates(db, { dataset: 'planted', backbone: 'resnet18-w16-hflip', threads: 2, ...o, onProgress: (pr) => stages.push(pr.stage) }), message);
      assert.deepEqual(stages, []);
    }
  });
});

describe('finding label errors, outliers, and a map', () => {
  const tmp = tempDir();
  let db: Db;
  const flipped = new Set<string>();
  before(async () => {
    db = openDb(join(tmp.dir, 'db.sqlite'));
    await addBackbone(db, { onnxPath: RESNET });
    const r = rng(7);
    const items = (await samples('train-000001.tar', 5000)).map((s) => {
      if (r() < 0.05) {
        flipped.add(s.key);
        return { ...s, label: (s.label + 1 + Math.floor(r() * 9)) % 10 };
      }
      return s;
    });
    const dir = join(tmp.dir, 'wds');
    mkdirSync(dir);
    await writeShard(join(dir, 'train-000000.tar'), items);
    copyFileSync(join(WDS, 'classes.txt'), join(dir, 'classes.txt'));
    await importDataset(db, { kind: 'wds', path: dir, name: 'noisy' });
  });
  after(() => {
    db.close();
    tmp.cleanup();
  });

  it('refuses fewer than two folds before any work: each image is scored by heads trained without it', async () => {
    await assert.rejects(findLabelErrors(db, { dataset: 'noisy', backbone: 'resnet18-w16-hflip', folds: 1, threads: 2 }), /^RangeError: folds must be in \[2, 100\], got 1$/);
  });

  it('ranks flipped labels first: precision at k (k = number flipped) well above chance', async (t) => {
    const rep = await findLabelErrors(db, { dataset: 'noisy', backbone: 'resnet18-w16-hflip', folds: 5, epochs: 20, threads: 2 });
    const k = flipped.size;
    const top = rep.ranked.slice(0, k);
    const hits = top.filter((x) => flipped.has(x.image.source.split(':')[1].replace(/\.jpg$/, ''))).length;
    const precision = hits / k;
    t.diagnostic(`precision@${k} = ${precision.toFixed(3)}, out-of-fold accuracy ${rep.outOfFoldAccuracy.toFixed(3)}`);
    assert.ok(precision >= 0.6, `precision@${k} = ${precision.toFixed(3)} (chance ${(k / 5000).toFixed(3)})`);
    assert.ok(rep.outOfFoldAccuracy > 0.5);
    // Beside a suspect image: its nearest of the given and of the suggested class, nearest first.
    const top1 = rep.ranked[0];
    const near = classNeighbours(db, { dataset: 'noisy', backbone: 'resnet18-w16-hflip', idx: top1.image.idx, labels: [top1.image.label, top1.predicted], k: 6 });
    assert.deepEqual(near.map((n) => n.label), [top1.image.label, top1.predicted]);
    for (const n of near) {
      assert.equal(n.images.length, 6);
      assert.ok(n.images.every((x) => x.label === n.label && x.idx !== top1.image.idx));
      assert.deepEqual(n.images.map((x) => x.similarity), [...n.images.map((x) => x.similarity)].sort((a, b) => b - a));
    }
    // A flipped image looks like its true class: the suggested class's nearest are closer than the given one's.
    assert.ok(near[1].images[0].similarity > near[0].images[0].similarity, JSON.stringify(near.map((n) => n.images[0].similarity)));
  });

  it('scores outliers within their class and maps the embeddings to two principal components', async () => {
    const out = await findOutliers(db, { dataset: 'noisy', backbone: 'resnet18-w16-hflip' });
    assert.equal(out.length, 5000);
    assert.ok(out[0].z > 2 && out.at(-1)!.z < 0);
    const m = await embeddingMap(db, { dataset: 'noisy', backbone: 'resnet18-w16-hflip' });
    assert.equal(m.points.length, 5000);
    assert.ok(m.explained![0] >= m.explained![1] && m.explained![0] > 0.05 && m.explained![0] + m.explained![1] < 1);
    const sel = { split: 'train', limit: 600, balanced: true };
    const u1 = await embeddingMap(db, { dataset: 'noisy', backbone: 'resnet18-w16-hflip', selection: sel, method: 'umap', seed: 1 });
    const u2 = await embeddingMap(db, { dataset: 'noisy', backbone: 'resnet18-w16-hflip', selection: sel, method: 'umap', seed: 1 });
    assert.equal(u1.points.length, 600);
    assert.deepEqual(u1.points.map((p) => p.x), u2.points.map((p) => p.x), 'a seeded UMAP is reproducible');
  });
});

describe('data set versions', () => {
  const tmp = tempDir();
  let db: Db;
  before(async () => {
    db = openDb(join(tmp.dir, 'db.sqlite'));
    const dir = join(tmp.dir, 'wds');
    mkdirSync(dir);
    await writeShard(join(dir, 'train-000000.tar'), await samples('train-000000.tar', 120));
    await writeShard(join(dir, 'test-000000.tar'), await samples('test-000000.tar', 40));
    copyFileSync(join(WDS, 'classes.txt'), join(dir, 'classes.txt'));
    await importDataset(db, { kind: 'wds', path: dir, name: 'v' });
    await addBackbone(db, { onnxPath: join(MODELS, 'tiny-resnet18-w4.onnx') });
  });
  after(() => {
    db.close();
    tmp.cleanup();
  });

  it('an edit whose filter matches no image, or that tags with no tag, is refused and leaves the version as it was', () => {
    const before = listVersions(db, 'v').length, version = getDataset(db, 'v').version;
    assert.throws(() => editDataset(db, 'v', [{ op: 'exclude', images: [5] }, { op: 'relabel', images: { split: 'val', label: 2 }, label: 1 }]), /^RangeError: no image of v matches \{"split":"val","label":2\}: its splits are "test", "train" and its labels 0\.\.9$/);
    assert.throws(() => editDataset(db, 'v', [{ op: 'tag', images: [5], tags: [] }]), /^RangeError: tag needs at least one tag$/);
    assert.equal(listVersions(db, 'v').length, before);
    assert.equal(getDataset(db, 'v').version, version);
    assert.ok(selectImages(db, getDataset(db, 'v').id).some((r) => r.idx === 5), 'the exclusion before the bad edit was rolled back');
  });

  it('an edit makes a new version, restoring brings the old hash back, and a diff says what changed', () => {
    const v0 = getDataset(db, 'v').version;
    assert.equal(listVersions(db, 'v').length, 1);
    const v1 = editDataset(db, 'v', [{ op: 'relabel', images: [0, 1], label: 3 }, { op: 'exclude', images: [2] }, { op: 'move', images: [3], split: 'val' }, { op: 'tag', images: { split: 'test' }, tags: ['checked'] }], 'first pass');
    assert.notEqual(v1.hash, v0);
    assert.equal(getDataset(db, 'v').version, v1.hash);
    assert.equal(v1.imageCount, 159);
    assert.ok(!selectImages(db, getDataset(db, 'v').id).some((r) => r.idx === 2), 'excluded images leave every selection');
    const d = diffVersions(db, 'v', v0, v1.hash);
    assert.deepEqual(d.removed, [2]);
    assert.deepEqual(d.moved.map((m) => [m.idx, m.to]), [[3, 'val']]);
    assert.deepEqual(d.relabelled.map((m) => [m.idx, m.to]).filter(([, to]) => to === 3).length, d.relabelled.length);
    const merged = editDataset(db, 'v', [{ op: 'renameClass', label: 0, name: 'plane' }, { op: 'mergeClasses', from: 1, into: 9 }]);
    assert.equal(merged.classes.length, 9);
    assert.equal(merged.classes[0], 'plane');
    const back = restoreVersion(db, 'v', v0.slice(0, 12));
    assert.equal(back.hash, v0);
    assert.equal(getDataset(db, 'v').classes.length, 10);
    assert.equal(selectImages(db, getDataset(db, 'v').id).length, 160);
    assert.throws(() => editDataset(db, 'v', [{ op: 'relabel', images: [0], label: 10 }]), /label 10 is not a class of v \(0\.\.9\)/);
    assert.equal(getDataset(db, 'v').version, v0, 'a refused edit changes nothing');
  });

  it('versions stored in the positional format of older databases still restore and diff; an unknown format is refused', () => {
    const ds = getDataset(db, 'v');
    const cur = db.prepare('SELECT * FROM dataset_versions WHERE dataset_id = ? AND hash = ? ORDER BY id DESC').get(ds.id, ds.version) as { state: Buffer; classes: string };
    const rows = decodeSnapshot(cur.state);
    const old = rows.map((r, i) => [i === 0 ? (r.label + 1) % 10 : r.label, r.split, r.excluded, r.tags, r.note]);
    const ins = db.prepare('INSERT INTO dataset_versions (dataset_id, hash, parent_hash, note, classes, state, image_count, created_at) VALUES (?, ?, NULL, ?, ?, ?, 0, ?)');
    ins.run(ds.id, 'f1'.repeat(32), 'format 1', cur.classes, gzipSync(JSON.stringify(old)), new Date().toISOString());
    const d = diffVersions(db, 'v', ds.version, 'f1'.repeat(32));
    assert.deepEqual(d.relabelled, [{ idx: 0, from: rows[0].label, to: (rows[0].label + 1) % 10 }]);
    restoreVersion(db, 'v', 'f1f1f1');
    assert.equal(selectImages(db, ds.id).find((r) => r.idx === 0)!.label, (rows[0].label + 1) % 10);
    restoreVersion(db, 'v', ds.version);
    assert.equal(getDataset(db, 'v').version, ds.version);
    ins.run(ds.id, 'f3'.repeat(32), 'future', cur.classes, gzipSync(JSON.stringify({ format: 'embaug.dataset-state', version: 3 })), new Date().toISOString());
    assert.throws(() => restoreVersion(db, 'v', 'f3f3'), /unknown format \(embaug\.dataset-state v3\).*newer embaug/);
    assert.equal(getDataset(db, 'v').version, ds.version, 'a refused restore changes nothing');
  });

  it('export then import is hash-identical, as folder and as WebDataset shards', async () => {
    editDataset(db, 'v', [{ op: 'exclude', images: [5, 6] }, { op: 'relabel', images: [7], label: 2 }]);
    const want = getDataset(db, 'v').version;
    for (const format of ['folder', 'wds'] as const) {
      const out = join(tmp.dir, `export-${format}`);
      const e = await exportDataset(db, 'v', { format, out });
      assert.equal(e.images, 158);
      const back = await importDataset(db, { kind: format, path: out, name: `v-${format}` });
      assert.equal(back.version, want, `${format} re-import`);
    }
  });

  it('runs keep the version they used', async () => {
    const before = getDataset(db, 'v').version;
    const h = await trainHead(db, { backbone: 'tiny-resnet18-w4', dataset: 'v', train: { split: 'train' }, test: { split: 'test' }, mode: 'none', config: { epochs: 1 } });
    const ten = selectImages(db, getDataset(db, 'v').id).find((r) => r.idx === 10)!;
    editDataset(db, 'v', [{ op: 'relabel', images: [10], label: (ten.label + 1) % 10 }]);
    const { getRun } = await import('../../electron/engine/runs/index.js');
    assert.equal(getRun(db, h.runId).datasetVersion, before);
    assert.notEqual(getDataset(db, 'v').version, before);
  });
});

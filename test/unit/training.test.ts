import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { openDb, type Db } from '../../electron/engine/db.js';
import { MlpModel } from '../../electron/engine/native/index.js';
import { discoverFamilies, reproduce, type ReproducePhases } from '../../electron/engine/paper/index.js';
import { settings, study } from '../../electron/engine/study/index.js';
import { editDataset, listDatasets, selectImages } from '../../electron/engine/datasets/index.js';
import type { ReproductionSummary } from '../../electron/ipc/contract.js';
import { createHandler } from '../../electron/ipc/handlers.js';
import { JobRunner } from '../../electron/jobs/runner.js';
import { artifactBytes, bestEpoch, compareRuns, getRun, listRuns, runMetrics } from '../../electron/engine/runs/index.js';
import { drawTheta, parseAug } from '../../electron/engine/augment/index.js';
import { cacheStats, embeddingsFor } from '../../electron/engine/embeddings/index.js';
import type { Progress } from '../../electron/engine/jobs/index.js';
import { applyOmega, checkOmegaRun, compositeFidelity, embedView, latestOmega, loadOmega, omegaSeenCount, trainHead, trainOmega, unpackParams, unpackShiftModels, viewSeed } from '../../electron/engine/training/index.js';
import { EmbaugError } from '../../electron/engine/errors.js';
import { miniCifar10, tinyFamily } from '../helpers/fixtures.js';
import { MODELS, REPO, rng, tempDir } from '../helpers/shared.js';

describe('Ω and Ψ training', () => {
  it('a plain Ω (D→2D→D, ReLU) recovers a known linear map on synthetic embeddings', async () => {
    const r = rng(1);
    const d = 16, n = 2000;
    const A = new Float32Array(d * d).map(() => (r() * 2 - 1) / Math.sqrt(d));
    const z = new Float32Array(n * d).map(() => r() * 2 - 1);
    const y = new Float32Array(n * d);
    for (let i = 0; i < n; i++) for (let o = 0; o < d; o++) for (let k = 0; k < d; k++) y[i * d + o] += A[o * d + k] * z[i * d + k];
    const m = new MlpModel([d, 2 * d, d], { seed: 3 });
    const h = await m.train({ x: z.subarray(0, 1800 * d), targets: y.subarray(0, 1800 * d), val: { x: z.subarray(1800 * d), targets: y.subarray(1800 * d) }, batch: 64, epochs: 60, seed: 1, optimizer: { kind: 'adam', lr: 3e-3 } });
    const identity = (() => { let s = 0; for (let i = 1800 * d; i < n * d; i++) s += (z[i] - y[i]) ** 2; return s / (200 * d); })();
    assert.ok(h.at(-1)!.valLoss! < 0.01 * identity, `held-out MSE ${h.at(-1)!.valLoss} vs identity ${identity}`);
  });
});

/**
 * A reproduction's or a study's progress: first the images of every view it extracts, never
 * going back (an extraction's progress moves it; a view found cached counts at once), then its
 * trainings.
 */
function phases(seen: Progress[], trainings: number, job: 'reproduce' | 'study' = 'reproduce') {
  const views = seen.filter((p) => p.stage === `${job}: extracting views`);
  const train = seen.filter((p) => p.stage === `${job}: training`);
  assert.ok(views.length >= 2 && train.length > 0, [...new Set(seen.map((p) => p.stage))].join());
  assert.ok(seen.lastIndexOf(views.at(-1)!) < seen.indexOf(train[0]), 'the views are extracted before any training');
  assert.equal(views[0].unit, 'images');
  for (let i = 1; i < views.length; i++) assert.ok(views[i].done >= views[i - 1].done, `went back from ${views[i - 1].done} to ${views[i].done}`);
  assert.equal(views.at(-1)!.done, views[0].total);
  assert.deepEqual([train[0].done, train.at(-1)!.done, train.at(-1)!.total], [0, trainings, trainings]);
}

describe('the paper pipeline on a small real subset', () => {
  const tmp = tempDir();
  const dataDir = join(tmp.dir, 'data');
  const modelsDir = join(tmp.dir, 'models');
  let db: Db;
  before(async () => {
    await miniCifar10(dataDir, 600, 200);
    tinyFamily(modelsDir);
    db = openDb(join(tmp.dir, 'db.sqlite'));
  });
  after(() => {
    db.close();
    tmp.cleanup();
  });

  it('reproduce runs every scenario and writes Table II, Eq. 8, curves and the report', async () => {
    const pct = (a: { mean: number; std: number }) => `${(100 * a.mean).toFixed(2)} ± ${(100 * a.std).toFixed(2)}`;
    const out = join(tmp.dir, 'out');
    const seen: Progress[] = [];
    const r = await reproduce(db, { out, modelsDir, dataDir, epochs: 2, seeds: 2, subset: 100, augSets: ['hflip', 'vflip', 'both'], omega: { epochs: 2 }, threads: 2, onProgress: (p) => p.stage.startsWith('reproduce') && seen.push(p) });
    // Per base: Ωs for hflip and vflip, 2 seeds × (none + 2 modes × 3 sets).
    phases(seen, 2 * (2 + 2 * (1 + 2 * 3)));
    // On a fresh database every image the extraction phase counts is one Φ pass it stores:
    // Ω's pairs for hflip and vflip share the identity view, which counted twice before.
    assert.equal(seen.find((p) => p.stage === 'reproduce: extracting views')!.total, cacheStats(db).totalVectors);
    const t = JSON.parse(readFileSync(join(out, 'table2.json'), 'utf8'));
    const arch = t.architectures.resnet18;
    for (const k of ['base_none', 'base_hflip', 'none_none', 'none_pixel', 'none_embed', 'pixel_none', 'pixel_pixel', 'pixel_embed']) {
      assert.ok(arch[k].runs.length === (k.startsWith('base') ? 1 : 2), k);
      assert.ok(arch[k].mean > 0.2 && arch[k].mean <= 1, `${k} = ${arch[k].mean}`);
      assert.ok(arch[k].std >= 0);
    }
    for (const s of ['vflip', 'both']) for (const k of ['none_pixel', 'none_embed', 'pixel_pixel', 'pixel_embed']) assert.equal(arch[s][k].runs.length, 2);
    assert.equal(t.protocol, 'cifar10-split');
    const eq8 = JSON.parse(readFileSync(join(out, 'eq8.json'), 'utf8'));
    assert.ok(eq8.perSampleSeconds.phi > eq8.perSampleSeconds.omega);
    assert.deepEqual(eq8.predicted.map((p: { N: number }) => p.N), [1, 2, 4]);
    assert.ok(eq8.measured.pixelSeconds > 0 && eq8.measured.embedSeconds > 0);
    // Against cached views the predicted saving is at most (N+1)×.
    assert.ok(eq8.cachedPixel.measured.seconds > 0);
    for (const p of eq8.cachedPixel.predicted as { N: number; ratio: number }[]) assert.ok(p.ratio > 0 && p.ratio <= p.N + 1, JSON.stringify(p));
    const md = readFileSync(join(out, 'table2.md'), 'utf8');
    // Where the wall time went: every phase ran, and together they fit in it.
    const ph = t.phases as ReproducePhases;
    for (const k of ['extracting', 'training', 'eq8'] as const) assert.ok(ph[k] > 0, `phase ${k} took ${ph[k]} s`);
    assert.equal(ph.compute, 0, 'no few-shot compute timing in a full-data run');
    assert.ok(ph.extracting + ph.training + ph.eq8 <= r.seconds, JSON.stringify({ ph, seconds: r.seconds }));
    assert.match(md, /Wall time: [\d.]+ min \(extracting views [\d.]+ min, training [\d.]+ min, Eq\. 8's timings [\d.]+ min\)/);
    // The paper's figures beside ours, in a column of their own, then compared by shape.
    const paper = JSON.parse(readFileSync(join(MODELS, '..', 'paper', 'table2.json'), 'utf8')).architectures.resnet18;
    assert.match(md, /\| scenario \| resnet18 \| resnet18 \(paper\) \|/);
    assert.ok(md.includes(`| [Pixel]-[Embed] | ${pct(arch.pixel_embed)} | ${(100 * paper.pixel_embed).toFixed(2)} |`), md);
    assert.match(md, /## The paper's Table II beside ours: the shape/);
    assert.match(md, /\*\*resnet18\*\*: of the 6 pairs of scenarios, our order agrees with the paper's in \d/);
    assert.match(readFileSync(join(out, 'report.html'), 'utf8'), /resnet18 \(paper\)/);
    // The Paper view's data: the paper's numbers and the comparison by shape, from the handler.
    const jobs = new JobRunner({ db, dbPath: join(tmp.dir, 'db.sqlite'), threads: 1, settings: { modelsDir, dataDir, outDir: tmp.dir } });
    try {
      const latest = await createHandler({ db, dbPath: join(tmp.dir, 'db.sqlite'), jobs, mode: 'web', version: 'test' })('paper:latest', undefined);
      assert.ok(latest.ok);
      const v = latest.value as ReproductionSummary;
      assert.equal(v.runId, r.runId);
      assert.equal(v.table2!.paper.architectures.resnet18.none_none, paper.none_none);
      assert.deepEqual(v.paperShape.map((x) => x.arch), ['resnet18']);
      assert.deepEqual(v.paperShape[0].rows.map((x) => x.key), ['pixel_none', 'pixel_pixel', 'pixel_embed']);
      assert.equal(v.paperShape[0].order.length, 6);
    } finally {
      await jobs.close();
    }
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    assert.match(html, /<svg[^>]+aria-label="Fig\. 3[\s\S]*aria-label="Fig\. 4/);
    // Finished when opened from the file system: real tables, the scenarios' labels in the legends, numbered axes.
    assert.ok(!html.includes('<pre>'), 'no raw Markdown');
    assert.match(html, /<table>\s*<thead>\s*<tr>\s*<th>scenario<\/th>/);
    assert.match(html, new RegExp(`<td>\\[Pixel\\]-\\[Embed\\]</td>\\s*<td[^>]*>${pct(arch.pixel_embed).replace(/[.+]/g, '\\$&')}</td>`));
    assert.match(html, /<text[^>]*>\[Pixel\]-\[Embed\]<\/text>/);
    assert.ok(!/<text[^>]*>(none|pixel)_(none|pixel|embed)<\/text>/.test(html), 'legends use the labels, not the keys');
    assert.ok((html.match(/<text[^>]*text-anchor="end">[\d.]+<\/text>/g) ?? []).length >= 6, 'numbered y axes');
    assert.match(html, /<th>cost per sample<\/th>/);
    const heads = readFileSync(join(out, 'curves', 'heads.csv'), 'utf8').trim().split('\n');
    assert.equal(heads[0], 'architecture,base,aug_set,scenario,seed,epoch,train_loss,train_acc,test_acc');
    assert.equal(heads.length - 1, 2 * 2 * (1 + 2 * 3) * 2);
    assert.ok(existsSync(join(out, 'curves', 'omega.csv')));

    // Tracking: a parent run, every child in its group with config, per-epoch metrics, artifacts.
    const top = getRun(db, r.runId);
    assert.equal(top.status, 'completed');
    assert.equal(top.protocol, 'cifar10-split');
    const kids = listRuns(db, { group: `reproduce-${r.runId}` });
    const headRuns = kids.filter((k) => k.kind === 'head');
    assert.equal(headRuns.length, 2 * 2 * (1 + 2 * 3));
    for (const h of headRuns) {
      assert.equal(h.status, 'completed');
      assert.equal(h.parentId, r.runId);
      assert.ok(h.datasetVersion && h.backboneSha && h.host.cpu && h.config.epochs === 2);
      assert.deepEqual(runMetrics(db, h.id).test_acc.map((p) => p.step), [1, 2]);
      assert.equal(unpackParams(artifactBytes(db, h.id, 'head.f32'), [32, 1024, 128, 5]).length, 6);
    }
    assert.equal(kids.filter((k) => k.kind === 'omega').length, 4);
    const best = bestEpoch(db, headRuns[0].id, 'test_acc')!;
    assert.ok(best.step >= 1 && best.value === Math.max(...runMetrics(db, headRuns[0].id).test_acc.map((p) => p.value)));
    const cmp = compareRuns(db, [headRuns[0].id, headRuns[1].id]);
    assert.ok(cmp.differs.includes('mode') || cmp.differs.includes('augs'));
  });

  it('the few-shot protocol: each seed its own subset, the stochastic forms and the noise baseline as rows', async () => {
    const out = join(tmp.dir, 'fewshot');
    const seen: Progress[] = [];
    const r = await reproduce(db, { out, modelsDir, dataDir, perClass: 4, epochs: 12, seeds: 2, subset: 100, omega: { epochs: 2 }, threads: 2, onProgress: (p) => p.stage.startsWith('reproduce') && seen.push(p) });
    const plan = ['none', 'pixel', 'embed', 'embed-residual-gauss', 'embed-shift-gauss', 'embed-knn-shift', 'embed-generator', 'embed-mdn', 'noise', 'mixup', 'isda'];
    phases(seen, 2 * (1 + 2 * plan.length));
    assert.equal(r.perClass, 4);
    assert.deepEqual(r.augSets, ['hflip']);
    for (const prefix of ['none', 'pixel'])
      for (const k of plan) assert.equal((r.architectures.resnet18[`${prefix}_${k}`] as { runs: number[] }).runs.length, 2, `${prefix}_${k}`);
    const heads = listRuns(db, { group: `reproduce-${r.runId}`, kind: 'head' });
    assert.equal(heads.length, 2 * 2 * plan.length);
    // Each seed draws its own 4 images per class; the scenarios of one seed share them.
    const trainOf = (h: (typeof heads)[0]) => h.config.train as { perClass: number; draw: number };
    assert.deepEqual([...new Set(heads.map((h) => trainOf(h).draw))].sort(), [0, 1]);
    assert.ok(heads.every((h) => trainOf(h).perClass === 4));
    // Evaluated every 10 epochs and after the last.
    assert.deepEqual(runMetrics(db, heads[0].id).test_acc.map((p) => p.step), [10, 12]);
    assert.ok(heads.some((h) => h.config.sampling === 'knn-shift') && ['noise', 'mixup', 'isda'].every((mode) => heads.some((h) => h.config.mode === mode)));
    assert.ok(heads.filter((h) => h.config.mode === 'isda').every((h) => h.config.isdaLambda === 0.5), 'ISDA with its fixed λ0');
    const md = readFileSync(join(out, 'table2.md'), 'utf8');
    assert.match(md, /# Few-shot Table II — 4 target training images per class/);
    assert.match(md, /\| \[Embed\] Ω \+ Gaussian residual \| \d+\.\d\d ± \d+\.\d\d \|/);
    assert.match(md, /How close each form of Ω comes/);
    const om = r.omega.resnet18.none.hflip;
    assert.ok(om.sampling && om.sampling['residual-gauss'].energyScore > 0 && om.sampling.mdn.energyScore > 0 && om.sampling.identity.mse > 0);
    assert.match(md, /\| \[Embed\] mixture density network \(likelihood\) \| \d+\.\d\d ± /);
    // Two trainings at a time (the default at threads: 2, Ωs beside heads, each single-threaded)
    // or one after the other: the schedule changes no number, nor the order of anything.
    const sequential = await reproduce(db, { out: join(tmp.dir, 'fewshot-sequential'), modelsDir, dataDir, perClass: 4, epochs: 12, seeds: 2, subset: 100, omega: { epochs: 2 }, threads: 2, concurrency: 1 });
    assert.deepEqual(sequential.architectures, r.architectures);
    assert.deepEqual(sequential.curves, r.curves);
    // Ω's summaries in the same order, as the files write them (run ids and timings aside).
    const numbers = (x: unknown) => JSON.stringify(x, (k, v) => (k === 'runId' || k === 'seconds' ? undefined : v));
    assert.equal(numbers(sequential.omega), numbers(r.omega));
    // One base alone gives that base's numbers unchanged, and its report has only its section.
    const oneOut = join(tmp.dir, 'fewshot-none-base');
    const one = await reproduce(db, { out: oneOut, modelsDir, dataDir, perClass: 4, epochs: 12, seeds: 2, subset: 100, omega: { epochs: 2 }, threads: 2, bases: ['none'] });
    const noneRows = (a: Record<string, unknown>) => Object.fromEntries(Object.entries(a).filter(([k]) => k.startsWith('none_') || k === 'base_none'));
    assert.deepEqual(one.architectures.resnet18, noneRows(r.architectures.resnet18));
    assert.ok(!Object.keys(one.architectures.resnet18).some((k) => k.startsWith('pixel_')));
    const oneMd = readFileSync(join(oneOut, 'table2.md'), 'utf8');
    assert.match(oneMd, /## Base trained with no augmentation/);
    assert.doesNotMatch(oneMd, /## Base trained with hflip/);
    await assert.rejects(reproduce(db, { out: join(tmp.dir, 'bad-base'), modelsDir, dataDir, perClass: 4, seeds: 1, subset: 100, bases: ['vflip'] }),
      (e: unknown) => e instanceof EmbaugError && e.code === 'E_ARG' && /unknown base "vflip": expected none or hflip/.test(e.message));
  });

  it('refuses what cannot run before any work: counts below one, too few base images for Ω, a range given backwards, a status that does not exist', async () => {
    const runsBefore = listRuns(db, { limit: 1_000_000 }).length;
    const vectors = () => (db.prepare('SELECT count(*) AS n FROM embeddings').get() as { n: number }).n;
    const vectorsBefore = vectors();
    const base = { out: join(tmp.dir, 'refused'), modelsDir, dataDir, subset: 100, threads: 2 };
    for (const [opts, message] of [[{ epochs: 0 }, /^epochs must be at least 1, got 0$/], [{ seeds: 0 }, /^seeds must be at least 1, got 0$/], [{ subset: 2.5 }, /^subset must be an integer, got number 2.5$/], [{ perClass: -1 }, /^perClass must be at least 1, got -1$/]] as const)
      await assert.rejects(reproduce(db, { ...base, ...opts }), (e: unknown) => (e instanceof RangeError || e instanceof TypeError) && message.test(e.message));
    // With an Ω on one base image, either side of its held-out split is empty: it failed after
    // the extractions, deep in the trainer ("val.x must hold whole rows"), before.
    await assert.rejects(reproduce(db, { ...base, omegaImages: 1 }),
      (e: unknown) => e instanceof EmbaugError && e.code === 'E_ARG' && /^Ω needs base images to train on and others held out to measure it, and the 1 base images of its selection give [01] and [01] .*a larger --subset or --omega-images/.test(e.message));
    await assert.rejects(study(db, { ...base, seeds: 0 }), /^RangeError: seeds must be at least 1, got 0$/);
    // A repeated budget or base was trained twice and reported in two columns.
    await assert.rejects(study(db, { ...base, budgets: [10, 10] }), /^RangeError: budgets gives 10 twice: give each once$/);
    await assert.rejects(reproduce(db, { ...base, bases: ['hflip', 'hflip'] }), /^RangeError: bases gives hflip twice: give each once$/);
    await assert.rejects(study(db, { ...base, lrs: [0.01, -1] }), (e: unknown) => e instanceof EmbaugError && e.code === 'E_ARG' && /learning rate -1 is not a positive number/.test(e.message));
    // A head's or an Ω's settings, before their embeddings are extracted (then, after).
    const selection = { split: 'train', classes: [5, 6, 7, 8, 9], limit: 50, balanced: true };
    await assert.rejects(trainHead(db, { backbone: 'tiny-none', dataset: 'cifar10', train: selection, test: { ...selection, split: 'test' }, mode: 'none', config: { epochs: 0 } }), /^RangeError: epochs must be in \[1, 100000\], got 0$/);
    await assert.rejects(trainOmega(db, { backbone: 'tiny-none', dataset: 'cifar10', selection, aug: 'hflip', config: { lr: -1 } }), /^RangeError: optimizer.lr must be in \[0, 100\], got -1$/);
    await assert.rejects(trainOmega(db, { backbone: 'tiny-none', dataset: 'cifar10', selection: { ...selection, limit: 5 }, aug: 'hflip' }), (e: unknown) => e instanceof EmbaugError && e.code === 'E_ARG' && /the 5 base images of its selection give \d+ and 0 .*embaug omega: a larger --limit/.test(e.message));
    await assert.rejects(trainOmega(db, { backbone: 'tiny-none', dataset: 'cifar10', selection, aug: 'hflip', config: { lr: 0 } }), /^RangeError: optimizer.lr must be above 0 \(at 0 nothing is learned\), got 0$/);
    // A head of one class, or of one image, has nothing to tell apart.
    for (const train of [{ ...selection, classes: [5] }, { ...selection, limit: 1 }])
      await assert.rejects(trainHead(db, { backbone: 'tiny-none', dataset: 'cifar10', train, test: { ...selection, split: 'test' }, mode: 'none' }), (e: unknown) => e instanceof EmbaugError && e.code === 'E_ARG' && /^A head tells classes apart, and the training selection of "cifar10" \(split "train", classes [\d, ]+, (50 images|1 image)\) holds images of 1 class: choose at least two classes/.test(e.message));
    // A test selection with no images (class 9's test images excluded, then included again).
    const ds = listDatasets(db).find((d) => d.name === 'cifar10')!;
    editDataset(db, ds.id, [{ op: 'exclude', images: { split: 'test', label: 9 } }]);
    try {
      await assert.rejects(trainHead(db, { backbone: 'tiny-none', dataset: 'cifar10', train: selection, test: { split: 'test', classes: [9] }, mode: 'none' }), (e: unknown) => e instanceof EmbaugError && e.code === 'E_ARG' && /^The test selection of "cifar10" \(split "test", classes 9\) holds no images: choose classes with test images/.test(e.message));
    } finally {
      editDataset(db, ds.id, [{ op: 'include', images: { split: 'test', label: 9 } }]);
    }
    assert.equal(listDatasets(db).find((d) => d.name === 'cifar10')!.version, ds.version);
    // An unknown way of sampling Ω fell through to the last branch of the draws, the MDN's, made only for "mdn".
    await assert.rejects(trainHead(db, { backbone: 'tiny-none', dataset: 'cifar10', train: selection, test: { ...selection, split: 'test' }, mode: 'embed', augs: ['hflip'], sampling: 'gaussian' as 'mean' }), /^RangeError: sampling must be one of "mean", "residual-gauss", "shift-gauss", "knn-shift", "generator", "mdn", got "gaussian"$/);
    assert.equal(listRuns(db, { limit: 1_000_000 }).length, runsBefore, 'no run was recorded');
    assert.equal(vectors(), vectorsBefore, 'nothing was extracted');
    assert.throws(() => parseAug('rotate:min=20,max=10'), /^RangeError: rotate:min is 20, above max 10: give the range lowest first, e\.g\. rotate:min=10,max=20$/);
    assert.equal(parseAug('rotate:min=10,max=10').deterministic, true);
    assert.throws(() => listRuns(db, { status: 'finished' as 'completed' }), /^RangeError: status must be one of "running", "completed", "failed", "cancelled", "interrupted", got "finished"$/);
  });

  it('the trainings as one graph: heads without Ω train beside the Ωs, a head in embed mode only once its Ωs are trained', async () => {
    // One Ω, made slow (many epochs) against 1-epoch heads: while it trains on one core the other
    // takes the heads in plan order, so a head in embed mode scheduled without waiting for its
    // Ω would start before the Ω is trained.
    const r = await reproduce(db, { out: join(tmp.dir, 'graph'), modelsDir, dataDir, epochs: 1, seeds: 1, subset: 100, bases: ['hflip'], augSets: ['hflip'], omega: { epochs: 400 }, threads: 2 });
    const kids = listRuns(db, { group: `reproduce-${r.runId}` });
    const omegas = kids.filter((k) => k.kind === 'omega'), heads = kids.filter((k) => k.kind === 'head');
    assert.equal(omegas.length, 1);
    const omegaEnd = Math.max(...omegas.map((o) => Date.parse(o.endedAt!)));
    const omegaStart = Math.min(...omegas.map((o) => Date.parse(o.startedAt)));
    const embed = heads.filter((h) => h.config.mode === 'embed'), others = heads.filter((h) => h.config.mode !== 'embed');
    assert.ok(embed.length === 1 && others.length > 0 && heads.every((h) => h.status === 'completed'));
    for (const h of embed) assert.ok(Date.parse(h.startedAt) >= omegaEnd, `${h.name} started before its Ωs were trained`);
    assert.ok(others.some((h) => Date.parse(h.startedAt) < omegaEnd && Date.parse(h.endedAt!) > omegaStart), 'no head trained beside the Ωs');
  });

  it('a validation split carved from a draw: disjoint from its fit part, the draw their union, each seed its own', () => {
    const sel = { split: 'train', classes: [5, 6, 7, 8, 9], perClass: 8 };
    const ds = listDatasets(db).find((d) => d.name === 'cifar10')!.id;
    const shas = (x: object) => selectImages(db, ds, x).map((i) => i.sha256);
    for (const draw of [0, 1]) {
      const all = shas({ ...sel, draw }), fit = shas({ ...sel, draw, holdOut: { perClass: 2, part: 'fit' } }), val = shas({ ...sel, draw, holdOut: { perClass: 2, part: 'val' } });
      assert.equal(val.length, 10);
      assert.equal(fit.length, 30);
      assert.ok(val.every((v) => !fit.includes(v)));
      assert.deepEqual([...fit, ...val].sort(), [...all].sort());
      const byClass = new Map<number, number>();
      for (const i of selectImages(db, ds, { ...sel, draw, holdOut: { perClass: 2, part: 'val' } })) byClass.set(i.label, (byClass.get(i.label) ?? 0) + 1);
      assert.deepEqual([...byClass.values()], [2, 2, 2, 2, 2]);
    }
    assert.notDeepEqual(shas({ ...sel, draw: 0, holdOut: { perClass: 2, part: 'val' } }), shas({ ...sel, draw: 1, holdOut: { perClass: 2, part: 'val' } }));
  });

  it('study: budgets drawn per seed, lr and epochs chosen on validation splits of the training images only, gains against their noise, compute, the files', async () => {
    const out = join(tmp.dir, 'study');
    const lrs = [0.01, 0.05];
    const seen: Progress[] = [];
    const r = await study(db, { out, modelsDir, dataDir, budgets: [4, 8], seeds: 3, bases: ['hflip'], augs: ['hflip', 'crop'], arms: ['none', 'pixel', 'embed', 'mixup'], lrs, epochs: 6, omegaImages: 100, omega: { epochs: 2, draws: 2 }, threads: 2, onProgress: (p) => seen.push(p) });
    // Per budget: none and mixup once, pixel and embed per augmentation.
    assert.equal(r.cells.length, 2 * (2 + 2 * 2));
    // Two Ωs, then per cell 3 draws × 2 lrs to choose on and 3 seeds.
    phases(seen, 2 + r.cells.length * (3 * lrs.length + 3), 'study');
    // Pixel heads with the random crop draw through Φ every epoch: that shows in the count of
    // trainings only, not as extractions flickering beside it.
    assert.deepEqual([...new Set(seen.slice(seen.findIndex((p) => p.stage === 'study: training')).map((p) => p.stage))], ['study: training']);
    const heads = listRuns(db, { group: `study-${r.runId}`, kind: 'head' });
    // Selection: 3 draws × 2 lrs per cell (budgets up to 50); then 3 seeds per cell.
    assert.equal(heads.length, r.cells.length * (3 * lrs.length + 3));
    for (const c of r.cells) {
      assert.equal(c.accuracy.runs.length, 3);
      assert.ok(lrs.includes(c.chosen.lr));
      const best = Math.max(...c.selection.flatMap((s) => s.curve.map(([, v]) => v)));
      assert.equal(c.chosen.valAccuracy, best, 'the chosen point is the best of the validation curves');
      assert.ok(c.selection.some((s) => s.lr === c.chosen.lr && s.curve.some(([e, v]) => e === c.chosen.epochs && v === best)));
      for (const id of c.runIds) {
        const h = getRun(db, id);
        assert.equal(h.status, 'completed');
        assert.equal(h.config.epochs, c.chosen.epochs);
        assert.equal((h.config.optimizer as { lr: number }).lr, c.chosen.lr);
        assert.equal((h.config.train as { perClass: number }).perClass, c.budget);
      }
      const n = 5 * (c.budget as number);
      assert.equal(c.trainImages, n);
      assert.equal(c.phiPasses, c.arm !== 'pixel' ? n : c.aug === 'hflip' ? 2 * n : n * (1 + c.chosen.epochs));
      assert.ok(c.seconds > 0 && c.computeSeconds >= c.seconds);
    }
    // The selection heads never saw the test split: they fit on one part of a draw and score the other.
    const selection = heads.filter((h) => (h.config.test as { holdOut?: unknown }).holdOut);
    assert.equal(selection.length, r.cells.length * 3 * lrs.length);
    for (const h of selection) {
      const train = h.config.train as { holdOut: { part: string }; split: string }, test = h.config.test as { holdOut: { part: string }; split: string };
      assert.deepEqual([train.split, train.holdOut.part, test.split, test.holdOut.part], ['train', 'fit', 'train', 'val']);
    }
    assert.ok(heads.filter((h) => !(h.config.test as { holdOut?: unknown }).holdOut).every((h) => (h.config.test as { split: string }).split === 'test'));
    const s = settings(r);
    assert.equal(s.length, 2 * 2);
    for (const x of s) {
      assert.deepEqual(x.arms.map((a) => a.arm).sort(), ['embed', 'mixup']);
      for (const a of x.arms) assert.equal(a.recovered === null, !x.pixel.real);
    }
    assert.deepEqual(r.omega.map((o) => o.aug), ['hflip', 'crop:pad=4+hflip:p=0.5']);
    assert.ok(r.omega.every((o) => o.invariance > 0 && o.invariance <= 1));
    const md = readFileSync(join(out, 'study.md'), 'utf8');
    assert.match(md, /## Findings\n\n- Pixel augmentation during fine-tuning gains/);
    assert.match(md, /Goal (not )?met/);
    assert.match(md, /\| none \| \d+\.\d\d ± \d+\.\d\d \| \d+\.\d\d ± \d+\.\d\d \|/);
    assert.match(readFileSync(join(out, 'report.html'), 'utf8'), /<svg[^>]+aria-label="resnet18, base hflip, crop:pad=4\+hflip:p=0\.5"/);
    assert.equal(JSON.parse(readFileSync(join(out, 'study.json'), 'utf8')).cells.length, r.cells.length);
    // Ωs and heads train one per core; one at a time, every number is the same.
    const one = await study(db, { out: join(tmp.dir, 'study-sequential'), modelsDir, dataDir, budgets: [4, 8], seeds: 3, bases: ['hflip'], augs: ['hflip', 'crop'], arms: ['none', 'pixel', 'embed', 'mixup'], lrs, epochs: 6, omegaImages: 100, omega: { epochs: 2, draws: 2 }, threads: 2, concurrency: 1 });
    assert.deepEqual(one.cells.map((c) => [c.chosen, c.accuracy.runs]), r.cells.map((c) => [c.chosen, c.accuracy.runs]));
    assert.deepEqual(one.omega.map((o) => [o.chosen, o.cosine, o.heldOutMse]), r.omega.map((o) => [o.chosen, o.cosine, o.heldOutMse]));
    await assert.rejects(study(db, { out, modelsDir, dataDir, budgets: [1] }), /budget 1 is not a whole number of images per class of at least 2/);
    await assert.rejects(study(db, { out, modelsDir, dataDir, arms: ['pixel'] }), /must include "none"/);
  });

  it('the few-shot protocol with random augmentations: a conditional Ω, fresh draws, and each set in its own tables', async () => {
    const out = join(tmp.dir, 'fewshot-random');
    const sets = ['crop:pad=4+hflip:p=0.5', 'rotate'];
    const r = await reproduce(db, { out, modelsDir, dataDir, perClass: 2, epochs: 3, seeds: 2, subset: 100, augSets: sets, omegaImages: 60, omega: { epochs: 2, draws: 2 }, threads: 2 });
    const om = r.omega.resnet18.none['rotate:max=15,min=-15'];
    assert.deepEqual(om.candidates.map((c) => c.form), ['residual', 'conditional', 'conditional-fourier']);
    assert.equal(om.thetaCurve!.reduce((a, b) => a + b.pairs, 0) % 2, 0);
    for (const set of sets) assert.equal((r.architectures.resnet18[set] as Record<string, { runs: number[] }>).pixel_pixel.runs.length, 2, set);
    const md = readFileSync(join(out, 'table2.md'), 'utf8');
    for (const set of sets) assert.match(md, new RegExp(`## Base trained with hflip; fine-tuning augmentation ${set.replace(/[+.]/g, '\\$&')}`));
    assert.match(md, /## Ω of random augmentations: held-out MSE against the size of the draw \|θ\|/);
    const composite = r.composites.resnet18.hflip['crop:pad=4+hflip:p=0.5'];
    assert.deepEqual(composite.chain.parts.map((p) => p.aug), ['crop:pad=4', 'hflip']);
    assert.equal(composite.direct.runId, r.omega.resnet18.hflip['crop:pad=4+hflip:p=0.5'].runId, 'the composite\'s own Ω is the one its heads use');
    assert.match(md, /## Composite augmentations: their own Ω against the chain of their ops' Ωs/);
    assert.match(md, /\| \[Pixel\] rotate through Φ \| \d+\.\d\d ± \d+\.\d\d \|/);
    // Pixel mode drew through Φ every epoch: one cached set of the target images per epoch and seed.
    const draws = db.prepare("SELECT count(DISTINCT seed) AS n FROM embedding_sets WHERE aug_key = 'rotate:max=15,min=-15'").get() as { n: number };
    assert.ok(draws.n >= 2 * 3, `${draws.n} cached draws`);
  });

  it('a head with a stochastic Ω form is reproducible with its seed and differs by seed', async () => {
    const om = await trainOmega(db, { backbone: 'tiny-none', dataset: 'cifar10', selection: { split: 'train', classes: [0, 1, 2, 3, 4], limit: 200, balanced: true }, aug: 'hflip', config: { epochs: 2, stochastic: true } });
    const req = { backbone: 'tiny-none', dataset: 'cifar10', train: { split: 'train', classes: [5, 6, 7, 8, 9], perClass: 5, draw: 0 }, test: { split: 'test', classes: [5, 6, 7, 8, 9], limit: 50 }, mode: 'embed' as const, augs: ['hflip'], omegas: { hflip: om }, config: { epochs: 3, seed: 7 } };
    for (const sampling of ['residual-gauss', 'shift-gauss', 'knn-shift', 'generator', 'mdn'] as const) {
      const a = await trainHead(db, { ...req, sampling }), b = await trainHead(db, { ...req, sampling });
      assert.deepEqual(a.params, b.params, sampling);
      const c = await trainHead(db, { ...req, sampling, config: { epochs: 3, seed: 8 } });
      assert.notDeepEqual(a.params, c.params, sampling);
    }
    // The paper's mean Ω and a stochastic form give different heads from the same seed.
    assert.notDeepEqual((await trainHead(db, { ...req, sampling: 'mean' })).params, (await trainHead(db, { ...req, sampling: 'shift-gauss' })).params);
    // Without the stochastic fit (the default: the paper's Table II does not need it) it costs nothing extra.
    const plain = await trainOmega(db, { backbone: 'tiny-none', dataset: 'cifar10', selection: { split: 'train', classes: [0, 1, 2, 3, 4], limit: 200, balanced: true }, aug: 'hflip', config: { epochs: 2 } });
    assert.equal(plain.stochastic, null);
    assert.deepEqual(plain.params, om.params);
    // An Ω without its shift models says what is missing.
    await assert.rejects(trainHead(db, { ...req, omegas: { hflip: { chosen: om.chosen, sizes: om.sizes, params: om.params, runId: om.runId } }, sampling: 'knn-shift' }), /sampling "knn-shift" draws from the shift models of the Ω for "hflip".*embaug omega --stochastic/);
    assert.throws(() => checkOmegaRun(db, plain.runId, getRun(db, plain.runId).backboneSha!, 'hflip', 'residual-gauss'), /the Ω of run \d+ was trained without them/);
    checkOmegaRun(db, om.runId, getRun(db, om.runId).backboneSha!, 'hflip', 'residual-gauss');
    // Its shift models are kept with its run: loaded by another connection (as a later process
    // would), every array is the same, bit for bit, and so is every head drawn from them.
    const other = openDb(join(tmp.dir, 'db.sqlite'));
    try {
      const loaded = loadOmega(other, om.runId);
      const floats = (m: unknown): Buffer[] => (m instanceof Float32Array ? [Buffer.from(m.buffer, m.byteOffset, m.byteLength)] : Array.isArray(m) ? m.flatMap(floats) : m && typeof m === 'object' ? Object.values(m).flatMap(floats) : []);
      assert.ok(loaded.stochastic);
      assert.deepEqual(floats(loaded.stochastic), floats(om.stochastic));
      assert.ok(floats(om.stochastic).length >= 10);
      for (const sampling of ['residual-gauss', 'knn-shift', 'mdn'] as const)
        assert.deepEqual((await trainHead(other, { ...req, omegas: { hflip: loaded }, sampling })).params, (await trainHead(db, { ...req, sampling })).params, sampling);
      assert.equal(loadOmega(other, plain.runId).stochastic, null);
      // Looking for an Ω to draw from passes over the newer one without shift models.
      const sha = getRun(db, om.runId).backboneSha!;
      assert.equal(latestOmega(other, sha, 'hflip'), plain.runId);
      assert.equal(latestOmega(other, sha, 'hflip', [], true), om.runId);
    } finally {
      other.close();
    }
    assert.throws(() => unpackShiftModels(new Uint8Array(8), { mean: { f32: [0, 3] } }), /an array at 0 of 3 values ends past the blob's 2/);
  });

  it('discovering families says which manifests it left out, and why', async () => {
    const dir = join(tmp.dir, 'models-mixed');
    mkdirSync(dir);
    for (const f of ['tiny-none', 'tiny-hflip']) for (const ext of ['onnx', 'json']) copyFileSync(join(modelsDir, `${f}.${ext}`), join(dir, `${f}.${ext}`));
    writeFileSync(join(dir, 'broken.json'), '{"input": {"name": "image"}}');
    writeFileSync(join(dir, 'other.json'), readFileSync(join(dir, 'tiny-none.json'), 'utf8').replace('"cifar10-split"', '"paper"'));
    const lines: string[] = [];
    const fams = await discoverFamilies(db, dir, 'cifar10-split', undefined, (l) => lines.push(l));
    assert.equal(fams.length, 1);
    assert.ok(lines.some((l) => /broken\.json left out: The backbone description broken\.json is not valid: input\.height/.test(l)), lines.join('\n'));
    assert.ok(lines.some((l) => /other\.json left out: protocol paper, not cifar10-split/.test(l)), lines.join('\n'));
    // An architecture asked for that no model has is named with those there are, beside one that exists too.
    const arch = fams[0].architecture;
    await assert.rejects(discoverFamilies(db, dir, 'cifar10-split', [arch, 'resnet19']), (e: unknown) => e instanceof EmbaugError && e.code === 'E_ARG' && e.message === `No model in ${dir} is of architecture "resnet19" for protocol cifar10-split: its architectures are ${arch}; give some of those to --archs.`);
  });

  it('an Ω trained on a head\'s test images is refused, naming the Ω and the overlap', async () => {
    const clean = await trainOmega(db, { backbone: 'tiny-none', dataset: 'cifar10', selection: { split: 'train', classes: [0, 1, 2, 3, 4], limit: 40, balanced: true }, aug: 'hflip', config: { epochs: 1 } });
    const leaky = await trainOmega(db, { backbone: 'tiny-none', dataset: 'cifar10', selection: { split: 'test', classes: [5, 6, 7, 8, 9], limit: 40, balanced: true }, aug: 'hflip', config: { epochs: 1 } });
    const req = { backbone: 'tiny-none', dataset: 'cifar10', train: { split: 'train', classes: [5, 6, 7, 8, 9], limit: 50, balanced: true }, test: { split: 'test', classes: [5, 6, 7, 8, 9] }, mode: 'embed' as const, augs: ['hflip'], config: { epochs: 1 } };
    await assert.rejects(trainHead(db, { ...req, omegas: { hflip: leaky } }), (e: unknown) => e instanceof EmbaugError && e.code === 'E_LEAK' && new RegExp(`The Ω for "hflip" \\(run ${leaky.runId}\\) was trained on 40 of this head's \\d+ test images`).test(e.message));
    assert.equal(listRuns(db, { kind: 'head' }).find((r) => (r.config.omegaRuns as number[] | undefined)?.[0] === leaky.runId)?.status, 'failed');
    // One trained on the base task's classes is used; the newest Ω that saw none of the test images is the one picked.
    assert.ok((await trainHead(db, { ...req, omegas: { hflip: clean } })).testAccuracy > 0);
    const test = selectImages(db, listDatasets(db).find((d) => d.name === 'cifar10')!.id, req.test);
    const sha = listRuns(db, { kind: 'omega' }).find((r) => r.id === leaky.runId)!.backboneSha!;
    assert.equal(latestOmega(db, sha, 'hflip'), leaky.runId);
    assert.equal(latestOmega(db, sha, 'hflip', test), clean.runId);
    // What an Ω saw is kept with its run: images moved out of its selection afterwards still count.
    const dsId = listDatasets(db).find((d) => d.name === 'cifar10')!.id;
    const seen = selectImages(db, dsId, { split: 'test', classes: [5, 6, 7, 8, 9], limit: 40, balanced: true }).slice(0, 3);
    const shas = seen.map((i) => i.sha256);
    const move = (split: string) => editDataset(db, dsId, [{ op: 'move', images: seen.map((i) => i.idx), split }]);
    assert.equal(omegaSeenCount(db, leaky.runId, shas), 3);
    move('train');
    assert.equal(omegaSeenCount(db, leaky.runId, shas), 3);
    assert.equal(omegaSeenCount(db, clean.runId, shas), 0);
    move('test');
    // An Ω from before that record is judged by what its selection holds now, by data set
    // version: images moved out of it no longer count, and back in, count again.
    db.prepare("DELETE FROM artifacts WHERE run_id = ? AND name = 'seen.sha256'").run(leaky.runId);
    assert.equal(omegaSeenCount(db, leaky.runId, shas), 3);
    move('train');
    assert.equal(omegaSeenCount(db, leaky.runId, shas), 0);
    move('test');
    assert.equal(omegaSeenCount(db, leaky.runId, shas), 3);
  });

  it('a head run is reproducible with its seed', async () => {
    const req = { backbone: 'tiny-none', dataset: 'cifar10', train: { split: 'train', classes: [5, 6, 7, 8, 9], limit: 100, balanced: true }, test: { split: 'test', classes: [5, 6, 7, 8, 9] }, mode: 'pixel' as const, augs: ['hflip'], config: { epochs: 2, seed: 7 }, threads: 2 };
    const a = await trainHead(db, req), b = await trainHead(db, req);
    assert.deepEqual(a.params, b.params);
    assert.deepEqual(a.history.map((h) => h.valAccuracy), b.history.map((h) => h.valAccuracy));
    const c = await trainHead(db, { ...req, config: { epochs: 2, seed: 8 } });
    assert.notDeepEqual(a.params, c.params);
  });

  it('queued jobs: heads side by side on a core each, a job that needs every core waits its turn, and the schedule changes no number', async () => {
    const dataset = listDatasets(db).find((d) => d.name === 'cifar10')!.id;
    const head = (seed: number) => ({ backbone: 'tiny-none', dataset, classes: [5, 6, 7, 8, 9], mode: 'pixel' as const, augs: ['hflip'], epochs: 2, lr: 0.01, optimizer: 'sgd' as const, batch: 32, seed, limit: 100 });
    const settings = { modelsDir, dataDir, outDir: tmp.dir };
    const dbPath = join(tmp.dir, 'db.sqlite');
    const jobs = new JobRunner({ db, dbPath, threads: 2, settings });
    const order: string[] = [];
    jobs.onEvent((e) => e.type !== 'progress' && e.type !== 'epoch' && e.type !== 'log' && order.push(`${e.type} ${e.job.id}`));
    try {
      const a = jobs.start('head', head(1)), b = jobs.start('head', head(2));
      const x = jobs.start('extract', { dataset, backbone: 'tiny-none', augs: ['vflip'], split: 'test', limit: 50 });
      const y = jobs.start('head', head(3));
      assert.deepEqual([a, b, x, y].map((j) => j.status), ['running', 'running', 'queued', 'queued']);
      // First come, first served: the later head does not overtake the job that needs both cores.
      assert.equal(jobs.cancel(y.id).status, 'cancelled');
      const [da, db2, dx, dy] = await Promise.all([a, b, x, y].map((j) => jobs.wait(j.id)));
      assert.deepEqual([da, db2, dx, dy].map((j) => j.status), ['completed', 'completed', 'completed', 'cancelled'], JSON.stringify([da.error, db2.error, dx.error]));
      const at = (ev: string) => order.indexOf(ev);
      assert.ok(at(`started ${x.id}`) > at(`finished ${a.id}`) && at(`started ${x.id}`) > at(`finished ${b.id}`), order.join('\n'));
      assert.equal(at(`started ${y.id}`), -1);
      // The same head alone on a one-core runner: the same weights, bit for bit.
      const alone = new JobRunner({ db, dbPath, threads: 1, settings });
      try {
        const s = await alone.wait(alone.start('head', head(1)).id);
        assert.equal(s.status, 'completed');
        const w = (j: typeof s) => artifactBytes(db, (j.result as { runId: number }).runId, 'head.f32');
        assert.deepEqual(w(s), w(da));
        assert.notDeepEqual(w(da), w(db2));
      } finally {
        await alone.close();
      }
    } finally {
      await jobs.close();
    }
  });

  it('Ω reports its fidelity against the identity, and random pixel augmentations go through Φ every epoch', async () => {
    const om = await trainOmega(db, { backbone: 'tiny-hflip', dataset: 'cifar10', selection: { split: 'train', classes: [0, 1, 2, 3, 4] }, aug: 'vflip', config: { epochs: 3, form: 'auto' } });
    assert.deepEqual(om.candidates.map((c) => c.form), ['plain', 'residual']);
    for (const c of om.candidates) assert.equal(c.flagged, c.heldOutMse >= c.identityMse);
    assert.ok(om.fidelity.identityCosine > 0 && om.fidelity.cosine <= 1);
    if (om.chosen === 'identity') assert.equal(applyOmega(om, new Float32Array(32).fill(1))[0], 1);
    const before = (db.prepare('SELECT count(*) AS n FROM embedding_sets').get() as { n: number }).n;
    const h = await trainHead(db, { backbone: 'tiny-hflip', dataset: 'cifar10', train: { split: 'train', classes: [5, 6, 7, 8, 9], limit: 50 }, test: { split: 'test', classes: [5, 6, 7, 8, 9], limit: 50 }, mode: 'pixel', augs: ['crop:pad=3'], config: { epochs: 3 } });
    assert.equal(h.history.length, 3);
    assert.equal((db.prepare('SELECT count(*) AS n FROM embedding_sets').get() as { n: number }).n - before, 3, 'one random draw per epoch');
  });

  it('a conditional Ω of a random augmentation: several draws per image, fidelity against |θ|, fresh views every epoch', async () => {
    const selection = { split: 'train', classes: [0, 1, 2, 3, 4], limit: 300, balanced: true };
    const auto = await trainOmega(db, { backbone: 'tiny-none', dataset: 'cifar10', selection, aug: 'rotate:min=-30,max=30', config: { epochs: 3, draws: 3 } });
    assert.deepEqual(auto.candidates.map((c) => c.form), ['residual', 'conditional', 'conditional-fourier']);
    assert.equal(auto.draws, 3);
    const sets = db.prepare('SELECT seed FROM embedding_sets WHERE aug_key = ? ORDER BY seed').all(parseAug('rotate:min=-30,max=30').key) as { seed: number }[];
    assert.deepEqual(sets.map((r) => r.seed), [0, 1, 2], 'three draws, each cached under its own seed');
    const curve = auto.thetaCurve!;
    assert.deepEqual(curve.map((b) => b.lo), [0, 0.25, 0.5, 0.75]);
    assert.equal(curve.reduce((a, b) => a + b.pairs, 0) % 3, 0, 'every draw of a held-out image is held out');
    assert.ok(curve[3].identity! > curve[0].identity!, 'a bigger rotation moves the embedding further');
    assert.ok(curve.every((b) => b.unconditional !== null && b.conditional !== null));
    await assert.rejects(trainOmega(db, { backbone: 'tiny-none', dataset: 'cifar10', selection, aug: 'hflip', config: { form: 'conditional' } }), /"hflip" draws none: use form auto, plain or residual/);

    const om = await trainOmega(db, { backbone: 'tiny-none', dataset: 'cifar10', selection, aug: 'rotate:min=-30,max=30', config: { epochs: 3, draws: 3, form: 'conditional-fourier' } });
    assert.equal(om.chosen, 'conditional-fourier');
    assert.equal(om.sizes[0], 32 + 5 * 3, 'z and five features of each of rotate\'s three θ slots');
    const train = { split: 'train', classes: [5, 6, 7, 8, 9], perClass: 5, draw: 0 };
    const z = await embeddingsFor(db, { dataset: 'cifar10', backbone: 'tiny-none', ...train, aug: 'identity' });
    assert.throws(() => applyOmega(om, z.x), /conditional Ω predicts the view of a given draw θ/);
    const spec = parseAug('rotate:min=-30,max=30');
    const shas = z.images.map((i) => i.sha256);
    const view = (epoch: number) => embedView(om, spec, z.x, shas, viewSeed(7, epoch));
    assert.notDeepEqual(view(0), view(1), 'each epoch draws new θ');
    assert.deepEqual(view(1), view(1), 'and the same again for the same seed and epoch');
    // The views are Ω at the θ pixel mode draws for that epoch.
    assert.deepEqual(view(1), applyOmega(om, z.x, drawTheta(spec, viewSeed(7, 1), shas)));
    const req = { backbone: 'tiny-none', dataset: 'cifar10', train, test: { split: 'test', classes: [5, 6, 7, 8, 9], limit: 50 }, mode: 'embed' as const, augs: [spec.key], omegas: { [spec.key]: om }, config: { epochs: 3, seed: 7 } };
    const a = await trainHead(db, req), b = await trainHead(db, req);
    assert.deepEqual(a.params, b.params);
    assert.notDeepEqual(a.params, (await trainHead(db, { ...req, config: { epochs: 3, seed: 8 } })).params);
  });

  it('a composite augmentation: its own Ω against the chain of its ops\' Ωs, on the same held-out pairs', async () => {
    const selection = { split: 'train', classes: [0, 1, 2, 3, 4], limit: 200, balanced: true };
    const c = await compositeFidelity(db, { backbone: 'tiny-none', dataset: 'cifar10', selection, aug: 'crop:pad=4+hflip:p=0.5', config: { epochs: 3, draws: 2 } });
    assert.deepEqual(c.chain.parts.map((p) => p.aug), ['crop:pad=4', 'hflip']);
    assert.equal(c.pairs % 2, 0);
    assert.ok(c.pairs > 0 && c.identityMse > 0 && c.direct.heldOutMse > 0 && c.chain.heldOutMse > 0);
    assert.ok(c.direct.heldOutMse <= c.identityMse, 'auto never does worse than the identity');
    await assert.rejects(compositeFidelity(db, { backbone: 'tiny-none', dataset: 'cifar10', selection, aug: 'rotate' }), /a single op: a composite joins two or more/);
  });

  it('a run whose process crashes is marked interrupted at the next start', () => {
    const path = join(tmp.dir, 'crash.sqlite');
    const script = `
      import { openDb } from ${JSON.stringify(join(REPO, 'electron/engine/db.ts'))};
      import { startRun } from ${JSON.stringify(join(REPO, 'electron/engine/runs/index.ts'))};
      const db = openDb(${JSON.stringify(path)});
      startRun(db, { kind: 'head', name: 'doomed', config: {} });
      process.kill(process.pid, 'SIGKILL');`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO, encoding: 'utf8' });
    assert.equal(r.signal, 'SIGKILL', r.stderr);
    const db2 = openDb(path);
    const run = listRuns(db2)[0];
    assert.equal(run.name, 'doomed');
    assert.equal(run.status, 'interrupted');
    assert.match(run.error!, /stopped before it finished/);
    db2.close();
  });
});

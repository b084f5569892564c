import assert from 'node:assert/strict';
import { copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';

import { addBackbone, embeddingCandidates, truncateClassifier } from '../../electron/engine/backbones/index.js';
import { importDataset } from '../../electron/engine/datasets/index.js';
import { openDb, type Db } from '../../electron/engine/db.js';
import { EmbaugError } from '../../electron/engine/errors.js';
import { decodeModel, encodeModel } from '../../electron/engine/export/onnx.js';
import { decodeSafetensors } from '../../electron/engine/export/safetensors.js';
import { exportRun } from '../../electron/engine/export/export.js';
import { createHandler } from '../../electron/ipc/handlers.js';
import { JobRunner } from '../../electron/jobs/runner.js';
import { listRuns, startRun } from '../../electron/engine/runs/index.js';
import { applyOmega, trainHead, trainOmega } from '../../electron/engine/training/index.js';
import { drawTheta, parseAug } from '../../electron/engine/augment/index.js';
import { embeddingsFor } from '../../electron/engine/embeddings/index.js';
import { samples, writeShard } from '../helpers/fixtures.js';
import { MODELS, WDS, golden, tempDir } from '../helpers/shared.js';

const TINY = join(MODELS, 'tiny-resnet18-w4.onnx');

describe('exporting heads and Ω', () => {
  const tmp = tempDir();
  let db: Db;
  let headRun: number, omegaRun: number, params: Float32Array[];
  before(async () => {
    const wds = join(tmp.dir, 'wds');
    mkdirSync(wds);
    await writeShard(join(wds, 'train-000000.tar'), await samples('train-000000.tar', 400));
    await writeShard(join(wds, 'test-000000.tar'), await samples('test-000000.tar', 200));
    copyFileSync(join(WDS, 'classes.txt'), join(wds, 'classes.txt'));
    db = openDb(join(tmp.dir, 'db.sqlite'));
    await importDataset(db, { kind: 'wds', path: wds, name: 'mini' });
    await addBackbone(db, { onnxPath: TINY });
    const h = await trainHead(db, { backbone: 'tiny-resnet18-w4', dataset: 'mini', train: { split: 'train', classes: [5, 6, 7, 8, 9] }, test: { split: 'test', classes: [5, 6, 7, 8, 9] }, mode: 'none', config: { epochs: 3 } });
    headRun = h.runId;
    params = h.params;
    omegaRun = (await trainOmega(db, { backbone: 'tiny-resnet18-w4', dataset: 'mini', selection: { split: 'train', classes: [0, 1, 2, 3, 4] }, aug: 'vflip', config: { epochs: 3, form: 'residual' } })).runId;
  });
  after(() => {
    db.close();
    tmp.cleanup();
  });

  it('writes Ψ as ONNX, merged Φ+Ψ ONNX and safetensors with a manifest, each verified', async () => {
    const out = join(tmp.dir, 'export');
    const r = await exportRun(db, { runId: headRun, outDir: out, name: 'target-head', merged: true });
    assert.deepEqual(readdirSync(out).sort(), ['target-head.json', 'target-head.merged.onnx', 'target-head.onnx', 'target-head.safetensors']);
    assert.equal(r.checks.length, 2);
    for (const c of r.checks) {
      assert.ok(c.maxAbsDiff < 1e-4, `${c.what}: ${c.maxAbsDiff}`);
      assert.equal(c.argmaxAgreement, 1);
    }
    const m = decodeModel(readFileSync(join(out, 'target-head.onnx')));
    const meta = Object.fromEntries(m.metadataProps!.map((p) => [p.key, p.value]));
    assert.deepEqual(JSON.parse(meta.classes!), ['dog', 'frog', 'horse', 'ship', 'truck']);
    assert.equal(meta.embedding_dim, '32');
    assert.equal(meta.backbone_sha256, JSON.parse(readFileSync(join(MODELS, 'tiny-resnet18-w4.json'), 'utf8')).sha256);
    assert.equal(meta.run_id, String(headRun));
    const st = decodeSafetensors(readFileSync(join(out, 'target-head.safetensors')));
    assert.deepEqual(st.tensors['fc0.weight'].shape, [1024, 32]);
    assert.deepEqual(st.tensors['fc2.bias'].data, params[5]);
    const manifest = JSON.parse(readFileSync(join(out, 'target-head.json'), 'utf8'));
    assert.deepEqual(manifest.layer_sizes, [32, 1024, 128, 5]);
    // The merged model classifies real images on its own: image in, probabilities out.
    const g = golden();
    const px = new Float32Array(g.images.length * 3072);
    g.images.forEach((im, i) => { for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) px[i * 3072 + c * 1024 + p] = im.pixels[p * 3 + c] / 255; });
    const s = await ort.InferenceSession.create(join(out, 'target-head.merged.onnx'));
    const o = await s.run({ image: new ort.Tensor('float32', px, [g.images.length, 3, 32, 32]) });
    assert.deepEqual(o.probabilities.dims, [g.images.length, 5]);
  });

  it('exports Ω as ONNX (embedding in, augmented embedding out)', async () => {
    const out = join(tmp.dir, 'omega');
    const r = await exportRun(db, { runId: omegaRun, outDir: out, name: 'omega-vflip' });
    assert.ok(r.checks[0].maxAbsDiff < 1e-4);
    const s = await ort.InferenceSession.create(join(out, 'omega-vflip.onnx'));
    assert.deepEqual(s.outputNames, ['augmented_embedding']);
  });

  it('exports a conditional Ω with two inputs, embedding and θ, verified in ONNX Runtime on the θ its augmentation draws', async () => {
    const aug = 'crop:pad=4+rotate:min=-20,max=20';
    for (const form of ['conditional', 'conditional-fourier'] as const) {
      const om = await trainOmega(db, { backbone: 'tiny-resnet18-w4', dataset: 'mini', selection: { split: 'train', classes: [0, 1, 2, 3, 4] }, aug, config: { epochs: 2, draws: 2, form } });
      const out = join(tmp.dir, form);
      const r = await exportRun(db, { runId: om.runId, outDir: out, name: 'omega-cond' });
      assert.ok(r.checks[0].maxAbsDiff < 1e-4, JSON.stringify(r.checks));
      const s = await ort.InferenceSession.create(join(out, 'omega-cond.onnx'));
      assert.deepEqual(s.inputNames, ['embedding', 'theta']);
      // The file alone reproduces the engine: Ω(z, θ) for θ the engine draws, here with seed 5.
      const z = await embeddingsFor(db, { dataset: 'mini', backbone: 'tiny-resnet18-w4', split: 'train', classes: [0], limit: 20, aug: 'identity' });
      const theta = drawTheta(parseAug(aug), 5, z.images.map((i) => i.sha256));
      const got = (await s.run({ embedding: new ort.Tensor('float32', z.x, [20, 32]), theta: new ort.Tensor('float32', theta, [20, 6]) })).augmented_embedding.data as Float32Array;
      const want = applyOmega(om, z.x, theta);
      assert.ok(got.every((v, i) => Math.abs(v - want[i]) < 1e-4));
      const manifest = JSON.parse(readFileSync(join(out, 'omega-cond.json'), 'utf8'));
      assert.equal(manifest.form, form);
      assert.equal(manifest.theta_dim, 6);
      assert.equal(manifest.embedding_dim, 32);
    }
  });

  it('refuses names that would write outside the destination, and runs that have no weights', async () => {
    await assert.rejects(exportRun(db, { runId: headRun, outDir: join(tmp.dir, 'x'), name: '../escape' }), (e: unknown) => e instanceof EmbaugError && e.code === 'E_ARG' && /no folders/.test(e.message));
    assert.ok(!existsSync(join(tmp.dir, 'escape.onnx')));
    const extractRun = listRuns(db, { kind: 'extract' })[0].id;
    await assert.rejects(exportRun(db, { runId: extractRun, outDir: join(tmp.dir, 'x') }), /is an extract run without weights/);
    // An Ω that came out as the identity keeps no weights, and says so in those words.
    const identity = startRun(db, { kind: 'omega', name: 'Ω hflip (identity)', backboneSha: listRuns(db, { kind: 'omega' })[0].backboneSha, config: { aug: 'hflip' } });
    await identity.wrap(async () => ({ chosen: 'identity' }), (s) => s);
    await assert.rejects(exportRun(db, { runId: identity.id, outDir: join(tmp.dir, 'x') }), (e: unknown) => e instanceof EmbaugError && e.code === 'E_EXPORT' && new RegExp(`^Run ${identity.id}'s Ω is the identity \\(no trained form beat it on held-out pairs\\), so there are no weights to export`).test(e.message));
  });

  it('an export into the kernel\'s /proc fails at once with what to do, as a job that never blocks the server', async () => {
    // Node 20's recursive mkdirSync spun forever here, on the thread that called it.
    await assert.rejects(exportRun(db, { runId: headRun, outDir: '/proc/embaug-export/sub' }), (e: unknown) => e instanceof EmbaugError && e.code === 'E_EXPORT' && /Could not create the folder \/proc\/embaug-export\/sub: ENOENT.*choose another folder/.test(e.message));
    const jobs = new JobRunner({ db, dbPath: join(tmp.dir, 'db.sqlite'), threads: 1, settings: { modelsDir: tmp.dir, dataDir: tmp.dir, outDir: tmp.dir } });
    const handle = createHandler({ db, dbPath: join(tmp.dir, 'db.sqlite'), jobs, mode: 'web', version: 'test' });
    try {
      // Web mode has no native folder dialog and says what to use; the desktop app's is its own.
      const noDialog = await handle('dialog:folder', undefined);
      assert.ok(!noDialog.ok && /no native folder dialog in web mode: use the workbench's folder browser/.test(noDialog.error.message));
      const noFileDialog = await handle('dialog:file', { extensions: ['onnx'] });
      assert.ok(!noFileDialog.ok && /no native file dialog in web mode: use the workbench's file browser/.test(noFileDialog.error.message));
      let asked: string[] = [];
      const desktop = createHandler({ db, dbPath: join(tmp.dir, 'db.sqlite'), jobs, mode: 'electron', version: 'test', pickFolder: async () => tmp.dir, pickFile: async (ext) => ((asked = ext), join(tmp.dir, 'm.onnx')) });
      assert.deepEqual(await desktop('dialog:folder', undefined), { ok: true, value: tmp.dir });
      assert.deepEqual(await desktop('dialog:file', { extensions: ['onnx'] }), { ok: true, value: join(tmp.dir, 'm.onnx') });
      assert.deepEqual(asked, ['onnx']);
      // A request the schema refuses never reaches the dialog.
      assert.ok(!(await desktop('dialog:file', { extensions: ['../x'] })).ok);
      const started = await handle('jobs:start', { kind: 'export', args: { runId: headRun, outDir: '/proc/embaug-export/sub' } });
      assert.ok(started.ok);
      // The server answers while the job runs, and the job ends failed with the engine's words.
      assert.ok((await handle('datasets:list', undefined)).ok);
      const done = await jobs.wait((started.value as { id: string }).id);
      assert.equal(done.status, 'failed');
      assert.match(done.error!.message, /Could not create the folder \/proc\/embaug-export\/sub/);
      // A job that outlives its time limit is failed, and the runner goes on.
      const slow = new JobRunner({ db, dbPath: join(tmp.dir, 'db.sqlite'), threads: 1, settings: { modelsDir: tmp.dir, dataDir: tmp.dir, outDir: tmp.dir }, timeouts: { export: 0.001 } });
      try {
        const t = await slow.wait(slow.start('export', { runId: headRun, outDir: join(tmp.dir, 'slow') }).id);
        assert.equal(t.status, 'failed');
        assert.equal(t.error?.code, 'E_TIMEOUT');
        assert.match(t.error!.message, /took longer than 0.001 s and was stopped.*choose a folder on a local disk/);
      } finally {
        await slow.close();
      }
      const ok = await jobs.wait(jobs.start('export', { runId: headRun, outDir: join(tmp.dir, 'by-job') }).id);
      assert.equal(ok.status, 'completed', JSON.stringify(ok.error));
      assert.ok(existsSync(join(tmp.dir, 'by-job', `head-run${headRun}.onnx`)));
    } finally {
      await jobs.close();
    }
  });

  it('never writes through a link, never replaces a file without force, and cleans up only what it created', async () => {
    const out = join(tmp.dir, 'safe');
    mkdirSync(out);
    // A link named like the export's file, pointing outside the folder: the target is untouched.
    const victim = join(tmp.dir, 'victim.txt');
    writeFileSync(victim, 'keep me');
    symlinkSync(victim, join(out, 'head.onnx'));
    await assert.rejects(exportRun(db, { runId: headRun, outDir: out, name: 'head' }), (e: unknown) => e instanceof EmbaugError && e.code === 'E_EXISTS' && /head\.onnx exists already.*--force/.test(e.message));
    assert.equal(readFileSync(victim, 'utf8'), 'keep me');
    assert.deepEqual(readdirSync(out), ['head.onnx']);
    // With force, the link itself is replaced by the new file; what it pointed to stays as it was.
    await exportRun(db, { runId: headRun, outDir: out, name: 'head', force: true });
    assert.equal(readFileSync(victim, 'utf8'), 'keep me');
    assert.ok(lstatSync(join(out, 'head.onnx')).isFile());
    assert.deepEqual(readdirSync(out).sort(), ['head.json', 'head.onnx', 'head.safetensors']);
    // A user's file of another export name stays when a later file of this export cannot be
    // written (a folder where the .safetensors would go): refused before anything is written.
    const out2 = join(tmp.dir, 'safe2');
    mkdirSync(join(out2, 'mine.safetensors'), { recursive: true });
    writeFileSync(join(out2, 'mine.onnx'), 'the user\'s own model');
    await assert.rejects(exportRun(db, { runId: headRun, outDir: out2, name: 'mine', force: true }), (e: unknown) => e instanceof EmbaugError && e.code === 'E_EXPORT' && /mine\.safetensors is a folder/.test(e.message));
    assert.equal(readFileSync(join(out2, 'mine.onnx'), 'utf8'), 'the user\'s own model');
    assert.deepEqual(readdirSync(out2).sort(), ['mine.onnx', 'mine.safetensors']);
    // Not a folder: a clear E_EXPORT naming the path, no stack trace, nothing left behind.
    writeFileSync(join(tmp.dir, 'a-file'), 'x');
    await assert.rejects(exportRun(db, { runId: headRun, outDir: join(tmp.dir, 'a-file', 'sub') }), (e: unknown) => e instanceof EmbaugError && e.code === 'E_EXPORT' && e.message.includes(join(tmp.dir, 'a-file')));
    // A folder that is a link to elsewhere is followed once, on purpose (the user chose it).
    const real = join(tmp.dir, 'real-out');
    mkdirSync(real);
    symlinkSync(real, join(tmp.dir, 'linked-out'));
    const r = await exportRun(db, { runId: headRun, outDir: join(tmp.dir, 'linked-out'), name: 'h', safetensors: false });
    assert.deepEqual(readdirSync(real), ['h.onnx']);
    assert.equal(r.files[0].path, join(real, 'h.onnx'));
    assert.ok(readlinkSync(join(tmp.dir, 'linked-out')));
    // No temporary file is left anywhere.
    for (const d of [out, out2, real]) assert.ok(readdirSync(d).every((f) => !f.endsWith('.partial')), d);
  });
});

describe('any ONNX classifier as a backbone', () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());
  // The tiny backbone with its `embedding` output dropped: a plain classifier (logits only).
  const classifier = () => {
    const m = decodeModel(readFileSync(TINY));
    m.graph!.output = m.graph!.output!.filter((o) => o.name === 'logits');
    const p = join(tmp.dir, 'classifier.onnx');
    writeFileSync(p, encodeModel(m));
    return p;
  };
  const run = async (path: string, output: string) => {
    const g = golden();
    const px = new Float32Array(g.images.length * 3072);
    g.images.forEach((im, i) => { for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) px[i * 3072 + c * 1024 + p] = im.pixels[p * 3 + c] / 255; });
    const s = await ort.InferenceSession.create(path);
    return { got: (await s.run({ image: new ort.Tensor('float32', px, [8, 3, 32, 32]) }))[output].data as Float32Array, want: g.images.flatMap((im) => im.embedding) };
  };

  it('lists candidates, defaulting to the input of the last Gemm, and recovers the original embedding', async () => {
    const path = classifier();
    const c = embeddingCandidates(readFileSync(path));
    assert.equal(c.default, 'embedding');
    assert.ok(c.candidates.some((x) => /GlobalAveragePool/.test(x.role)));
    const out = join(tmp.dir, 'cut.onnx');
    const m = await truncateClassifier({ onnxPath: path, outPath: out, input: { normalisation: 'inside the graph' } });
    assert.equal(m.embedding.dim, 32);
    assert.equal(m.logits?.output, 'logits');
    const { got, want } = await run(out, m.embedding.output);
    want.forEach((v, i) => assert.ok(Math.abs(got[i] - v) < 1e-4));
    const db = openDb(join(tmp.dir, 'db.sqlite'));
    const b = await addBackbone(db, { onnxPath: out, manifest: m, name: 'imported' });
    assert.equal(b.dim, 32);
    db.close();
  });

  it('pools a rank-4 feature map into the same embedding', async () => {
    const path = classifier();
    const gap = decodeModel(readFileSync(path)).graph!.node!.find((n) => n.opType === 'GlobalAveragePool')!;
    const m = await truncateClassifier({ onnxPath: path, outPath: join(tmp.dir, 'cut4.onnx'), tensor: gap.input![0], input: {} });
    assert.match(m.embedding.taken_at as string, /^global average of /);
    const { got, want } = await run(join(tmp.dir, 'cut4.onnx'), m.embedding.output);
    want.forEach((v, i) => assert.ok(Math.abs(got[i] - v) < 1e-4));
  });

  it('refuses models that do not fit, saying why', async () => {
    const path = classifier();
    await assert.rejects(truncateClassifier({ onnxPath: path, outPath: join(tmp.dir, 'x.onnx'), tensor: 'nope', input: {} }), /No node produces "nope"\. Candidates: /);
    const dyn = decodeModel(readFileSync(path));
    dyn.graph!.input![0].type!.tensorType!.shape!.dim = [{ dimParam: 'N' }, { dimValue: 3 }, { dimParam: 'H' }, { dimParam: 'W' }];
    writeFileSync(join(tmp.dir, 'dyn.onnx'), encodeModel(dyn));
    await assert.rejects(truncateClassifier({ onnxPath: join(tmp.dir, 'dyn.onnx'), outPath: join(tmp.dir, 'x.onnx'), input: {} }), /dynamic spatial size .* give the size/);
    const two = decodeModel(readFileSync(path));
    two.graph!.input!.push({ ...two.graph!.input![0], name: 'second' });
    writeFileSync(join(tmp.dir, 'two.onnx'), encodeModel(two));
    await assert.rejects(truncateClassifier({ onnxPath: join(tmp.dir, 'two.onnx'), outPath: join(tmp.dir, 'x.onnx'), input: {} }), /has 2 inputs \(image, second\)/);
  });
});

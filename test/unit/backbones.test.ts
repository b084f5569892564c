import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';

import { addBackbone, forwardFlops, getBackbone, listBackbones, onnxThreads, preprocessOf, setOnnxIdle, type OnnxLanes } from '../../electron/engine/backbones/index.js';
import { decodeToSize } from '../../electron/engine/datasets/index.js';
import { openDb, type Db } from '../../electron/engine/db.js';
import { EmbaugError } from '../../electron/engine/errors.js';
import { encodeModel } from '../../electron/engine/export/index.js';
import { model, tensor, valueInfo } from '../../electron/engine/export/onnx.js';
import { augment } from '../../electron/engine/native/index.js';
import { cifarResnet18Graph } from '../../electron/engine/paper/heavy.js';
import { samples } from '../helpers/fixtures.js';
import { MODELS, REPO, golden, tempDir } from '../helpers/shared.js';

const TINY = join(MODELS, 'tiny-resnet18-w4.onnx');
const tinyManifest = () => JSON.parse(readFileSync(join(MODELS, 'tiny-resnet18-w4.json'), 'utf8'));

describe('backbones', () => {
  const tmp = tempDir();
  let db: Db;
  before(() => (db = openDb(join(tmp.dir, 'db.sqlite'))));
  after(() => {
    db.close();
    tmp.cleanup();
  });

  it('registers an ONNX model with its manifest, keyed by the file sha256, checked in ONNX Runtime', async () => {
    const b = await addBackbone(db, { onnxPath: TINY });
    assert.equal(b.sha256, tinyManifest().sha256);
    assert.equal(b.dim, 32);
    assert.equal(b.name, 'tiny-resnet18-w4');
    assert.equal(getBackbone(db, b.sha256.slice(0, 10)).name, b.name);
    assert.equal(listBackbones(db).length, 1);
    // Adding the same file again is a no-op.
    assert.equal((await addBackbone(db, { onnxPath: TINY, name: 'again' })).name, 'tiny-resnet18-w4');
  });

  it("accepts the user's own description and refuses ones that do not fit the graph", async () => {
    const own = { input: { name: 'image', height: 32, width: 32, normalisation: 'inside the graph' }, embedding: { output: 'embedding' } };
    const bad = async (m: unknown, re: RegExp) => {
      const other = join(tmp.dir, 'candidate.onnx');
      copyFileSync(join(MODELS, 'inception-w8-none.onnx'), other);
      await assert.rejects(addBackbone(db, { onnxPath: other, manifest: m }), (e: unknown) => (e instanceof EmbaugError || e instanceof TypeError) && re.test((e as Error).message));
    };
    await bad({ ...own, input: { ...own.input, name: 'pixels' } }, /has no input "pixels" \(inputs: image\)/);
    await bad({ ...own, input: { ...own.input, height: 64, width: 64 } }, /is \[N,3,32,32\] but the description says NCHW \[N,3,64,64\]/);
    await bad({ ...own, embedding: { output: 'features' } }, /has no output "features" \(outputs: embedding, logits\)/);
    await bad({ ...own, embedding: { output: 'embedding', dim: 99 } }, /embedding.dim says 99 but the output has 128/);
    await bad({ input: { height: 32 } }, /input.name: .*; embedding/);
    const inc = join(tmp.dir, 'inception.onnx');
    copyFileSync(join(MODELS, 'inception-w8-none.onnx'), inc);
    const b = await addBackbone(db, { onnxPath: inc, manifest: own, name: 'my-inception' });
    assert.equal(b.dim, 128);
    assert.equal(b.manifest.architecture, 'custom');
  });

  it('refuses a manifest whose sha256 names another file, and a file that is not ONNX', async () => {
    const wrong = { ...tinyManifest(), sha256: '0'.repeat(64) };
    await assert.rejects(addBackbone(db, { onnxPath: join(MODELS, 'vgg16-w16-none.onnx'), manifest: wrong }), /do not belong together/);
    const junk = join(tmp.dir, 'junk.onnx');
    writeFileSync(junk, 'this is not a model');
    await assert.rejects(addBackbone(db, { onnxPath: junk, manifest: tinyManifest() }), (e: unknown) => e instanceof EmbaugError && (e.code === 'E_MODEL') && /not a loadable ONNX model|do not belong/.test(e.message));
    await assert.rejects(addBackbone(db, { onnxPath: join(tmp.dir, 'missing.onnx') }), /No ONNX file/);
    await assert.rejects(addBackbone(db, { onnxPath: tmp.dir }), (e: unknown) => e instanceof EmbaugError && e.code === 'E_ARG' && /is a folder: give the \.onnx file/.test(e.message));
  });

  it('finds the description of a model file named without .onnx beside it, as NAME.json, not in the model file itself', async () => {
    const bare = join(tmp.dir, 'tiny-model');
    copyFileSync(join(MODELS, 'tiny-resnet18-w4.onnx'), bare);
    await assert.rejects(addBackbone(db, { onnxPath: bare }), /No description for tiny-model: expected .*tiny-model\.json/);
    copyFileSync(join(MODELS, 'tiny-resnet18-w4.json'), `${bare}.json`);
    assert.equal((await addBackbone(db, { onnxPath: bare })).dim, 32);
  });

  it('maps the contract to the kernel: range, mean/std outside or inside the graph', () => {
    const inGraph = preprocessOf(tinyManifest());
    assert.deepEqual([inGraph.scale, inGraph.mean, inGraph.std], [1 / 255, [0, 0, 0], [1, 1, 1]]);
    const m = { ...tinyManifest(), input: { ...tinyManifest().input, normalisation: 'by embaug', range: [-1, 1] } };
    const p = preprocessOf(m);
    assert.equal(p.scale, 2 / 255);
    assert.deepEqual(p.mean, [0.4914 + 1, 0.4822 + 1, 0.4465 + 1]);
    assert.notEqual(p.key, inGraph.key);
  });
});

describe('golden check (tiny-resnet18-w4.golden.json)', () => {
  const g = golden();

  it('our decoder gives the golden pixels within a few levels', async () => {
    const shardSamples = await samples('test-000000.tar', 5000);
    for (const im of g.images) {
      const s = shardSamples.find((x) => x.key === im.key)!;
      assert.ok(s, `${im.key} is in the shard`);
      assert.equal(s.label, im.label);
      const px = await decodeToSize([{ bytes: s.jpeg, format: 'jpeg', width: 32, height: 32 }], 32, 32);
      let worst = 0;
      for (let i = 0; i < px.length; i++) worst = Math.max(worst, Math.abs(px[i] - im.pixels[i]));
      assert.ok(worst <= 3, `${im.key}: max pixel difference ${worst}`);
    }
  });

  it('embeddings and logits of the given pixels through our normalisation and ONNX Runtime within 1e-4', async () => {
    const pixels = new Uint8Array(g.images.length * 3072);
    g.images.forEach((im, i) => pixels.set(im.pixels, i * 3072));
    const pre = preprocessOf(tinyManifest());
    const input = augment({ pixels, n: g.images.length, inH: 32, inW: 32, ops: [], scale: pre.scale, mean: pre.mean, std: pre.std });
    const s = await ort.InferenceSession.create(TINY);
    const out = await s.run({ image: new ort.Tensor('float32', input, [g.images.length, 3, 32, 32]) });
    const emb = out.embedding.data as Float32Array, logits = out.logits.data as Float32Array;
    g.images.forEach((im, i) => {
      im.embedding.forEach((v, k) => assert.ok(Math.abs(emb[i * 32 + k] - v) < 1e-4, `${im.key} embedding[${k}]`));
      im.logits.forEach((v, k) => assert.ok(Math.abs(logits[i * 5 + k] - v) < 1e-4, `${im.key} logits[${k}]`));
    });
  });
});

describe('Φ on its own thread', () => {
  const g = golden();
  const pixels = new Uint8Array(g.images.length * 3072);
  g.images.forEach((im, i) => pixels.set(im.pixels, i * 3072));
  const pre = preprocessOf(tinyManifest());
  const input = () => augment({ pixels, n: g.images.length, inH: 32, inW: 32, ops: [], scale: pre.scale, mean: pre.mean, std: pre.std });
  const dims = [g.images.length, 3, 32, 32];

  it('gives the same vectors, bit for bit, as a session in the calling thread, for each output asked', async () => {
    const s = await ort.InferenceSession.create(TINY, { intraOpNumThreads: 2, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
    const want = await s.run({ image: new ort.Tensor('float32', input(), dims) });
    const t = onnxThreads(TINY, 2);
    const [emb, logits] = await Promise.all([t.run('image', input(), dims, 'embedding'), t.run('image', input(), dims, 'logits')]);
    assert.deepEqual(emb, want.embedding.data);
    assert.deepEqual(logits, want.logits.data);
    assert.equal(onnxThreads(TINY, 2), t, 'one pool per model file and thread count');
  });

  it('hands a batch\'s input back to be filled again, once its run is done', async () => {
    const t = onnxThreads(TINY, 1);
    const x = input();
    const back: Float32Array[] = [];
    const want = await t.run('image', input(), dims, 'embedding');
    const got = await t.run('image', x, dims, 'embedding', (y) => back.push(y));
    assert.equal(x.length, 0, 'the input went to the thread');
    assert.equal(back.length, 1);
    assert.deepEqual(back[0], input());
    assert.deepEqual(got, want);
  });

  it("a failure inside ONNX Runtime names the model and the runtime's reason, and the thread goes on serving", async () => {
    const t = onnxThreads(TINY, 1);
    await assert.rejects(t.run('pixels', input(), dims, 'embedding'), (e: unknown) => e instanceof EmbaugError && e.code === 'E_MODEL' && e.message.includes(TINY) && /'image' is missing/.test(e.message));
    await assert.rejects(t.run('image', input(), [1, 3, 32, 31], 'embedding'), (e: unknown) => e instanceof EmbaugError && e.code === 'E_MODEL');
    assert.equal((await t.run('image', input(), dims, 'embedding')).length, g.images.length * 32);
  });

  it('runs Φ passes that come at once on threads of their own, up to the cores, with the same outputs', async (t) => {
    if (cpus().length < 2) return t.skip('one core: the pool holds one thread');
    const one = onnxThreads(TINY, 1);
    const alone = await one.run('image', input(), dims, 'embedding');
    assert.equal(one.size, 1, 'one pass at a time needs one thread');
    const both = await Promise.all([one.run('image', input(), dims, 'embedding'), one.run('image', input(), dims, 'embedding')]);
    assert.equal(one.size, 2);
    for (const b of both) assert.deepEqual(b, alone);
    await Promise.all(Array.from({ length: cpus().length + 2 }, () => one.run('image', input(), dims, 'embedding')));
    assert.equal(one.size, cpus().length, 'never more threads than cores');
  });

  /** A pool of its own (another path to the same model, so no other test's threads count), its threads idle for `idleMs`. */
  async function withOwnPool(idleMs: number, body: (pool: ReturnType<typeof onnxThreads>, path: string) => Promise<void>) {
    const tmp = tempDir();
    const was = setOnnxIdle(idleMs);
    try {
      const path = join(tmp.dir, 'tiny.onnx');
      copyFileSync(TINY, path);
      await body(onnxThreads(path, 1), path);
    } finally {
      setOnnxIdle(was);
      tmp.cleanup();
    }
  }

  it('stops a thread left without work, and starts one again when work comes', () =>
    withOwnPool(100, async (t) => {
      const want = await t.run('image', input(), dims, 'embedding');
      assert.equal(t.size, 1);
      // Work that keeps coming keeps its thread.
      for (let i = 0; i < 4; i++) {
        await new Promise((r) => setTimeout(r, 40));
        assert.equal(t.size, 1, `the thread stopped between batches ${i} and ${i + 1}`);
        await t.run('image', input(), dims, 'embedding');
      }
      await new Promise((r) => setTimeout(r, 600));
      assert.equal(t.size, 0, 'the idle thread stopped');
      assert.deepEqual(await t.run('image', input(), dims, 'embedding'), want);
      assert.equal(t.size, 1);
    }));

  it('a run on a thread that has stopped fails at once with the reason, instead of waiting forever', () =>
    // Threads kept past their release (a caller's mistake, or a thread that died) must not
    // swallow work: a message to a stopped worker is never answered.
    withOwnPool(50, async (pool, path) => {
      const lanes = pool.lease(1);
      assert.equal((await lanes.run('image', input(), dims, 'embedding')).length, g.images.length * 32);
      lanes.release();
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(pool.size, 0, 'the released thread stopped');
      await assert.rejects(lanes.run('image', input(), dims, 'embedding'), (e: unknown) => e instanceof EmbaugError && e.code === 'E_WORKER' && e.message.includes(path) && /stopped \(exit code \d+\)/.test(e.message));
      // The pool itself starts a fresh thread for the next caller.
      assert.equal((await pool.run('image', input(), dims, 'embedding')).length, g.images.length * 32);
    }));

  it('holds threads for one caller: batches queued on them stay there, and held threads do not stop', async (t) => {
    if (cpus().length < 2) return t.skip('one core: the pool holds one thread');
    const held: OnnxLanes[] = [];
    await withOwnPool(100, async (pool) => {
      try {
        const want = await pool.run('image', input(), dims, 'embedding');
        // A caller of one core queues several batches: they wait on its one thread, where a
        // plain run would start a second.
        const one = pool.lease(1);
        held.push(one);
        assert.equal(one.size, 1);
        const got = await Promise.all(Array.from({ length: 4 }, () => one.run('image', input(), dims, 'embedding')));
        for (const g of got) assert.deepEqual(g, want);
        assert.equal(pool.size, 1, 'a caller holding one thread ran on a second');
        // Held, it outlives the idle time.
        await new Promise((r) => setTimeout(r, 400));
        assert.equal(pool.size, 1, 'a held thread stopped');
        // A second caller gets a thread no one holds, started for it.
        const other = pool.lease(1);
        held.push(other);
        await Promise.all([one.run('image', input(), dims, 'embedding'), other.run('image', input(), dims, 'embedding')]);
        assert.equal(pool.size, 2);
        one.release();
        other.release();
        await new Promise((r) => setTimeout(r, 600));
        assert.equal(pool.size, 0, 'released threads did not stop when idle');
        // More than the cores asked: as many as the pool may start.
        const all = pool.lease(cpus().length + 3);
        held.push(all);
        assert.equal(all.size, cpus().length);
        assert.deepEqual(await all.run('image', input(), dims, 'embedding'), want);
      } finally {
        for (const h of held) h.release();
      }
    });
  });

  it('does not keep a finished program alive', () => {
    // A CLI command that extracted must end by itself when its work is done.
    const code = `import { onnxThreads } from './electron/engine/backbones/index.ts';
      const v = await onnxThreads(${JSON.stringify(TINY)}, 1).run('image', new Float32Array(3 * 32 * 32), [1, 3, 32, 32], 'embedding');
      console.log('dim', v.length);`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: REPO, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.signal, null, 'the program was still running after 60 s');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^dim 32$/m);
  });

  it('lets a program end while another thread still loads its session, without aborting it', async () => {
    // Two threads leased, one batch on one of them, and the program ends: the other thread is
    // often still inside onnxruntime-node's model load then, and a thread stopped there aborted
    // the process ("terminate called after throwing an instance of 'Napi::Error'"), 6 of 40
    // such programs before the fix. Twenty of them, two at a time.
    const code = `import { onnxThreads } from './electron/engine/backbones/index.ts';
      const lanes = onnxThreads(${JSON.stringify(TINY)}, 1).lease(2);
      await lanes.run('image', new Float32Array(3 * 32 * 32), [1, 3, 32, 32], 'embedding');
      lanes.release();`;
    const once = () =>
      new Promise<{ status: number | null; signal: string | null; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: REPO, timeout: 60_000 });
        let stderr = '';
        child.stderr.on('data', (b) => (stderr += b));
        child.on('close', (status, signal) => resolve({ status, signal, stderr }));
      });
    const ends: { status: number | null; signal: string | null; stderr: string }[] = [];
    for (let i = 0; i < 10; i++) ends.push(...(await Promise.all([once(), once()])));
    const bad = ends.filter((e) => e.status !== 0);
    assert.deepEqual(bad.map((e) => `${e.signal ?? e.status}: ${e.stderr.trim().split('\n').at(-1)}`), []);
  });
});

describe('FLOPs from layer shapes', () => {
  it('counts 2 FLOPs per multiply-add of Conv and Gemm', async () => {
    const tmp = tempDir();
    try {
      const w = new Float32Array(4 * 3 * 3 * 3).fill(0.1);
      const fc = new Float32Array(10 * 256).fill(0.01);
      const m = model(
        {
          name: 'probe',
          input: [valueInfo('image', [1, 3, 8, 8])],
          output: [valueInfo('y', [1, 10])],
          initializer: [tensor('w', [4, 3, 3, 3], w), tensor('fc', [10, 256], fc)],
          node: [
            { opType: 'Conv', input: ['image', 'w'], output: ['c'], attribute: [{ name: 'pads', type: 7, ints: [1, 1, 1, 1] }] },
            { opType: 'Flatten', input: ['c'], output: ['f'] },
            { opType: 'Gemm', input: ['f', 'fc'], output: ['y'], attribute: [{ name: 'transB', type: 2, i: 1 }] },
          ],
        },
        {},
      );
      writeFileSync(join(tmp.dir, 'probe.onnx'), encodeModel(m));
      // Conv: 4×8×8 outputs × 27 MACs; Gemm: 10 outputs × 256 MACs.
      assert.equal(await forwardFlops(join(tmp.dir, 'probe.onnx'), 'image', [1, 3, 8, 8]), 2 * (4 * 64 * 27 + 10 * 256));
      // A width-16 CIFAR ResNet-18 is about 1/16 of the 1.1 GFLOP of the width-64 one.
      const r = await forwardFlops(join(MODELS, 'resnet18-w16-hflip.onnx'), 'image', [1, 3, 32, 32]);
      assert.ok(r > 60e6 && r < 80e6, `${r}`);
    } finally {
      tmp.cleanup();
    }
  });

  it('times the bundled ResNet-18 at any width: the same layers as resnet18-w16, 16× the work at width 64', async () => {
    const tmp = tempDir();
    try {
      const w16 = cifarResnet18Graph(16);
      const file = join(tmp.dir, 'w16.onnx');
      writeFileSync(file, encodeModel(w16.model));
      const bundled = await forwardFlops(join(MODELS, 'resnet18-w16-hflip.onnx'), 'image', [1, 3, 32, 32]);
      // The bundled graph adds only its classifier (128 → 5) to the same convolutions.
      assert.equal(bundled, 2 * w16.macs + 2 * 128 * 5);
      assert.equal(await forwardFlops(file, 'image', [1, 3, 32, 32]), 2 * w16.macs);
      const w64 = cifarResnet18Graph(64);
      assert.ok(w64.macs / w16.macs > 15.5 && w64.macs / w16.macs < 16, `${w64.macs / w16.macs}`);
      assert.ok(w64.params > 11e6 && w64.params < 11.3e6, `${w64.params}`);
      const s = await ort.InferenceSession.create(file);
      const out = await s.run({ image: new ort.Tensor('float32', new Float32Array(2 * 3 * 32 * 32).fill(0.5), [2, 3, 32, 32]) });
      assert.deepEqual(out.embedding.dims, [2, 128]);
      await s.release();
    } finally {
      tmp.cleanup();
    }
  });
});

/**
 * Job workers fail as jobs: a worker that runs out of its heap, or dies, fails its job and
 * its runs at once, and the runner (the server's process) goes on. And the engine's pool of
 * independent trainings keeps its order and its dependencies.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';

import { openDb, type Db } from '../../electron/engine/db.js';
import { runGraph, type GraphTask } from '../../electron/engine/jobs/index.js';
import { getThreads } from '../../electron/engine/native/index.js';
import { deleteRuns, failRunsOfThread, getRun, listRuns, startRun, updateRun } from '../../electron/engine/runs/index.js';
import { JobRunner } from '../../electron/jobs/runner.js';
import { samples, writeShard } from '../helpers/fixtures.js';
import { REPO, WDS, tempDir } from '../helpers/shared.js';

describe('job workers', () => {
  const tmp = tempDir();
  let db: Db;
  const dbPath = () => join(tmp.dir, 'jobs.db');
  const wds = join(tmp.dir, 'wds');
  before(async () => {
    mkdirSync(wds);
    await writeShard(join(wds, 'train-000000.tar'), await samples('train-000000.tar', 50));
    copyFileSync(join(WDS, 'classes.txt'), join(wds, 'classes.txt'));
    db = openDb(dbPath());
  });
  after(() => {
    db.close();
    tmp.cleanup();
  });
  const settings = { modelsDir: tmp.dir, dataDir: tmp.dir, outDir: tmp.dir };

  it('a job that runs out of its heap fails as a job; the runner and the next job go on', async () => {
    const tight = new JobRunner({ db, dbPath: dbPath(), threads: 1, settings, maxHeapMb: 4 });
    const j = tight.start('import', { kind: 'wds', path: wds, name: 'oom' });
    const done = await tight.wait(j.id);
    assert.equal(done.status, 'failed');
    assert.equal(done.error?.code, 'E_OUT_OF_MEMORY');
    assert.match(done.error!.message, /ran out of memory \(its heap is limited to 4 MB\)/);
    await tight.close();
    const jobs = new JobRunner({ db, dbPath: dbPath(), threads: 1, settings });
    const ok = await jobs.wait(jobs.start('import', { kind: 'wds', path: wds, name: 'fine' }).id);
    assert.equal(ok.status, 'completed', JSON.stringify(ok.error));
    await jobs.close();
  });

  it('deleting a run takes its whole subtree (child runs, metrics, artifacts) in one go, and refuses a running one', () => {
    const top = startRun(db, { kind: 'reproduce', name: 'tree', config: {} });
    const mid = startRun(db, { kind: 'omega', name: 'child', parentId: top.id, config: {} });
    const leaf = startRun(db, { kind: 'extract', name: 'grandchild', parentId: mid.id, config: {} });
    const other = startRun(db, { kind: 'head', name: 'unrelated', config: {} });
    mid.metrics(1, { loss: 0.5 });
    leaf.artifact('weights', 'w.f32', new Uint8Array([1, 2, 3]));
    assert.throws(() => deleteRuns(db, [top.id]), /Run \d+ \("\w+"\) is still running: cancel it first/);
    for (const r of [leaf, mid, top, other]) r.complete({});
    assert.deepEqual(deleteRuns(db, [top.id]).deleted, [top.id, mid.id, leaf.id]);
    for (const id of [top.id, mid.id, leaf.id]) assert.throws(() => getRun(db, id), /There is no run/);
    assert.equal((db.prepare('SELECT count(*) AS n FROM metrics WHERE run_id = ?').get(mid.id) as { n: number }).n, 0);
    assert.equal((db.prepare('SELECT count(*) AS n FROM artifacts WHERE run_id = ?').get(leaf.id) as { n: number }).n, 0);
    assert.equal(getRun(db, other.id).status, 'completed');
    assert.deepEqual(updateRun(db, other.id, { tags: [' keep ', 'keep', 'best'], note: '  why  ' }), { ...getRun(db, other.id), tags: ['keep', 'best'], note: 'why' });
  });

  it('runs a dead worker thread left "running" are marked failed with the reason, and only those', async () => {
    // A real worker thread of this process starts a run and dies without finishing it.
    const file = join(tmp.dir, 'doomed-worker.mjs');
    writeFileSync(file, `
      import { parentPort } from 'node:worker_threads';
      import { register } from ${JSON.stringify(import.meta.resolve('tsx/esm/api'))};
      register();
      const runs = await import(${JSON.stringify(pathToFileURL(join(REPO, 'electron', 'engine', 'runs', 'index.ts')).href)});
      const { openDb } = await import(${JSON.stringify(pathToFileURL(join(REPO, 'electron', 'engine', 'db.ts')).href)});
      const db = openDb(${JSON.stringify(dbPath())});
      const run = runs.startRun(db, { kind: 'head', name: 'doomed', config: {} });
      parentPort.postMessage(run.id);
      process.exit(3);
    `);
    const w = new Worker(file);
    const thread = w.threadId;
    const id = await new Promise<number>((resolve, reject) => (w.once('message', resolve), w.once('error', reject)));
    await new Promise((resolve) => w.once('exit', resolve));
    const mine = listRuns(db, { status: 'running' }).length;
    assert.ok(mine >= 1);
    assert.equal(getRun(db, id).status, 'running');
    assert.equal(failRunsOfThread(db, thread + 1000, 'not this one'), 0);
    assert.equal(failRunsOfThread(db, thread, "the job's worker stopped (exit code 3) before it finished"), 1);
    const r = getRun(db, id);
    assert.equal(r.status, 'failed');
    assert.match(r.error!, /exit code 3/);
  });
});

describe('runGraph: independent trainings, one per core, in dependency order', () => {
  const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));
  // A task that logs its start and end and takes `ms`.
  const traced = (log: string[], name: string, ms: number) => async () => {
    log.push(`start ${name}`);
    await tick(ms);
    log.push(`end ${name}`);
    return name;
  };

  it('starts a task only after those it comes after, fills free lanes with the earliest ready one, and returns results in task order', async () => {
    const log: string[] = [];
    let running = 0, most = 0;
    const counted = (name: string, ms: number) => async () => {
      most = Math.max(most, ++running);
      try {
        return await traced(log, name, ms)();
      } finally {
        running--;
      }
    };
    // Two Ωs, then heads: h1 needs no Ω, e1 needs both, e2 needs the fast one.
    const tasks: GraphTask<string>[] = [
      { run: counted('slow Ω', 60) },
      { run: counted('fast Ω', 10) },
      { run: counted('e1', 10), after: [0, 1] },
      { run: counted('e2', 10), after: [1] },
      { run: counted('h1', 10) },
    ];
    const total = getThreads();
    assert.deepEqual(await runGraph(tasks, 2), ['slow Ω', 'fast Ω', 'e1', 'e2', 'h1']);
    assert.equal(most, 2, 'two lanes');
    const at = (e: string) => log.indexOf(e);
    assert.ok(at('start e1') > at('end slow Ω') && at('start e1') > at('end fast Ω'));
    assert.ok(at('start e2') > at('end fast Ω'));
    // While the slow Ω runs, the free lane takes e2 and then h1, skipping e1, which is not ready.
    assert.ok(at('start e2') < at('end slow Ω') && at('start h1') < at('end slow Ω'), log.join(', '));
    assert.equal(getThreads(), total, 'BLAS threads restored');
  });

  it('one lane runs the tasks exactly in list order', async () => {
    const log: string[] = [];
    const tasks = [20, 5, 10, 1].map((ms, i) => ({ run: traced(log, `t${i}`, ms), after: i === 3 ? [0] : [] }));
    await runGraph(tasks, 1);
    assert.deepEqual(log, ['start t0', 'end t0', 'start t1', 'end t1', 'start t2', 'end t2', 'start t3', 'end t3']);
  });

  it('refuses a task that waits for a later one (or itself), naming both', async () => {
    await assert.rejects(runGraph([{ run: async () => 1, after: [1] }, { run: async () => 2 }], 2), /task 0 comes after task 1: a task can only wait for tasks earlier in the list/);
    await assert.rejects(runGraph([{ run: async () => 1 }, { run: async () => 2, after: [1] }], 2), /task 1 comes after task 1/);
  });

  it('after a failure starts no new task, lets the running one finish, and throws the first error; an empty graph is done at once', async () => {
    const log: string[] = [];
    const tasks: GraphTask<string>[] = [
      { run: traced(log, 'long', 40) },
      { run: async () => { await tick(5); throw new Error('Ω diverged'); } },
      { run: traced(log, 'never', 1) },
      { run: traced(log, 'never either', 1), after: [0] },
    ];
    await assert.rejects(runGraph(tasks, 2), /Ω diverged/);
    assert.deepEqual(log, ['start long', 'end long']);
    assert.deepEqual(await runGraph([], 2), []);
  });
});

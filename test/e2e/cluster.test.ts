/**
 * Beyond one machine: embeddings as Parquet, sharded extraction and reproduction merged back,
 * and the same through a real single-node Slurm cluster started here (test/cluster/slurm-local.sh).
 * Every comparison is against a single process on a copy of the same database, with one thread
 * everywhere (ONNX Runtime and OpenBLAS round differently with other thread counts).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import Database from 'better-sqlite3';
import { DuckDBInstance } from '@duckdb/node-api';

import { miniCifar10, tinyFamily } from '../helpers/fixtures.js';
import { REPO, tempDir } from '../helpers/shared.js';

const tmp = tempDir('embaug-cluster-');
const dataDir = join(tmp.dir, 'data');
const modelsDir = join(tmp.dir, 'models');
const mainDb = join(tmp.dir, 'main.db');
/** The database as prepared (data set and backbones, nothing computed), for fresh copies. */
const pristine = join(tmp.dir, 'pristine.db');
/** Single-process references: one extraction, one reproduction. */
const refDb = join(tmp.dir, 'ref-extract.db');
const refGridDb = join(tmp.dir, 'ref-grid.db');
const refStudyDb = join(tmp.dir, 'ref-study.db');

function embaug(db: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [join(REPO, 'bin', 'embaug.js'), '--db', db, '--threads', '1', ...args], { encoding: 'utf8', cwd: tmp.dir });
  return { code: r.status, out: r.stdout, err: r.stderr, json: () => JSON.parse(r.stdout) };
}
const ok = (r: ReturnType<typeof embaug>) => {
  assert.equal(r.code, 0, `${r.err}\n${r.out}`);
  return r;
};

/** Every vector of every embedding set, keyed by (backbone, augmentation, seed, dtype) and image. */
function vectors(db: string): Map<string, string> {
  const d = new Database(db, { readonly: true });
  try {
    const rows = d.prepare(`SELECT s.backbone_sha || '|' || s.aug_key || '|' || s.seed || '|' || s.dtype || '|' || e.image_sha AS k, hex(e.vec) AS v
                            FROM embeddings e JOIN embedding_sets s ON s.id = e.set_id`).all() as { k: string; v: string }[];
    return new Map(rows.map((r) => [r.k, r.v]));
  } finally {
    d.close();
  }
}

const EXTRACT = ['--dataset', 'cifar10', '--backbone', 'tiny-none', '--aug', 'identity', '--aug', 'hflip'];
const STUDY = ['--data', dataDir, '--models', modelsDir, '--archs', 'resnet18', '--bases', 'hflip', '--budgets', '4,8', '--seeds', '2', '--augs', 'hflip',
  '--arms', 'none,pixel,embed', '--lrs', '0.05', '--epochs', '4', '--omega-images', '60', '--omega-epochs', '2'];
const GRID = ['--data', dataDir, '--models', modelsDir, '--subset', '60', '--seeds', '2', '--epochs', '2', '--augs', 'hflip', '--omega-epochs', '2'];

describe('beyond one machine', () => {
  before(async () => {
    await miniCifar10(dataDir, 300, 100);
    tinyFamily(modelsDir);
    ok(embaug(mainDb, 'reproduce', '--prepare', ...GRID));
    copyFileSync(mainDb, pristine);
    copyFileSync(pristine, refDb);
    ok(embaug(refDb, 'extract', ...EXTRACT));
    copyFileSync(pristine, refGridDb);
    ok(embaug(refGridDb, 'reproduce', '--out', join(tmp.dir, 'ref'), ...GRID));
    copyFileSync(pristine, refStudyDb);
    ok(embaug(refStudyDb, 'study', '--out', join(tmp.dir, 'ref-study'), ...STUDY));
  });
  after(() => tmp.cleanup());

  it('embeddings as Parquet: DuckDB reads the documented columns; importing twice adds nothing', async () => {
    const file = join(tmp.dir, 'cache.parquet');
    const exported = ok(embaug(refDb, 'cache', 'export', '--format', 'parquet', '--out', file));
    const sets = ok(embaug(refDb, 'cache', 'stats', '--json')).json().sets as { id: number; augKey: string; count: number; backbone: string }[];
    assert.equal(sets.length, 2);
    assert.match(exported.out, new RegExp(`wrote ${file}: ${sets.length} sets, ${sets.reduce((a, s) => a + s.count, 0)} vectors`));
    assert.equal(embaug(refDb, 'cache', 'export', '--format', 'parquet', '--out', file).code, 4, 'an existing file is not overwritten');

    const duck = await (await DuckDBInstance.create(':memory:')).connect();
    const rows = (await duck.runAndReadAll(`SELECT image_sha256, aug_key, seed, backbone_sha256, preprocess_key, vector FROM read_parquet('${file}') ORDER BY aug_key, image_sha256`)).getRowObjectsJson() as Record<string, unknown>[];
    assert.equal(rows.length, sets.reduce((a, s) => a + s.count, 0));
    const ref = vectors(refDb);
    const first = rows.find((r) => r.aug_key === 'hflip')!;
    const key = [...ref.keys()].find((k) => k.endsWith(`|hflip|0|float32|${first.image_sha256}`))!;
    const bytes = Buffer.from(ref.get(key)!, 'hex');
    const v = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
    assert.deepEqual((first.vector as number[]).map(Number), Array.from(v), 'DuckDB reads the very floats of the cache');
    assert.equal(key.split('|')[0], first.backbone_sha256);
    const meta = (await duck.runAndReadAll(`SELECT decode(value) AS v FROM parquet_kv_metadata('${file}') WHERE decode(key) = 'embaug'`)).getRowObjectsJson() as { v: string }[];
    assert.equal(JSON.parse(meta[0].v).sets.length, sets.length);

    // Into a database that has the backbone but no vectors: all added, then nothing twice.
    const fresh = join(tmp.dir, 'fresh.db');
    copyFileSync(pristine, fresh);
    const first1 = ok(embaug(fresh, 'cache', 'import', file, '--json')).json() as { added: number; rows: number }[];
    assert.deepEqual(first1.map((r) => r.added), first1.map((r) => r.rows));
    const again = ok(embaug(fresh, 'cache', 'import', file, '--json')).json() as { added: number }[];
    assert.deepEqual(again.map((r) => r.added), again.map(() => 0));
    assert.deepEqual(vectors(fresh), ref);

    // Bad files are named with what is wrong.
    writeFileSync(join(tmp.dir, 'not.parquet'), 'hello');
    const bad = embaug(fresh, 'cache', 'import', join(tmp.dir, 'not.parquet'));
    assert.equal(bad.code, 4);
    assert.match(bad.err, /not\.parquet is not a readable Parquet file/);
    await duck.run(`COPY (SELECT 'x' AS image_sha256, [1.0, 2.0]::FLOAT[2] AS vector) TO '${join(tmp.dir, 'other.parquet')}' (FORMAT parquet)`);
    assert.match(embaug(fresh, 'cache', 'import', join(tmp.dir, 'other.parquet')).err, /lacks the columns aug_key, seed, backbone_sha256, preprocess_key/);
  });

  it('reads back in Python with pyarrow', (t) => {
    const py = spawnSync('python3', ['-c', 'import pyarrow'], { encoding: 'utf8' });
    if (py.status !== 0) {
      t.skip('pyarrow is not installed: Debian 12 packages no python3-pyarrow and PyPI is out of reach here; DuckDB (above) is the independent reader');
      return;
    }
    const r = spawnSync('python3', ['-c', `import pyarrow.parquet as pq, json; t = pq.read_table(${JSON.stringify(join(tmp.dir, 'cache.parquet'))}); print(json.dumps({"names": t.column_names, "rows": t.num_rows, "list": str(t.schema.field("vector").type)}))`], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const info = JSON.parse(r.stdout);
    assert.deepEqual(info.names, ['image_sha256', 'aug_key', 'seed', 'backbone_sha256', 'preprocess_key', 'vector']);
    assert.match(info.list, /fixed_size_list<.*float>\[32\]/);
  });

  it('a sharded extraction merges into the same cache, bit for bit; missing parts are named; merging twice adds nothing', () => {
    const dir = join(tmp.dir, 'extract-shards');
    // Every part gets a share of the images, and the shares add up to the whole.
    const parts = [0, 1, 2].map((k) => ok(embaug(mainDb, 'extract', ...EXTRACT, '--shard', `${k}/3`, '--out', dir, '--json')).json() as { path: string; extracted: number });
    parts.forEach((p, k) => assert.match(p.path, new RegExp(`extract-${k}-of-3\\.parquet$`)));
    assert.ok(parts.every((p) => p.extracted > 0), JSON.stringify(parts.map((p) => p.extracted)));
    assert.match(ok(embaug(mainDb, 'extract', ...EXTRACT, '--shard', '1/3', '--out', dir)).out, /is there already: this part is done/);
    assert.equal(vectors(mainDb).size, 0, 'a shard only reads the database');
    const partial = join(tmp.dir, 'partial');
    mkdirSync(partial);
    for (const k of [0, 2]) copyFileSync(join(dir, `extract-${k}-of-3.parquet`), join(partial, `extract-${k}-of-3.parquet`));
    const copy = join(tmp.dir, 'partial.db');
    copyFileSync(pristine, copy);
    const missing = embaug(copy, 'merge', partial);
    assert.equal(missing.code, 3);
    assert.match(missing.err, /extract: part 1 of 3 missing in .*partial: what is there was merged/);

    const m = ok(embaug(mainDb, 'merge', dir, '--json')).json();
    const ref = vectors(refDb);
    assert.equal(m.extract[0].added, ref.size);
    assert.equal(parts.reduce((n, p) => n + p.extracted, 0), ref.size, 'no image in two parts');
    assert.deepEqual(vectors(mainDb), ref);
    assert.equal(ok(embaug(mainDb, 'merge', dir, '--json')).json().extract[0].added, 0);
  });

  it('cluster slurm checks the command before writing a script, and never reuses a folder', () => {
    const dir = join(tmp.dir, 'array-check');
    const bad = embaug(mainDb, 'cluster', 'slurm', '--tasks', '2', '--out', dir, 'extract', '--dataset', 'nope', '--backbone', 'tiny-none');
    assert.equal(bad.code, 3);
    assert.match(bad.err, /nope/);
    assert.equal(existsSync(join(dir, 'cluster.json')), false, 'nothing written for a command that would fail in every task');
    assert.match(embaug(mainDb, 'cluster', 'slurm', '--tasks', '2', '--out', dir, 'extract', ...EXTRACT, '--shard', '0/2').err, /give --shard to cluster slurm itself/);
    const plan = ok(embaug(mainDb, 'cluster', 'slurm', '--tasks', '2', '--cpus', '1', '--time', '00:10:00', '--partition', 'gpu', '--gpus', '1', '--out', dir, '--json', 'extract', ...EXTRACT)).json();
    const script = readFileSync(plan.script, 'utf8');
    for (const line of ['#SBATCH --array=0-1', '#SBATCH --cpus-per-task=1', '#SBATCH --time=00:10:00', '#SBATCH --partition=gpu', '#SBATCH --gres=gpu:1', `#SBATCH --output=${dir}/logs/%A_%a.out`])
      assert.ok(script.includes(line), line);
    assert.match(script, /--threads 1 --quiet extract '--dataset' 'cifar10' .* --shard "\$\{SLURM_ARRAY_TASK_ID\}\/2"/);
    assert.match(ok(embaug(mainDb, 'cluster', 'status', dir)).out, /0 done, 0 queued or running \(not submitted yet/);
    assert.equal(embaug(mainDb, 'cluster', 'slurm', '--tasks', '2', '--out', dir, 'extract', ...EXTRACT).code, 4, 'a folder holds one array');
  });

  it('a sharded reproduction merges into the report one process writes, seed by seed', () => {
    const dir = join(tmp.dir, 'grid-shards');
    for (let k = 0; k < 3; k++) ok(embaug(mainDb, 'reproduce', '--out', dir, ...GRID, '--shard', `${k}/3`));
    const runsBefore = ok(embaug(mainDb, 'runs', 'list', '--limit', '100000', '--json')).json().length;
    const m = ok(embaug(mainDb, 'merge', dir, '--json')).json();
    assert.ok(m.grids[0].runsAdded > 0);
    assertSameReport(join(tmp.dir, 'ref'), dir);
    const runs = ok(embaug(mainDb, 'runs', 'list', '--limit', '100000', '--json')).json() as { kind: string; name: string }[];
    const refRuns = ok(embaug(refGridDb, 'runs', 'list', '--limit', '100000', '--json')).json() as { kind: string; name: string }[];
    const heads = (rs: { kind: string; name: string }[]) => rs.filter((r) => r.kind === 'head').map((r) => r.name).sort();
    assert.deepEqual(heads(runs), heads(refRuns), 'every head of the plan, once');
    assert.equal(runs.filter((r) => /^reproduce cifar10-split \(shard \d of 3\)$/.test(r.name)).length, 3);
    assert.equal(ok(embaug(mainDb, 'merge', dir, '--json')).json().grids[0].runsAdded, 0);
    assert.equal(ok(embaug(mainDb, 'runs', 'list', '--limit', '100000', '--json')).json().length, runs.length);
    assert.ok(runs.length > runsBefore);
  });

  it('a sharded study (whole cells per part) merges into the study one process writes', () => {
    const dir = join(tmp.dir, 'study-shards');
    for (let k = 0; k < 3; k++) ok(embaug(mainDb, 'study', '--out', dir, ...STUDY, '--shard', `${k}/3`));
    const m = ok(embaug(mainDb, 'merge', dir, '--json')).json();
    assert.equal(m.grids[0].kind, 'study');
    assert.equal(m.grids[0].report, dir);
    const [x, y] = [join(tmp.dir, 'ref-study'), dir].map((d) => JSON.parse(readFileSync(join(d, 'study.json'), 'utf8')));
    const numbers = (r: typeof x) => r.cells.map((c: Record<string, unknown>) => [c.arch, c.base, c.budget, c.aug, c.arm, c.trainImages, c.chosen, c.selection, c.accuracy, c.phiPasses]);
    assert.equal(y.cells.length, 6);
    assert.deepEqual(numbers(y), numbers(x), 'every cell: the same choice from the same validation curves, the same accuracy per seed');
    assert.deepEqual(y.omega.map((o: Record<string, unknown>) => [o.aug, o.chosen, o.heldOutMse]), x.omega.map((o: Record<string, unknown>) => [o.aug, o.chosen, o.heldOutMse]));
    // The findings quote measured compute ratios (timings), which no two runs share: only their number is compared.
    assert.equal(y.findings.length, x.findings.length);
    assert.match(readFileSync(join(dir, 'study.md'), 'utf8'), /^# /m);
  });

  describe('on a real single-node Slurm cluster', () => {
    const slurmDir = join(tmp.dir, 'slurm');
    let conf: string | null = null;
    let why = '';
    before(() => {
      const r = spawnSync('bash', [join(REPO, 'test', 'cluster', 'slurm-local.sh'), 'start', slurmDir], { encoding: 'utf8' });
      if (r.status === 0) conf = r.stdout.trim();
      else why = `no Slurm cluster could be started here: ${r.stderr.trim() || `exit ${r.status}`}`;
    });
    after(() => {
      spawnSync('bash', [join(REPO, 'test', 'cluster', 'slurm-local.sh'), 'stop', slurmDir]);
    });
    const slurm = (db: string, ...args: string[]) => {
      const r = spawnSync(process.execPath, [join(REPO, 'bin', 'embaug.js'), '--db', db, ...args], { encoding: 'utf8', cwd: tmp.dir, env: { ...process.env, SLURM_CONF: conf! } });
      return { code: r.status, out: r.stdout, err: r.stderr, json: () => JSON.parse(r.stdout) };
    };

    it('4-task arrays extract the two shards and train the grid; merged, they equal one process', (t) => {
      if (!conf) {
        t.skip(why);
        return;
      }
      const db = join(tmp.dir, 'slurm.db');
      copyFileSync(pristine, db);

      const ex = join(tmp.dir, 'slurm-extract');
      const plan = ok(slurm(db, 'cluster', 'slurm', '--tasks', '4', '--cpus', '1', '--out', ex, '--submit', '--json', 'extract', ...EXTRACT)).json();
      assert.match(plan.jobId, /^\d+$/);
      assert.match(readFileSync(plan.script, 'utf8'), /#SBATCH --array=0-3\n[^]*--shard "\$\{SLURM_ARRAY_TASK_ID\}\/4"/);
      const grid = join(tmp.dir, 'slurm-grid');
      const gplan = ok(slurm(db, 'cluster', 'slurm', '--tasks', '4', '--cpus', '1', '--out', grid, '--submit', '--json', 'reproduce', ...GRID)).json();
      for (const dir of [ex, grid]) {
        const s = slurm(db, 'cluster', 'status', dir, '--wait', '--poll', '1', '--json');
        assert.equal(s.code, 0, `${s.err}\n${readLogs(dir)}`);
        assert.equal(s.json().done, 4, readLogs(dir));
      }
      assert.equal(existsSync(join(grid, 'logs', `${gplan.jobId}_3.out`)), true, 'each task logs to DIR/logs/<job>_<task>.out');
      ok(slurm(db, 'merge', ex));
      assert.deepEqual(vectors(db), vectors(refDb), 'embeddings bit for bit');
      ok(slurm(db, 'merge', grid));
      assertSameReport(join(tmp.dir, 'ref'), grid);
    });
  });
});

function readLogs(dir: string): string {
  const logs = join(dir, 'logs');
  return existsSync(logs) ? spawnSync('sh', ['-c', `tail -n 20 ${logs}/*.out`], { encoding: 'utf8' }).stdout : '(no logs)';
}

/** Table II per seed, the Ω summaries and the heads' curves of two report folders are the same. */
function assertSameReport(a: string, b: string): void {
  const [x, y] = [a, b].map((d) => JSON.parse(readFileSync(join(d, 'table2.json'), 'utf8')));
  assert.deepEqual(y.architectures, x.architectures, 'every accuracy of every seed');
  const fidelity = (t: typeof x) => JSON.stringify(Object.values(t.omega).map((byBase) => Object.values(byBase as object).map((byAug) => Object.values(byAug as object).map((o) => [o.chosen, o.fidelity]))));
  assert.equal(fidelity(y), fidelity(x));
  assert.equal(readFileSync(join(b, 'curves', 'heads.csv'), 'utf8'), readFileSync(join(a, 'curves', 'heads.csv'), 'utf8'));
}

/**
 * Extraction of all 60,000 CIFAR-10 images (resnet18-w16-hflip, identity) as one process with
 * every core, against 4 shards run as a Slurm job array on this machine (a single-node cluster
 * started by test/cluster/slurm-local.sh; one core per task, so two tasks run at a time on two
 * cores), merged into the database. Same images, same output (compared vector by vector). The
 * "peer" here is embaug itself in one process: what sharding costs or gains on one machine,
 * with Slurm's overhead and the merge stated apart. Needs root (slurmd) and slurm-wlm + munge.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';

import Database from 'better-sqlite3';

import { addBackbone } from '../electron/engine/backbones/index.js';
import { importDataset } from '../electron/engine/datasets/index.js';
import { openDb } from '../electron/engine/db.js';
import { LAUNCH_ENV, ROOT, SHARED, report, threadsArg } from './common.js';

const TASKS = 4;

export async function main(argv: string[]) {
  const threads = threadsArg(argv);
  const dir = mkdtempSync(join(tmpdir(), 'embaug-bench-shards-'));
  const slurmDir = join(dir, 'slurm');
  const script = join(ROOT, 'test', 'cluster', 'slurm-local.sh');
  try {
    const base = join(dir, 'base.db');
    const db = openDb(base);
    await importDataset(db, { kind: 'wds', path: join(SHARED, 'datasets', 'cifar10-wds'), name: 'cifar10' });
    await addBackbone(db, { onnxPath: join(SHARED, 'models', 'resnet18-w16-hflip.onnx') });
    db.close();
    const one = join(dir, 'one.db'), sharded = join(dir, 'sharded.db');
    copyFileSync(base, one);
    copyFileSync(base, sharded);
    const args = ['extract', '--dataset', 'cifar10', '--backbone', 'resnet18-w16-hflip'];
    const embaug = (db: string, extra: string[], env: Record<string, string> = {}) => {
      const t = performance.now();
      const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'embaug.js'), '--db', db, '--quiet', ...extra], { encoding: 'utf8', env: { ...LAUNCH_ENV, ...env } });
      if (r.status !== 0) throw new Error(`embaug ${extra.join(' ')} failed: ${r.stderr}`);
      return { seconds: (performance.now() - t) / 1000, out: r.stdout };
    };

    console.log(`one process, ${threads} threads: 60,000 images ...`);
    const single = embaug(one, ['--threads', String(threads), ...args]);
    console.log(`  ${single.seconds.toFixed(1)} s`);

    const started = spawnSync('bash', [script, 'start', slurmDir], { encoding: 'utf8' });
    if (started.status !== 0) throw new Error(`no Slurm cluster could be started here: ${started.stderr.trim()}`);
    const env = { SLURM_CONF: started.stdout.trim() };
    const out = join(dir, 'shards');
    console.log(`${TASKS} shards through Slurm, 1 core each ...`);
    const t0 = performance.now();
    embaug(sharded, ['cluster', 'slurm', '--tasks', String(TASKS), '--cpus', '1', '--out', out, '--submit', ...args], env);
    embaug(sharded, ['cluster', 'status', out, '--wait', '--poll', '1'], env);
    const array = (performance.now() - t0) / 1000;
    const merge = embaug(sharded, ['merge', out]).seconds;
    // Each task's own time, from its log: what the array would take with no scheduler at all.
    const logs = readdirSync(join(out, 'logs')).filter((f) => f.endsWith('.out'));
    const taskSeconds = logs.map((f) => Number(/in ([\d.]+) s/.exec(readFileSync(join(out, 'logs', f), 'utf8'))?.[1] ?? NaN));
    const concurrent = Math.min(TASKS, cpus().length);
    const ideal = taskSeconds.reduce((a, b) => a + b, 0) / concurrent;
    console.log(`  array ${array.toFixed(1)} s (tasks ${taskSeconds.map((s) => s.toFixed(1)).join(', ')} s), merge ${merge.toFixed(1)} s`);

    const same = compare(one, sharded);
    console.log(`  output: ${same.vectors} vectors, ${same.identical} bit-identical, max |Δ| ${same.maxAbs.toExponential(2)}`);
    const images = 60000;
    report('shards', threads, [
      { case: 'extract-60000-images', ours: images / (array + merge), peer: images / single.seconds, unit: 'images/s', note: `ours = ${TASKS} Slurm tasks (1 core each) + merge; peer = embaug in one process with ${threads} threads` },
      { case: 'array-wall', ours: array, peer: single.seconds, unit: 's', lowerIsBetter: true, note: 'submit to the last task leaving the queue' },
      { case: 'slurm-overhead', ours: array - ideal, peer: null, unit: 's', note: `array wall − Σ task seconds / ${concurrent} cores` },
      { case: 'merge', ours: merge, peer: null, unit: 's', note: `${TASKS} Parquet files → SQLite cache` },
    ], { tasks: TASKS, taskSeconds, arraySeconds: array, mergeSeconds: merge, singleSeconds: single.seconds, output: same });
  } finally {
    spawnSync('bash', [script, 'stop', slurmDir]);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Vector by vector: how many are bit-identical, and the largest difference of any component. */
function compare(a: string, b: string) {
  const read = (p: string) => {
    const d = new Database(p, { readonly: true });
    const m = new Map((d.prepare('SELECT image_sha, vec FROM embeddings').raw().all() as [string, Buffer][]).map(([k, v]) => [k, v]));
    d.close();
    return m;
  };
  const x = read(a), y = read(b);
  let identical = 0, maxAbs = 0;
  for (const [k, v] of x) {
    const w = y.get(k);
    if (!w) throw new Error(`the sharded cache lacks image ${k}`);
    if (v.equals(w)) identical++;
    const fv = new Float32Array(v.buffer, v.byteOffset, v.length / 4), fw = new Float32Array(w.buffer, w.byteOffset, w.length / 4);
    for (let i = 0; i < fv.length; i++) maxAbs = Math.max(maxAbs, Math.abs(fv[i] - fw[i]));
  }
  if (x.size !== y.size) throw new Error(`${x.size} vectors from one process, ${y.size} from the shards`);
  return { vectors: x.size, identical, maxAbs };
}

/**
 * Slurm job arrays for sharded work: a batch script with one array task per shard
 * (SLURM_ARRAY_TASK_ID → --shard K/N), submitted with sbatch, followed with squeue and the
 * shard files that exist. We build no scheduler: Slurm queues, places and restarts the tasks.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { EmbaugError } from '../errors.js';
import { outputFolder, packageRoot, writeFileAtomic } from '../paths.js';
import { type ShardKind, type ShardProgress, readProgress, scanShards } from './shard.js';

export interface SlurmRequest {
  command: ShardKind;
  /** The command's own arguments, without --shard and --out (those the script adds). */
  args: string[];
  out: string;
  tasks: number;
  dbPath: string;
  /** Cores per task; the command's --threads. */
  cpus: number;
  gpus?: number;
  /** Slurm's time format, e.g. 02:00:00 or 1-00:00:00. */
  time?: string;
  partition?: string;
  mem?: string;
  account?: string;
}

export interface ClusterPlan extends SlurmRequest {
  script: string;
  createdAt: string;
  jobId: string | null;
  submittedAt: string | null;
}

const planPath = (out: string) => join(out, 'cluster.json');
const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Writes `<out>/embaug-<command>.sbatch` and `<out>/cluster.json`; submits nothing. */
export function writeSlurmScript(r: SlurmRequest): ClusterPlan {
  if (!Number.isInteger(r.tasks) || r.tasks < 1 || r.tasks > 100000) throw new EmbaugError('E_ARG', `--tasks takes a whole number from 1 to 100000 (the array's size), got ${r.tasks}`);
  if (!Number.isInteger(r.cpus) || r.cpus < 1) throw new EmbaugError('E_ARG', `--cpus takes a whole number of cores per task, at least 1, got ${r.cpus}`);
  if (r.time !== undefined && !/^(\d+-)?\d+(:\d{2}){0,2}$/.test(r.time)) throw new EmbaugError('E_ARG', `--time takes Slurm's format (minutes, HH:MM:SS or D-HH:MM:SS), got "${r.time}"`);
  for (const bad of ['--shard', '--out', '--db'])
    if (r.args.some((a) => a === bad || a.startsWith(`${bad}=`))) throw new EmbaugError('E_ARG', `give ${bad} to cluster slurm itself, not in the command's arguments: the script sets it for every task`);
  const out = outputFolder(r.out);
  const existing = readPlan(out, false);
  if (existing) throw new EmbaugError('E_EXISTS', `${out} already holds the plan of an array (${existing.command}, cluster.json): choose an empty folder for a new array, or follow that one with embaug cluster status ${out}.`);
  const script = join(out, `embaug-${r.command}.sbatch`);
  const node = process.execPath;
  const cli = join(packageRoot(), 'bin', 'embaug.js');
  const lines = [
    '#!/bin/bash',
    `#SBATCH --job-name=embaug-${r.command}`,
    `#SBATCH --array=0-${r.tasks - 1}`,
    '#SBATCH --ntasks=1',
    `#SBATCH --cpus-per-task=${r.cpus}`,
    `#SBATCH --output=${join(out, 'logs', '%A_%a.out')}`,
    ...(r.gpus ? [`#SBATCH --gres=gpu:${r.gpus}`] : []),
    ...(r.time ? [`#SBATCH --time=${r.time}`] : []),
    ...(r.partition ? [`#SBATCH --partition=${r.partition}`] : []),
    ...(r.mem ? [`#SBATCH --mem=${r.mem}`] : []),
    ...(r.account ? [`#SBATCH --account=${r.account}`] : []),
    '# Written by embaug cluster slurm: one task per shard; each writes its own files into the',
    '# output folder, and `embaug merge` brings them into the database.',
    'set -euo pipefail',
    `exec ${quote(node)} ${quote(cli)} --db ${quote(resolve(r.dbPath))} --threads ${r.cpus} --quiet ${r.command} ${r.args.map(quote).join(' ')} --out ${quote(out)} --shard "\${SLURM_ARRAY_TASK_ID}/${r.tasks}"`,
    '',
  ];
  writeFileAtomic(join(out, 'logs', '.keep'), '');
  writeFileAtomic(script, lines.join('\n'));
  const plan: ClusterPlan = { ...r, out, dbPath: resolve(r.dbPath), script, createdAt: new Date().toISOString(), jobId: null, submittedAt: null };
  writeFileAtomic(planPath(out), JSON.stringify(plan, null, 2));
  return plan;
}

/** sbatch the folder's script; records the job id in cluster.json. */
export function submitSlurm(out: string): ClusterPlan {
  const plan = readPlan(out);
  if (plan.jobId) throw new EmbaugError('E_EXISTS', `The array of ${out} was submitted already (job ${plan.jobId}): follow it with embaug cluster status ${out}.`);
  const r = spawnSync('sbatch', ['--parsable', plan.script], { encoding: 'utf8' });
  if (r.error) throw new EmbaugError('E_NOT_FOUND', `sbatch could not be run (${(r.error as NodeJS.ErrnoException).code}): submit from a machine with Slurm's client commands, or run sbatch ${plan.script} yourself.`);
  if (r.status !== 0) throw new EmbaugError('E_ARG', `sbatch refused ${plan.script}: ${r.stderr.trim() || `exit ${r.status}`}`);
  const updated = { ...plan, jobId: r.stdout.trim().split(';')[0], submittedAt: new Date().toISOString() };
  writeFileAtomic(planPath(updated.out), JSON.stringify(updated, null, 2));
  return updated;
}

export interface TaskStatus {
  k: number;
  /** Slurm's state while the task is known to squeue (PENDING, RUNNING, …), else null. */
  state: string | null;
  /** Its end state from sacct (COMPLETED, FAILED, TIMEOUT, …) where accounting is kept. */
  ended: string | null;
  /** Its shard file is there: the part is done. */
  done: boolean;
  progress: ShardProgress | null;
  log: string | null;
}

export interface ClusterStatus {
  plan: ClusterPlan;
  tasks: TaskStatus[];
  done: number;
  /** Tasks Slurm still holds (pending or running). */
  active: number;
  /** Tasks that left the queue without writing their file: they failed; their logs say why. */
  failed: number[];
  /** Why squeue could not be asked, if it could not. */
  queueNote: string | null;
}

export function clusterStatus(out: string): ClusterStatus {
  const plan = readPlan(out);
  const scan = scanShards(plan.out).find((s) => s.kind === plan.command && s.n === plan.tasks);
  const states = new Map<number, string>();
  const ended = new Map<number, string>();
  let queueNote: string | null = null;
  if (plan.jobId) {
    const q = spawnSync('squeue', ['-h', '-r', '-j', plan.jobId, '-o', '%K %T'], { encoding: 'utf8' });
    if (q.error || q.status !== 0) queueNote = q.error ? `squeue could not be run (${(q.error as NodeJS.ErrnoException).code})` : `squeue: ${q.stderr.trim()}`;
    // A job that has left the queue is unknown to squeue (exit 1, "Invalid job id"): none active.
    if (q.status === 1 && /Invalid job id/i.test(q.stderr)) queueNote = null;
    for (const line of q.status === 0 ? q.stdout.split('\n') : []) {
      const [k, state] = line.trim().split(/\s+/);
      if (k !== undefined && state) states.set(Number(k), state);
    }
    // Tasks that left the queue: their end state from accounting, where the site keeps it
    // (sacct answers "accounting storage is disabled" otherwise, and the files tell instead).
    if (states.size < plan.tasks) {
      const a = spawnSync('sacct', ['-n', '-P', '-X', '-j', plan.jobId, '-o', 'JobID,State'], { encoding: 'utf8' });
      for (const line of a.status === 0 ? a.stdout.split('\n') : []) {
        const m = /^\d+_(\d+)\|(\S+)/.exec(line.trim());
        if (m && !states.has(Number(m[1]))) ended.set(Number(m[1]), m[2]);
      }
    }
  } else queueNote = 'not submitted yet (embaug cluster submit)';
  const tasks = Array.from({ length: plan.tasks }, (_, k): TaskStatus => {
    const log = plan.jobId ? join(plan.out, 'logs', `${plan.jobId}_${k}.out`) : null;
    return {
      k, state: states.get(k) ?? null, ended: ended.get(k) ?? null, done: scan?.done.includes(k) ?? false,
      progress: readProgress(plan.out, plan.command, { k, n: plan.tasks }), log: log && existsSync(log) ? log : null,
    };
  });
  const active = tasks.filter((t) => t.state !== null).length;
  const failed = plan.jobId && queueNote === null ? tasks.filter((t) => t.state === null && !t.done).map((t) => t.k) : [];
  return { plan, tasks, done: tasks.filter((t) => t.done).length, active, failed, queueNote };
}

/** Polls until no task is queued or running any more (or the signal aborts). */
export async function waitForArray(out: string, opts: { pollSeconds?: number; signal?: AbortSignal; onStatus?: (s: ClusterStatus) => void } = {}): Promise<ClusterStatus> {
  for (;;) {
    const s = clusterStatus(out);
    opts.onStatus?.(s);
    if (s.active === 0 || s.queueNote !== null) return s;
    if (opts.signal?.aborted) throw new EmbaugError('E_CANCELLED', 'stopped waiting for the array (it goes on running: embaug cluster status shows it)');
    await new Promise((r) => setTimeout(r, (opts.pollSeconds ?? 5) * 1000));
  }
}

export function readPlan(out: string): ClusterPlan;
export function readPlan(out: string, required: false): ClusterPlan | null;
export function readPlan(out: string, required = true): ClusterPlan | null {
  const p = planPath(resolve(out));
  if (!existsSync(p)) {
    if (!required) return null;
    throw new EmbaugError('E_NOT_FOUND', `${resolve(out)} holds no cluster.json: it is not the folder of an array made with embaug cluster slurm.`);
  }
  return JSON.parse(readFileSync(p, 'utf8')) as ClusterPlan;
}

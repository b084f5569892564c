import { resolve } from 'node:path';

import { clusterStatus, mergeShards, submitSlurm, waitForArray, writeSlurmScript, type ClusterStatus } from '../../engine/cluster/index.js';
import { planExtraction } from '../../engine/embeddings/index.js';
import { EmbaugError } from '../../engine/errors.js';
import { UsageError, intOpt, parse, splitGlobals } from '../args.js';
import { type Ctx, table } from '../context.js';
import { prepareFor } from './grid.js';
import { extractArgs } from './model.js';
import { REPRODUCE_OPTIONS, reproduceOptions } from './reproduce.js';
import { STUDY_OPTIONS, studyOptions } from './study.js';

export const CLUSTER_HELP = `embaug cluster <command>
  slurm --tasks N --out DIR [--cpus 2] [--gpus G] [--time HH:MM:SS] [--partition P] [--mem M]
        [--account A] [--submit] <extract|reproduce|study> [the command's options]
      Writes DIR/embaug-<command>.sbatch: a job array of N tasks, task K running the command
      with --shard K/N --out DIR, --threads = --cpus. DIR and the database (--db) must be on
      storage every node sees. For reproduce and study, the data sets and backbones are put
      into the database first. --submit hands the script to sbatch.
  submit DIR             sbatch the folder's script.
  status DIR [--wait]    Each task's Slurm state (squeue), progress and whether its file is
                         there; --wait polls until no task is queued or running.`;

export const MERGE_HELP = `embaug merge DIR
  Puts the shard files of DIR into the database: embeddings into the cache, runs into the runs
  table; with every part of a reproduction there, writes its report into DIR. Merging twice
  adds nothing twice; missing parts are named by number (exit code 3).`;

export async function cluster(ctx: Ctx, argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub === 'slurm') {
    // The cluster's own options come before the command's name; the rest is the command's.
    const at = rest.findIndex((a) => a === 'extract' || a === 'reproduce' || a === 'study');
    if (at < 0) throw new UsageError(`cluster slurm needs the command to shard: extract, reproduce or study\n${CLUSTER_HELP}`);
    const { values } = parse(rest.slice(0, at), {
      tasks: { type: 'string' }, out: { type: 'string' }, cpus: { type: 'string' }, gpus: { type: 'string' }, time: { type: 'string' },
      partition: { type: 'string' }, mem: { type: 'string' }, account: { type: 'string' }, submit: { type: 'boolean' },
    });
    if (!values.tasks || !values.out) throw new UsageError(`cluster slurm needs --tasks N and --out DIR\n${CLUSTER_HELP}`);
    const command = rest[at] as 'extract' | 'reproduce' | 'study';
    // Global options are the script's to set.
    const args = splitGlobals(rest.slice(at + 1)).rest;
    if (command === 'extract') {
      // The tasks' arguments checked here, before anything is submitted: a misspelt data set
      // would otherwise fail in every task.
      const { augs, req } = extractArgs(ctx, args);
      const db = ctx.readDb();
      for (const aug of augs) planExtraction(db, { ...req, aug, limit: 1 });
    } else {
      // Every task works on its own copy of the database: what they all read goes in first.
      const o = command === 'reproduce' ? reproduceOptions(ctx, parse(args, REPRODUCE_OPTIONS).values) : studyOptions(ctx, parse(args, STUDY_OPTIONS).values);
      const p = await prepareFor(ctx, command, o);
      ctx.log(`the data sets and the backbones of ${p.families.join(', ')} are in ${ctx.dbPath}`);
    }
    let plan = writeSlurmScript({
      command, args, out: String(values.out), tasks: intOpt(values.tasks, 'tasks')!, dbPath: resolve(ctx.dbPath), cpus: intOpt(values.cpus, 'cpus', 2)!,
      gpus: intOpt(values.gpus, 'gpus'), time: values.time as string | undefined, partition: values.partition as string | undefined,
      mem: values.mem as string | undefined, account: values.account as string | undefined,
    });
    if (values.submit) plan = submitSlurm(plan.out);
    ctx.out(plan, `wrote ${plan.script}${plan.jobId ? `\nsubmitted: job ${plan.jobId}; follow it with embaug cluster status ${plan.out}` : `\nsubmit it with embaug cluster submit ${plan.out} (or sbatch ${plan.script})`}`);
    return;
  }
  if (sub === 'submit') {
    const { positionals } = parse(rest, {}, 1);
    if (positionals.length !== 1) throw new UsageError('usage: embaug cluster submit DIR');
    const plan = submitSlurm(resolve(positionals[0]));
    ctx.out(plan, `submitted: job ${plan.jobId}; follow it with embaug cluster status ${plan.out}`);
    return;
  }
  if (sub === 'status') {
    const { values, positionals } = parse(rest, { wait: { type: 'boolean' }, poll: { type: 'string' } }, 1);
    if (positionals.length !== 1) throw new UsageError('usage: embaug cluster status DIR [--wait]');
    const dir = resolve(positionals[0]);
    const s = values.wait
      ? await waitForArray(dir, { pollSeconds: intOpt(values.poll, 'poll', 5), signal: ctx.signal, onStatus: (x) => ctx.progress({ stage: `array ${x.plan.jobId ?? ''} (${x.plan.command})`, done: x.done, total: x.plan.tasks, unit: 'tasks', rate: 0, etaSeconds: null }) })
      : clusterStatus(dir);
    ctx.out(s, () => statusText(s));
    if (s.failed.length) throw new EmbaugError('E_NOT_FOUND', `task${s.failed.length > 1 ? 's' : ''} ${s.failed.join(', ')} left the queue without writing ${s.failed.length > 1 ? 'their files' : 'its file'}: read ${s.plan.out}/logs, then resubmit only those (sbatch --array=${s.failed.join(',')} ${s.plan.script}).`);
    return;
  }
  throw new UsageError(`unknown command "cluster ${sub ?? ''}"\n${CLUSTER_HELP}`);
}

function statusText(s: ClusterStatus): string {
  const eta = (x: number | null) => (x === null ? '' : x < 90 ? `${Math.round(x)} s` : `${(x / 60).toFixed(1)} min`);
  return [
    `${s.plan.command} array of ${s.plan.tasks} task${s.plan.tasks > 1 ? 's' : ''}${s.plan.jobId ? `, Slurm job ${s.plan.jobId}` : ''}: ${s.done} done, ${s.active} queued or running${s.queueNote ? ` (${s.queueNote})` : ''}`,
    table([
      ['task', 'state', 'file', 'progress', 'rate', 'eta'],
      ...s.tasks.map((t) => [
        t.k, t.state ?? t.ended ?? (t.done ? 'finished' : s.failed.includes(t.k) ? 'FAILED' : '-'), t.done ? 'yes' : 'no',
        t.progress ? `${t.progress.stage} ${t.progress.done}/${t.progress.total}` : '', t.progress && t.progress.rate ? `${t.progress.rate.toFixed(1)} ${t.progress.unit}/s` : '', t.progress && !t.done ? eta(t.progress.etaSeconds) : '',
      ]),
    ]),
  ].join('\n');
}

export async function mergeCmd(ctx: Ctx, argv: string[]): Promise<void> {
  const { positionals } = parse(argv, {}, 1);
  if (positionals.length !== 1) throw new UsageError(`usage: ${MERGE_HELP}`);
  const r = await mergeShards(ctx.db(), resolve(positionals[0]), ctx.progress);
  ctx.out(r, () => [
    ...r.extract.map((e) => `embeddings: ${e.files} of ${e.n} parts, ${e.rows} vectors, ${e.added} new to the cache`),
    ...r.grids.map((g) => `${g.kind}: ${g.runsAdded} runs added, ${g.runsExisting} merged before${g.report ? `; wrote ${g.report}/${g.kind === 'study' ? 'study.md' : 'table2.md'}, report.html` : ` (${g.n} parts: the report is written when all are there)`}`),
    ...(r.extract.length + r.grids.length === 0 ? [`${r.dir} holds no shard files (extract-K-of-N.parquet, reproduce-K-of-N.json, study-K-of-N.json)`] : []),
  ].join('\n'));
  if (r.missing.length)
    throw new EmbaugError('E_NOT_FOUND', r.missing.map((m) => `${m.kind}: part${m.parts.length > 1 ? 's' : ''} ${m.parts.join(', ')} of ${m.n} missing`).join('; ') + ` in ${r.dir}: what is there was merged; run the missing tasks (sbatch --array=<those> …), then merge again.`);
}

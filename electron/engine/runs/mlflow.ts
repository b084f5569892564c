/**
 * Runs written in MLflow's file-store layout, so `mlflow ui --backend-store-uri DIR` opens them
 * and anything that reads MLflow's files (or pandas on them) can:
 *
 *   DIR/<experiment id>/meta.yaml                       one experiment per run group
 *   DIR/<experiment id>/<run id>/meta.yaml              status, times, name
 *   DIR/<experiment id>/<run id>/params/<key>           the config, flattened ("optimizer.lr")
 *   DIR/<experiment id>/<run id>/metrics/<key>          "<timestamp ms> <value> <step>" per line
 *   DIR/<experiment id>/<run id>/tags/<key>             mlflow.runName, mlflow.parentRunId, embaug.*
 *   DIR/<experiment id>/<run id>/artifacts/<name>       the run's artifacts (weights, …)
 *
 * Run ids are derived from the database's run ids, so exporting again gives the same folders.
 */
import { createHash } from 'node:crypto';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import type { Db } from '../db.js';
import { EmbaugError } from '../errors.js';
import { makeDirs, outputFolder } from '../paths.js';
import { artifactBytes, listRuns, runArtifacts, runMetrics, type RunFilter, type RunRecord } from './store.js';

/** MLflow's RunStatus values. */
const STATUS: Record<RunRecord['status'], number> = { running: 1, completed: 3, failed: 4, cancelled: 5, interrupted: 5 };

/** Characters MLflow allows in keys; anything else becomes "_". */
const key = (k: string) => k.replace(/[^\w\-. /]/g, '_').slice(0, 250);

/** A YAML scalar: numbers bare, strings single-quoted (the only escape: a doubled quote). */
const yaml = (v: string | number) => (typeof v === 'number' ? String(v) : `'${v.replace(/'/g, "''")}'`);
const meta = (o: Record<string, string | number | unknown[]>) =>
  `${Object.entries(o).map(([k, v]) => `${k}: ${Array.isArray(v) ? '[]' : yaml(v as string | number)}`).join('\n')}\n`;

export const mlflowRunId = (runId: number, startedAt: string) => createHash('sha256').update(`embaug run ${runId} ${startedAt}`).digest('hex').slice(0, 32);

/** The config as MLflow params: nested objects flattened with dots, values as text. */
export function flattenParams(config: Record<string, unknown>, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(config)) {
    const name = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) Object.assign(out, flattenParams(v as Record<string, unknown>, name));
    else if (v !== undefined) out[key(name)] = (typeof v === 'string' ? v : JSON.stringify(v)).slice(0, 6000);
  }
  return out;
}

/** A run's final metrics: the summary's numbers (test accuracy, held-out MSE, …). */
export function finalMetrics(r: RunRecord): Record<string, number> {
  const out: Record<string, number> = {};
  const walk = (o: Record<string, unknown>, prefix: string) => {
    for (const [k, v] of Object.entries(o)) {
      const name = prefix ? `${prefix}.${k}` : k;
      if (typeof v === 'number' && Number.isFinite(v)) out[key(name)] = v;
      else if (v && typeof v === 'object' && !Array.isArray(v) && !prefix) walk(v as Record<string, unknown>, name);
    }
  };
  walk(r.summary ?? {}, '');
  return out;
}

export interface MlflowExport {
  out: string;
  experiments: { id: string; name: string; runs: number }[];
  runs: number;
}

export function exportMlflow(db: Db, o: { out: string; filter?: RunFilter }): MlflowExport {
  const runs = listRuns(db, { limit: 1_000_000, ...o.filter });
  // A filter that matches nothing (a misspelt kind or group) writes no empty store.
  if (runs.length === 0) {
    const given = Object.entries(o.filter ?? {}).filter(([, v]) => v !== undefined).map(([k, v]) => `${k} "${String(v)}"`);
    throw new EmbaugError('E_NOT_FOUND', `No runs${given.length ? ` with ${given.join(', ')}` : ' yet'}: nothing was written. List them with embaug runs list.`);
  }
  const out = outputFolder(o.out);
  if (readdirSync(out).some((f) => !/^\d+$/.test(f)))
    throw new EmbaugError('E_EXISTS', `${out} holds files that are not MLflow experiments: choose an empty folder, or one an earlier export wrote.`);
  const byId = new Map(listRuns(db, { limit: 1_000_000 }).map((r) => [r.id, r]));
  const groups = [...new Set(runs.map((r) => r.group ?? ''))].sort();
  // Experiment 0 holds the runs of no group, as MLflow's Default experiment does.
  const expId = new Map(groups.map((g, i) => [g, g === '' ? '0' : String(i + (groups[0] === '' ? 0 : 1))]));
  const experiments: MlflowExport['experiments'] = [];
  for (const g of groups) {
    const id = expId.get(g)!;
    const dir = join(out, id);
    makeDirs(dir);
    const mine = runs.filter((r) => (r.group ?? '') === g);
    const t0 = Math.min(...mine.map((r) => Date.parse(r.startedAt)));
    writeFileSync(join(dir, 'meta.yaml'), meta({ artifact_location: `file://${dir}`, creation_time: t0, experiment_id: id, last_update_time: t0, lifecycle_stage: 'active', name: g || 'embaug' }));
    experiments.push({ id, name: g || 'embaug', runs: mine.length });
    for (const r of mine) {
      const rid = mlflowRunId(r.id, r.startedAt);
      const rd = join(dir, rid);
      for (const sub of ['params', 'metrics', 'tags', 'artifacts']) makeDirs(join(rd, sub));
      const start = Date.parse(r.startedAt), end = r.endedAt ? Date.parse(r.endedAt) : start;
      writeFileSync(join(rd, 'meta.yaml'), meta({
        artifact_uri: `file://${join(rd, 'artifacts')}`, end_time: end, entry_point_name: '', experiment_id: id, lifecycle_stage: 'active', run_id: rid, run_name: r.name,
        run_uuid: rid, source_name: '', source_type: 4, source_version: '', start_time: start, status: STATUS[r.status], tags: [], user_id: 'embaug',
      }));
      for (const [k, v] of Object.entries(flattenParams(r.config))) writeFileSync(join(rd, 'params', k), v);
      const series = runMetrics(db, r.id);
      for (const [name, points] of Object.entries(series)) writeFileSync(join(rd, 'metrics', key(name)), points.map((p) => `${end} ${p.value} ${p.step}`).join('\n') + '\n');
      for (const [name, v] of Object.entries(finalMetrics(r))) if (!series[name]) writeFileSync(join(rd, 'metrics', name), `${end} ${v} 0\n`);
      const parent = r.parentId === null ? undefined : byId.get(r.parentId);
      const tags: Record<string, string> = {
        'mlflow.runName': r.name, 'mlflow.user': 'embaug', 'embaug.run_id': String(r.id), 'embaug.kind': r.kind, 'embaug.status': r.status,
        ...(parent ? { 'mlflow.parentRunId': mlflowRunId(parent.id, parent.startedAt) } : {}),
        ...(r.note || r.error ? { 'mlflow.note.content': [r.note, r.error && `error: ${r.error}`].filter(Boolean).join('\n\n') } : {}),
        ...(r.tags.length ? { 'embaug.tags': r.tags.join(', ') } : {}),
        ...(r.backboneSha ? { 'embaug.backbone_sha256': r.backboneSha } : {}),
        ...(r.datasetVersion ? { 'embaug.dataset_version': r.datasetVersion } : {}),
      };
      for (const [k, v] of Object.entries(tags)) writeFileSync(join(rd, 'tags', k), v);
      for (const a of runArtifacts(db, r.id)) writeFileSync(join(rd, 'artifacts', key(a.name)), artifactBytes(db, r.id, a.name));
    }
  }
  return { out, experiments, runs: runs.length };
}

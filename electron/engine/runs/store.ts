/**
 * The run store: one record per extraction, Ω or Ψ training, reproduction and export, with
 * its config, metric series and artifacts, and the queries the UI and the reports need.
 */
import { createHash } from 'node:crypto';
import { cpus, hostname } from 'node:os';
import { threadId } from 'node:worker_threads';

import type Database from 'better-sqlite3';

import { stmt, type Db } from '../db.js';
import { EmbaugError } from '../errors.js';
import * as v from '../validate.js';

export const RUN_STATUSES = ['running', 'completed', 'failed', 'cancelled', 'interrupted'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

export interface RunRecord {
  id: number;
  kind: string;
  name: string;
  parentId: number | null;
  group: string | null;
  backboneSha: string | null;
  datasetId: number | null;
  datasetVersion: string | null;
  protocol: string | null;
  config: Record<string, unknown>;
  seed: number | null;
  status: RunStatus;
  startedAt: string;
  endedAt: string | null;
  host: Record<string, unknown>;
  summary: Record<string, unknown> | null;
  error: string | null;
  /** The user's tags and note. */
  tags: string[];
  note: string | null;
}

export interface StartRun {
  kind: string;
  name: string;
  parentId?: number | null;
  group?: string | null;
  backboneSha?: string | null;
  datasetId?: number | null;
  datasetVersion?: string | null;
  protocol?: string | null;
  config: Record<string, unknown>;
  seed?: number | null;
  threads?: number;
  backend?: string;
}

interface Row {
  id: number;
  kind: string;
  name: string;
  parent_id: number | null;
  group_name: string | null;
  backbone_sha: string | null;
  dataset_id: number | null;
  dataset_version: string | null;
  protocol: string | null;
  config: string;
  seed: number | null;
  status: RunStatus;
  started_at: string;
  ended_at: string | null;
  host: string;
  summary: string | null;
  error: string | null;
  tags: string;
  note: string | null;
}

function toRecord(r: Row): RunRecord {
  return {
    id: r.id,
    kind: r.kind,
    name: r.name,
    parentId: r.parent_id,
    group: r.group_name,
    backboneSha: r.backbone_sha,
    datasetId: r.dataset_id,
    datasetVersion: r.dataset_version,
    protocol: r.protocol,
    config: JSON.parse(r.config),
    seed: r.seed,
    status: r.status,
    startedAt: r.started_at,
    endedAt: r.ended_at,
    host: JSON.parse(r.host),
    summary: r.summary ? JSON.parse(r.summary) : null,
    error: r.error,
    tags: JSON.parse(r.tags),
    note: r.note,
  };
}

/** A run in progress: metrics and artifacts go straight to the database. */
export class Run {
  readonly id: number;
  #db: Db;
  #metric: Database.Statement<[number, string, number, number]>;
  #done = false;

  constructor(db: Db, id: number) {
    this.#db = db;
    this.id = id;
    this.#metric = db.prepare<[number, string, number, number]>('INSERT OR REPLACE INTO metrics (run_id, name, step, value) VALUES (?, ?, ?, ?)');
  }

  metric(name: string, step: number, value: number): void {
    if (Number.isFinite(value)) this.#metric.run(this.id, name, step, value);
  }

  metrics(step: number, values: Record<string, number | null | undefined>): void {
    this.#db.transaction(() => {
      for (const [k, v] of Object.entries(values)) if (typeof v === 'number') this.metric(k, step, v);
    })();
  }

  artifact(kind: string, name: string, bytes: Uint8Array, meta: Record<string, unknown> = {}): string {
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    this.#db
      .prepare('INSERT OR REPLACE INTO artifacts (run_id, kind, name, sha256, bytes, meta) VALUES (?, ?, ?, ?, ?, ?)')
      .run(this.id, kind, name, sha256, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), JSON.stringify(meta));
    return sha256;
  }

  #end(status: RunStatus, summary: Record<string, unknown> | null, error: string | null): void {
    if (this.#done) return;
    this.#done = true;
    this.#db
      .prepare('UPDATE runs SET status = ?, ended_at = ?, summary = coalesce(?, summary), error = ? WHERE id = ?')
      .run(status, new Date().toISOString(), summary ? JSON.stringify(summary) : null, error, this.id);
  }

  complete(summary: Record<string, unknown>): void {
    this.#end('completed', summary, null);
  }

  /** Records a failure or a cancellation (E_CANCELLED) and returns the error for rethrow. */
  fail(err: unknown): unknown {
    const cancelled = err instanceof EmbaugError && err.code === 'E_CANCELLED';
    this.#end(cancelled ? 'cancelled' : 'failed', null, err instanceof Error ? err.message : String(err));
    return err;
  }

  /** Runs fn inside this run: completes with its summary, or records how it failed. */
  async wrap<T>(fn: (run: Run) => Promise<T>, summarise: (v: T) => Record<string, unknown>): Promise<T> {
    try {
      const v = await fn(this);
      this.complete(summarise(v));
      return v;
    } catch (err) {
      throw this.fail(err);
    }
  }
}

export function startRun(db: Db, s: StartRun): Run {
  const host = {
    hostname: hostname(),
    pid: process.pid,
    // Jobs run in worker threads of one process: the thread tells whose runs a dead worker left.
    thread: threadId,
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    threads: s.threads ?? cpus().length,
    backend: s.backend ?? 'cpu',
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
  const info = db
    .prepare(
      `INSERT INTO runs (kind, name, parent_id, group_name, backbone_sha, dataset_id, dataset_version, protocol, config,
                         seed, status, started_at, host)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?)`,
    )
    .run(
      s.kind, s.name, s.parentId ?? null, s.group ?? null, s.backboneSha ?? null, s.datasetId ?? null,
      s.datasetVersion ?? null, s.protocol ?? null, JSON.stringify(s.config), s.seed ?? null,
      new Date().toISOString(), JSON.stringify(host),
    );
  return new Run(db, Number(info.lastInsertRowid));
}

/**
 * Marks the runs that a worker thread of this process left "running" as failed, with the
 * reason: called as soon as the worker exits without finishing, so a crashed job's runs
 * do not wait for the next start to be marked.
 */
export function failRunsOfThread(db: Db, thread: number, reason: string): number {
  const rows = stmt(db, `SELECT id, host FROM runs WHERE status = 'running'`).all() as { id: number; host: string }[];
  const mine = rows.filter((r) => {
    const h = JSON.parse(r.host) as { hostname?: string; pid?: number; thread?: number };
    return h.hostname === hostname() && h.pid === process.pid && h.thread === thread;
  });
  const mark = stmt(db, `UPDATE runs SET status = 'failed', ended_at = ?, error = ? WHERE id = ? AND status = 'running'`);
  db.transaction(() => mine.forEach((r) => mark.run(new Date().toISOString(), reason, r.id)))();
  return mine.length;
}

export interface RunFilter {
  kind?: string;
  status?: RunStatus;
  group?: string;
  parentId?: number;
  search?: string;
  limit?: number;
}

export function listRuns(db: Db, f: RunFilter = {}): RunRecord[] {
  // A misspelt status would match nothing and read as "no such runs".
  if (f.status !== undefined) v.oneOf('status', f.status, RUN_STATUSES);
  const where: string[] = [];
  const args: unknown[] = [];
  if (f.kind) (where.push('kind = ?'), args.push(f.kind));
  if (f.status) (where.push('status = ?'), args.push(f.status));
  if (f.group) (where.push('group_name = ?'), args.push(f.group));
  if (f.parentId !== undefined) (where.push('parent_id = ?'), args.push(f.parentId));
  if (f.search) (where.push('(name LIKE ? OR config LIKE ? OR group_name LIKE ? OR tags LIKE ? OR note LIKE ?)'), args.push(...Array(5).fill(`%${f.search}%`)));
  const sql = `SELECT * FROM runs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
  return (db.prepare(sql).all(...args, f.limit ?? 1000) as Row[]).map(toRecord);
}

export function getRun(db: Db, id: number): RunRecord {
  const r = stmt(db, 'SELECT * FROM runs WHERE id = ?').get(id) as Row | undefined;
  if (!r) throw new EmbaugError('E_NOT_FOUND', `There is no run ${id}: list runs with \`embaug runs list\`.`);
  return toRecord(r);
}

/** Sets a run's tags and/or note (what is not given stays). */
export function updateRun(db: Db, id: number, u: { tags?: string[]; note?: string | null }): RunRecord {
  getRun(db, id);
  if (u.tags !== undefined) {
    const tags = [...new Set(u.tags.map((t) => t.trim()).filter(Boolean))];
    const bad = tags.find((t) => t.length > 100);
    if (bad) throw new EmbaugError('E_ARG', `the tag "${bad.slice(0, 20)}…" is longer than 100 characters: use a shorter one`);
    stmt(db, 'UPDATE runs SET tags = ? WHERE id = ?').run(JSON.stringify(tags), id);
  }
  if (u.note !== undefined) stmt(db, 'UPDATE runs SET note = ? WHERE id = ?').run(u.note?.trim() || null, id);
  return getRun(db, id);
}

/**
 * Deletes runs with everything under them (child runs, metrics, artifacts), in one
 * transaction. A run still running is refused: its process would write to a run that is gone.
 */
export function deleteRuns(db: Db, ids: number[]): { deleted: number[] } {
  const children = stmt(db, 'SELECT id FROM runs WHERE parent_id = ?');
  const all: number[] = [];
  const walk = (id: number) => {
    all.push(id);
    for (const c of children.all(id) as { id: number }[]) walk(c.id);
  };
  for (const id of ids) walk(getRun(db, id).id);
  const unique = [...new Set(all)];
  const running = unique.map((id) => getRun(db, id)).find((r) => r.status === 'running');
  if (running) throw new EmbaugError('E_BUSY', `Run ${running.id} ("${running.name}") is still running: cancel it first, then delete.`);
  const del = stmt(db, 'DELETE FROM runs WHERE id = ?');
  // Children first: a parent's row is referenced by theirs.
  db.transaction(() => {
    for (const id of [...unique].reverse()) del.run(id);
  })();
  return { deleted: unique.sort((a, b) => a - b) };
}

export type Series = Record<string, { step: number; value: number }[]>;

export function runMetrics(db: Db, id: number): Series {
  const rows = stmt(db, 'SELECT name, step, value FROM metrics WHERE run_id = ? ORDER BY name, step').all(id) as {
    name: string;
    step: number;
    value: number;
  }[];
  const out: Series = {};
  for (const r of rows) (out[r.name] ??= []).push({ step: r.step, value: r.value });
  return out;
}

/** The step where a metric is best (max, or min for names ending in loss or mse). */
export function bestEpoch(db: Db, id: number, metric: string): { step: number; value: number } | null {
  const lower = /(loss|mse)$/i.test(metric);
  return (
    (db
      .prepare(`SELECT step, value FROM metrics WHERE run_id = ? AND name = ? ORDER BY value ${lower ? 'ASC' : 'DESC'}, step LIMIT 1`)
      .get(id, metric) as { step: number; value: number } | undefined) ?? null
  );
}

/** Configs and metrics of several runs side by side; `differs` names config keys that vary. */
export function compareRuns(db: Db, ids: number[]) {
  const runs = ids.map((id) => getRun(db, id));
  const keys = new Set(runs.flatMap((r) => Object.keys(r.config)));
  const differs = [...keys].filter((k) => new Set(runs.map((r) => JSON.stringify(r.config[k]))).size > 1).sort();
  return { runs, differs, metrics: Object.fromEntries(ids.map((id) => [id, runMetrics(db, id)])) };
}

export function runArtifacts(db: Db, id: number) {
  return stmt(db, 'SELECT id, kind, name, sha256, length(bytes) AS size, meta FROM artifacts WHERE run_id = ?').all(id) as {
    id: number;
    kind: string;
    name: string;
    sha256: string;
    size: number;
    meta: string;
  }[];
}

export function artifactBytes(db: Db, runId: number, name: string): Buffer {
  const r = stmt(db, 'SELECT bytes FROM artifacts WHERE run_id = ? AND name = ?').get(runId, name) as { bytes: Buffer } | undefined;
  if (!r) throw new EmbaugError('E_NOT_FOUND', `Run ${runId} has no artifact "${name}".`);
  return r.bytes;
}

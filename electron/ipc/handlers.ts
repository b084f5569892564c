/**
 * One engine call per channel, after the payload is validated. Electron's main process and
 * the web server both route every request through `handle`, so they cannot drift apart.
 */
import { readFileSync } from 'node:fs';

import { addBackbone, addClassifierBackbone, embeddingCandidates, listBackbones } from '../engine/backbones/index.js';
import { classHistogram, editDataset, getDataset, imagePage, listDatasets, listVersions, restoreVersion, thumbnails } from '../engine/datasets/index.js';
import type { Db } from '../engine/db.js';
import { cacheStats } from '../engine/embeddings/index.js';
import { errorInfo } from '../engine/errors.js';
import { exportRun } from '../engine/export/index.js';
import { getThreads, listBackends } from '../engine/native/index.js';
import { paperNumbers, paperShape } from '../engine/paper/index.js';
import { compareRuns, getRun, listRuns, runMetrics } from '../engine/runs/index.js';
import type { JobRunner } from '../jobs/runner.js';
import { type Api, CHANNELS, type Channel, type ReproductionSummary, type Result } from './contract.js';
import { SCHEMAS } from './schemas.js';

export interface HandlerContext {
  db: Db;
  dbPath: string;
  jobs: JobRunner;
  mode: 'electron' | 'web';
  version: string;
}

type Impl = { [C in Channel]: (req: Api[C]['req']) => Promise<Api[C]['res']> | Api[C]['res'] };

function implementation(ctx: HandlerContext): Impl {
  const { db } = ctx;
  return {
    'system:info': () => ({ version: ctx.version, dbPath: ctx.dbPath, backends: listBackends(), threads: getThreads(), mode: ctx.mode }),
    'datasets:list': () => listDatasets(db),
    'datasets:histogram': ({ id }) => classHistogram(db, getDataset(db, id).id),
    'datasets:images': ({ id, ...page }) => imagePage(db, getDataset(db, id).id, page),
    'datasets:thumbs': ({ shas }) => thumbnails(db, shas),
    'backbones:list': () => listBackbones(db),
    'backbones:add': async ({ onnxPath, manifestPath, manifest, name }) => addBackbone(db, { onnxPath, manifest: manifest ?? manifestPath, name }),
    'backbones:candidates': ({ onnxPath }) => embeddingCandidates(readFileSync(onnxPath)),
    'backbones:addClassifier': (r) =>
      addClassifierBackbone(db, {
        onnxPath: r.onnxPath, tensor: r.tensor, name: r.name,
        input: { ...(r.height && r.width ? { height: r.height, width: r.width } : {}), mean: r.mean as [number, number, number] | undefined, std: r.std as [number, number, number] | undefined, normalisation: r.normalisedInGraph ? 'inside the graph' : 'by embaug' },
      }),
    'embeddings:stats': () => cacheStats(db),
    'datasets:versions': ({ id }) => listVersions(db, id),
    'datasets:edit': ({ id, edits, note }) => editDataset(db, id, edits, note),
    'datasets:restore': ({ id, hash }) => restoreVersion(db, id, hash),
    'runs:list': (f) => listRuns(db, f),
    'runs:get': ({ id }) => ({ ...getRun(db, id), metrics: runMetrics(db, id) }),
    'runs:compare': ({ ids }) => compareRuns(db, ids),
    'runs:export': ({ runId, outDir, name, merged, force }) => exportRun(db, { runId, outDir, name, merged, force }),
    'paper:latest': () => latestReproduction(db),
    'jobs:start': (req) => ctx.jobs.start(req.kind, req.args as never),
    'jobs:cancel': ({ id }) => ctx.jobs.cancel(id),
    'jobs:list': () => ctx.jobs.list(),
  };
}

function latestReproduction(db: Db): ReproductionSummary | null {
  const run = listRuns(db, { kind: 'reproduce', status: 'completed', limit: 1 })[0];
  if (!run) return null;
  const out = (run.summary as { out?: string } | null)?.out ?? null;
  const read = (f: string) => {
    try {
      return out ? JSON.parse(readFileSync(`${out}/${f}`, 'utf8')) : null;
    } catch {
      return null;
    }
  };
  const table2 = read('table2.json') as ReproductionSummary['table2'];
  // Reports written before the paper's numbers were filled in still get them beside ours.
  if (table2) table2.paper = paperNumbers();
  return { runId: run.id, startedAt: run.startedAt, out, table2, eq8: read('eq8.json'), paperShape: table2 && !table2.perClass ? paperShape(table2.architectures) : [] };
}

export function createHandler(ctx: HandlerContext) {
  const impl = implementation(ctx);
  return async function handle(channel: unknown, payload: unknown): Promise<Result<unknown>> {
    if (typeof channel !== 'string' || !CHANNELS.includes(channel as Channel))
      return { ok: false, error: { code: 'E_CHANNEL', message: `unknown channel ${JSON.stringify(channel)}` } };
    const parsed = SCHEMAS[channel as Channel].safeParse(payload ?? undefined);
    if (!parsed.success)
      return { ok: false, error: { code: 'E_ARG', message: `${channel}: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'payload'}: ${i.message}`).join('; ')}` } };
    try {
      const fn = impl[channel as Channel] as (req: unknown) => unknown;
      return { ok: true, value: await fn(parsed.data) };
    } catch (err) {
      return { ok: false, error: errorInfo(err) };
    }
  };
}

/**
 * One engine call per channel, after the payload is validated. Electron's main process and
 * the web server both route every request through `handle`, so they cannot drift apart.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';

import { addBackbone, addClassifierBackbone, embeddingCandidates, getBackbone, listBackbones } from '../engine/backbones/index.js';
import { classHistogram, editDataset, getDataset, imagePage, listDatasets, listFolder, listVersions, previewFolder, restoreVersion, thumbnails } from '../engine/datasets/index.js';
import type { Db } from '../engine/db.js';
import { cacheStats } from '../engine/embeddings/index.js';
import { classNeighbours } from '../engine/curation/index.js';
import { EmbaugError, errorInfo } from '../engine/errors.js';
import { listBackends } from '../engine/native/index.js';
import { paperNumbers, paperShape } from '../engine/paper/index.js';
import { artifactBytes, compareRuns, deleteRuns, getRun, listRuns, runMetrics, updateRun } from '../engine/runs/index.js';
import { classifyImage } from '../engine/training/index.js';
import type { JobRunner } from '../jobs/runner.js';
import type { JobResults } from '../jobs/tasks.js';
import { type Api, type BundledBackbone, CHANNELS, type Channel, type ReproductionSummary, type Result } from './contract.js';
import { SCHEMAS } from './schemas.js';

export interface HandlerContext {
  db: Db;
  dbPath: string;
  jobs: JobRunner;
  mode: 'electron' | 'web';
  version: string;
  /** The desktop app's native folder dialog (Electron's dialog.showOpenDialog); web mode has none. */
  pickFolder?: () => Promise<string | null>;
  /** The desktop app's open-file dialog, limited to the extensions given. */
  pickFile?: (extensions: string[]) => Promise<string | null>;
}

type Impl = { [C in Channel]: (req: Api[C]['req']) => Promise<Api[C]['res']> | Api[C]['res'] };

function implementation(ctx: HandlerContext): Impl {
  const { db } = ctx;
  return {
    'system:info': () => ({ version: ctx.version, dbPath: ctx.dbPath, backends: listBackends(), threads: ctx.jobs.opts.threads, mode: ctx.mode }),
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
    'curation:neighbours': (r) => classNeighbours(db, r),
    'curation:latest': ({ dataset, backbone }) => {
      const ds = getDataset(db, dataset), bb = getBackbone(db, backbone);
      const seen = new Set<string>();
      return listRuns(db, { kind: 'curate', status: 'completed', limit: 500 })
        .filter((r) => r.datasetId === ds.id && r.datasetVersion === ds.version && r.backboneSha === bb.sha256)
        .flatMap((r) => {
          const what = String(r.config.what);
          if (seen.has(what)) return [];
          seen.add(what);
          return [{ what, runId: r.id, at: r.endedAt ?? r.startedAt, result: JSON.parse(artifactBytes(db, r.id, 'result.json').toString('utf8')) as JobResults['curate'] }];
        });
    },
    'runs:update': ({ id, ...u }) => updateRun(db, id, u),
    'runs:delete': ({ ids, group }) => deleteRuns(db, ids ?? listRuns(db, { group, limit: 1_000_000 }).map((r) => r.id)),
    'paper:latest': () => latestReproduction(db),
    'fs:list': ({ path, ext }) => listFolder(path, browseRoots(ctx), ext),
    'dialog:folder': () => {
      if (!ctx.pickFolder) throw new EmbaugError('E_ARG', 'There is no native folder dialog in web mode: use the workbench\'s folder browser (Browse…).');
      return ctx.pickFolder();
    },
    'dialog:file': ({ extensions }) => {
      if (!ctx.pickFile) throw new EmbaugError('E_ARG', 'There is no native file dialog in web mode: use the workbench\'s file browser (Browse…).');
      return ctx.pickFile(extensions);
    },
    'fs:preview': ({ path }) => previewFolder(path, browseRoots(ctx)),
    'backbones:bundled': () => bundledBackbones(db, ctx.jobs.opts.settings.modelsDir),
    'backbones:addBundled': ({ file }) => {
      const dir = ctx.jobs.opts.settings.modelsDir;
      const m = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { file?: string };
      return addBackbone(db, { onnxPath: join(dir, basename(m.file ?? file.replace(/\.json$/, '.onnx'))), manifest: join(dir, file) });
    },
    'heads:classify': ({ runId, image }) => classifyImage(db, runId, Buffer.from(image, 'base64')),
    'jobs:start': (req) => ctx.jobs.start(req.kind, req.args as never),
    'jobs:cancel': ({ id }) => ctx.jobs.cancel(id),
    'jobs:list': () => ctx.jobs.list(),
  };
}

/** The folders the web mode's picker may show: the user's home and the workbench's own folders. */
function browseRoots(ctx: HandlerContext): string[] {
  const s = ctx.jobs.opts.settings;
  return [...new Set([homedir(), s.dataDir, s.outDir, s.modelsDir])];
}

/** The models folder's backbones, as their descriptions say, and whether each is added. */
function bundledBackbones(db: Db, dir: string): BundledBackbone[] {
  const have = new Set(listBackbones(db).map((b) => b.sha256));
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  } catch {
    return [];
  }
  return files.flatMap((file) => {
    try {
      const m = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { name?: string; file?: string; sha256?: string; architecture?: string; base?: { augmentation?: string; test_top1?: number }; embedding?: { dim?: number } };
      if (!m.file || !m.architecture || !existsSync(join(dir, basename(m.file)))) return [];
      return [{ file, name: m.name ?? file.replace(/\.json$/, ''), architecture: m.architecture, baseAugmentation: m.base?.augmentation ?? null, baseTop1: m.base?.test_top1 ?? null, dim: m.embedding?.dim ?? null, added: !!m.sha256 && have.has(m.sha256) }];
    } catch {
      return [];
    }
  });
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

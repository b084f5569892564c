import { resolve } from 'node:path';

import { exportRun } from '../../engine/export/index.js';
import { EmbaugError } from '../../engine/errors.js';
import { compareRuns, deleteRuns, exportMlflow, getRun, listRuns, runArtifacts, runMetrics, updateRun, type RunStatus } from '../../engine/runs/index.js';
import { UsageError, intOpt, parse } from '../args.js';
import { type Ctx, table } from '../context.js';

export const EXPORT_HELP = `embaug export --run ID --out DIR [--name NAME] [--merged] [--no-safetensors] [--force]
  Export a trained head Ψ (or Ω) run: NAME.onnx (embedding in; logits and probabilities out),
  with --merged NAME.merged.onnx (Φ and Ψ in one graph: image in), and NAME.safetensors with
  NAME.json. Each file is verified in ONNX Runtime against the workbench's own forward pass on
  real embeddings and images before the export is reported done. Files are written under
  temporary names and moved into place only after the checks; an existing file of the same
  name is never replaced without --force.`;

function atLeastOne(n: number, name: string): number {
  if (n < 1) throw new UsageError(`--${name} takes a whole number from 1, got ${n}`);
  return n;
}

/** A run id typed as a word of the command (`runs show 12`), not as an option. */
function runIdArg(p: string | undefined): number | undefined {
  if (p === undefined) return undefined;
  const n = Number(p);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`"${p}" is not a run id: a run id is a whole number from 1 (see embaug runs list)`);
  return n;
}

export async function exportCmd(ctx: Ctx, argv: string[]): Promise<void> {
  const { values } = parse(argv, { run: { type: 'string' }, out: { type: 'string' }, name: { type: 'string' }, merged: { type: 'boolean' }, 'no-safetensors': { type: 'boolean' }, force: { type: 'boolean' } });
  const runId = intOpt(values.run, 'run');
  if (runId === undefined || !values.out) throw new UsageError(`export needs --run and --out\n${EXPORT_HELP}`);
  const r = await exportRun(ctx.db(), { runId, outDir: resolve(values.out as string), name: values.name as string | undefined, merged: !!values.merged, safetensors: !values['no-safetensors'], force: !!values.force });
  ctx.out(r, () => [...r.files.map((f) => `wrote ${f.path} (${f.bytes} bytes)`), ...r.checks.map((c) => `checked ${c.what}: max difference ${c.maxAbsDiff.toExponential(2)}${c.argmaxAgreement === null ? '' : `, argmax agreement ${(100 * c.argmaxAgreement).toFixed(1)}%`}`)].join('\n'));
}

export const RUNS_HELP = `embaug runs <command>
  list [--kind K] [--status S] [--group G] [--search TEXT] [--limit N]
  show <id>                  Config, summary, metric series and artifacts of a run.
  compare <id> <id> ...      Configs that differ, and final metrics side by side.
  tag <id> <tag> ...         Set a run's tags (none: clear them).
  note <id> <text>           Set a run's note ("" clears it).
  delete <id> ... | --group G
                             Delete runs with their child runs, metrics and artifacts.
  export --format mlflow --out DIR [--group G] [--kind K]
                             The runs in MLflow's file-store layout: mlflow ui --backend-store-uri DIR.`;

export async function runs(ctx: Ctx, argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parse(rest, {
    kind: { type: 'string' }, status: { type: 'string' }, group: { type: 'string' }, search: { type: 'string' }, limit: { type: 'string' },
    format: { type: 'string' }, out: { type: 'string' },
  }, { list: 0, export: 0, show: 1 }[sub ?? ''] ?? Infinity);
  const db = ctx.db({ readOnly: true });
  if (sub === 'list') {
    const list = listRuns(db, {
      kind: values.kind as string | undefined, status: values.status as RunStatus | undefined, group: values.group as string | undefined,
      search: values.search as string | undefined, limit: atLeastOne(intOpt(values.limit, 'limit', 50)!, 'limit'),
    });
    ctx.out(list, () => {
      // Kinds are open (any job may record runs), so an unknown one is no error; but an empty
      // list for a misspelt kind should say which kinds there are.
      if (!list.length && values.kind) {
        const kinds = [...new Set(listRuns(db, { limit: 1_000_000 }).map((r) => r.kind))].sort();
        if (!kinds.includes(values.kind as string)) return `No runs of kind "${values.kind}"; the kinds of runs here: ${kinds.join(', ') || 'none yet'}.`;
      }
      if (!list.length) {
        const filters = (['kind', 'status', 'group', 'search'] as const).filter((k) => values[k] !== undefined).map((k) => `${k} "${values[k]}"`);
        return filters.length ? `No runs with ${filters.join(', ')}.` : 'No runs yet: every import, extraction and training records one.';
      }
      return table([['id', 'kind', 'status', 'started', 'name'], ...list.map((r) => [r.id, r.kind, r.status, r.startedAt.slice(0, 19), r.name])]);
    });
    return;
  }
  if (sub === 'show') {
    const id = runIdArg(positionals[0]);
    if (id === undefined) throw new UsageError('runs show takes a run id');
    const run = getRun(db, id);
    const metrics = runMetrics(db, id);
    const artifacts = runArtifacts(db, id);
    ctx.out({ ...run, metrics, artifacts }, () =>
      [
        `run ${run.id} ${run.kind} "${run.name}" ${run.status}${run.error ? `: ${run.error}` : ''}`,
        `config: ${JSON.stringify(run.config)}`,
        `summary: ${JSON.stringify(run.summary)}`,
        ...Object.entries(metrics).map(([k, s]) => `${k}: ${s.length} points, last ${s.at(-1)?.value.toPrecision(4)}`),
        ...artifacts.map((a) => `artifact ${a.name} (${a.kind}, ${a.size} bytes, sha256 ${a.sha256.slice(0, 12)}…)`),
      ].join('\n'),
    );
    return;
  }
  if (sub === 'compare') {
    const ids = positionals.map((p) => runIdArg(p)!);
    if (ids.length < 2) throw new UsageError('runs compare takes two or more run ids');
    const c = compareRuns(db, ids);
    ctx.out(c, () => {
      const rows: (string | number)[][] = [['', ...ids.map(String)]];
      for (const k of c.differs) rows.push([k, ...c.runs.map((r) => (r.config[k] === undefined ? '—' : JSON.stringify(r.config[k])))]);
      const names = [...new Set(Object.values(c.metrics).flatMap((m) => Object.keys(m)))].sort();
      for (const n of names) rows.push([`${n} (last)`, ...ids.map((id) => c.metrics[id][n]?.at(-1)?.value.toPrecision(4) ?? '—')]);
      return table(rows);
    });
    return;
  }
  if (sub === 'tag' || sub === 'note') {
    const id = runIdArg(positionals[0]);
    if (id === undefined) throw new UsageError(`runs ${sub} takes a run id first\n${RUNS_HELP}`);
    const r = updateRun(db, id, sub === 'tag' ? { tags: positionals.slice(1) } : { note: positionals.slice(1).join(' ') || null });
    ctx.out(r, `run ${r.id}: tags ${r.tags.join(', ') || '(none)'}; note ${r.note ?? '(none)'}`);
    return;
  }
  if (sub === 'delete') {
    const ids = positionals.map((p) => runIdArg(p)!);
    if (!ids.length && !values.group) throw new UsageError(`runs delete takes run ids or --group G\n${RUNS_HELP}`);
    if (ids.length && values.group) throw new UsageError('runs delete takes run ids or --group G, not both: the one would hide the other');
    const chosen = ids.length ? ids : listRuns(db, { group: values.group as string, limit: 1_000_000 }).map((x) => x.id);
    if (!chosen.length) {
      const groups = [...new Set(listRuns(db, { limit: 1_000_000 }).map((x) => x.group).filter((g) => g))].slice(0, 8);
      throw new EmbaugError('E_NOT_FOUND', `There are no runs in group "${values.group}": nothing was deleted. Groups here: ${groups.join(', ') || 'none'}${groups.length === 8 ? ', …' : ''}.`);
    }
    const r = deleteRuns(db, chosen);
    ctx.out(r, `deleted ${r.deleted.length} runs (${r.deleted.join(', ')}) with their metrics and artifacts`);
    return;
  }
  if (sub === 'export') {
    if (values.format !== 'mlflow' || !values.out) throw new UsageError(`runs export needs --format mlflow and --out DIR\n${RUNS_HELP}`);
    const r = exportMlflow(db, { out: values.out as string, filter: { kind: values.kind as string | undefined, group: values.group as string | undefined, status: values.status as RunStatus | undefined } });
    ctx.out(r, () => `wrote ${r.runs} runs in ${r.experiments.length} experiments (${r.experiments.map((e) => `${e.id}: ${e.name}, ${e.runs} runs`).join('; ')}) to ${r.out}\nopen them with: mlflow ui --backend-store-uri ${r.out}`);
    return;
  }
  throw new UsageError(`unknown command "runs ${sub ?? ''}"\n${RUNS_HELP}`);
}

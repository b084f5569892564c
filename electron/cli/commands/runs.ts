import { compareRuns, getRun, listRuns, runArtifacts, runMetrics, type RunStatus } from '../../engine/runs/index.js';
import { UsageError, intOpt, parse } from '../args.js';
import { type Ctx, table } from '../context.js';

export const RUNS_HELP = `embaug runs <command>
  list [--kind K] [--status S] [--group G] [--search TEXT] [--limit N]
  show <id>                  Config, summary, metric series and artifacts of a run.
  compare <id> <id> ...      Configs that differ, and final metrics side by side.`;

export async function runs(ctx: Ctx, argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parse(rest, {
    kind: { type: 'string' }, status: { type: 'string' }, group: { type: 'string' }, search: { type: 'string' }, limit: { type: 'string' },
  });
  const db = ctx.db();
  if (sub === 'list') {
    const list = listRuns(db, {
      kind: values.kind as string | undefined, status: values.status as RunStatus | undefined, group: values.group as string | undefined,
      search: values.search as string | undefined, limit: intOpt(values.limit, 'limit', 50),
    });
    ctx.out(list, () =>
      table([['id', 'kind', 'status', 'started', 'name'], ...list.map((r) => [r.id, r.kind, r.status, r.startedAt.slice(0, 19), r.name])]),
    );
    return;
  }
  if (sub === 'show') {
    const id = intOpt(positionals[0], 'id');
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
    const ids = positionals.map((p) => intOpt(p, 'id')!);
    if (ids.length < 2) throw new UsageError('runs compare takes two or more run ids');
    const c = compareRuns(db, ids);
    ctx.out(c, () => {
      const rows: (string | number)[][] = [['', ...ids.map(String)]];
      for (const k of c.differs) rows.push([k, ...c.runs.map((r) => JSON.stringify(r.config[k]))]);
      const names = [...new Set(Object.values(c.metrics).flatMap((m) => Object.keys(m)))].sort();
      for (const n of names) rows.push([`${n} (last)`, ...ids.map((id) => c.metrics[id][n]?.at(-1)?.value.toPrecision(4) ?? '-')]);
      return table(rows);
    });
    return;
  }
  throw new UsageError(`unknown command "runs ${sub ?? ''}"\n${RUNS_HELP}`);
}

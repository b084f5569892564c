/**
 * Runs carried between databases as JSON lines: a cluster shard records its runs in a private
 * copy of the database and writes them out; `merge` loads them into the user's database.
 * Each run keeps an origin (the writer's id and the run's id there), so loading a file twice
 * adds nothing twice; ids that point at other runs (parent, the Ω a head used, the group name
 * built from the top run's id) are renumbered to the ids they get here.
 */
import { type Db, stmt } from '../db.js';
import { EmbaugError } from '../errors.js';
import { getRun, type RunRecord } from './store.js';

export interface RunDump extends Omit<RunRecord, 'id'> {
  origin: string;
  id: number;
  metrics: [string, number, number][];
  artifacts: { kind: string; name: string; sha256: string; meta: unknown; bytes: string }[];
}

/** The runs with ids above `afterId`, ids ascending (so parents come before their children). */
export function dumpRuns(db: Db, afterId: number, originPrefix: string): RunDump[] {
  const ids = db.prepare('SELECT id FROM runs WHERE id > ? ORDER BY id').pluck().all(afterId) as number[];
  return ids.map((id) => ({
    ...getRun(db, id),
    origin: `${originPrefix}/${id}`,
    metrics: db.prepare('SELECT name, step, value FROM metrics WHERE run_id = ? ORDER BY name, step').raw().all(id) as [string, number, number][],
    artifacts: (stmt(db, 'SELECT kind, name, sha256, meta, bytes FROM artifacts WHERE run_id = ? ORDER BY id').all(id) as { kind: string; name: string; sha256: string; meta: string; bytes: Buffer }[]).map(
      (a) => ({ kind: a.kind, name: a.name, sha256: a.sha256, meta: JSON.parse(a.meta), bytes: a.bytes.toString('base64') }),
    ),
  }));
}

/** Loads dumped runs in one transaction; returns the id each dumped id has here. */
export function loadRuns(db: Db, dumps: RunDump[], source: string): { ids: Map<number, number>; added: number; existing: number } {
  const ids = new Map<number, number>();
  let added = 0, existing = 0;
  const byOrigin = stmt(db, 'SELECT id FROM runs WHERE origin = ?').pluck();
  const renumber = (id: unknown) => (typeof id === 'number' ? ids.get(id) ?? id : id);
  db.transaction(() => {
    for (const d of dumps) {
      const have = byOrigin.get(d.origin) as number | undefined;
      if (have !== undefined) {
        ids.set(d.id, have);
        existing++;
        continue;
      }
      if (d.datasetId !== null) {
        const version = stmt(db, 'SELECT version FROM datasets WHERE id = ?').pluck().get(d.datasetId) as string | undefined;
        if (version === undefined || (d.datasetVersion && version !== d.datasetVersion))
          throw new EmbaugError('E_IMPORT', `${source}: run "${d.name}" used data set ${d.datasetId} at version ${String(d.datasetVersion).slice(0, 12)}…, which this database ${version === undefined ? 'does not have' : `holds at version ${version.slice(0, 12)}…`}: merge into the database the shards were started from.`);
      }
      const config = Array.isArray(d.config.omegaRuns) ? { ...d.config, omegaRuns: d.config.omegaRuns.map(renumber) } : d.config;
      const info = db
        .prepare(
          `INSERT INTO runs (kind, name, parent_id, group_name, backbone_sha, dataset_id, dataset_version, protocol, config, seed, status,
                             started_at, ended_at, host, summary, error, tags, note, origin)
           VALUES (?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          d.kind, d.name, d.parentId === null ? null : ids.get(d.parentId) ?? null, d.backboneSha, d.datasetId, d.datasetVersion, d.protocol,
          JSON.stringify(config), d.seed, d.status, d.startedAt, d.endedAt, JSON.stringify(d.host), d.summary ? JSON.stringify(d.summary) : null,
          d.error, JSON.stringify(d.tags), d.note, d.origin,
        );
      const id = Number(info.lastInsertRowid);
      ids.set(d.id, id);
      added++;
      // Group names are "<kind>-<id of the top run>": the top run has a new id here.
      const g = d.group && /^(.*)-(\d+)$/.exec(d.group);
      const group = g && ids.has(Number(g[2])) ? `${g[1]}-${ids.get(Number(g[2]))}` : d.group;
      stmt(db, 'UPDATE runs SET group_name = ? WHERE id = ?').run(group, id);
      const metric = stmt(db, 'INSERT INTO metrics (run_id, name, step, value) VALUES (?, ?, ?, ?)');
      for (const [name, step, value] of d.metrics) metric.run(id, name, step, value);
      const artifact = stmt(db, 'INSERT INTO artifacts (run_id, kind, name, sha256, bytes, meta) VALUES (?, ?, ?, ?, ?, ?)');
      for (const a of d.artifacts) artifact.run(id, a.kind, a.name, a.sha256, Buffer.from(a.bytes, 'base64'), JSON.stringify(a.meta));
    }
  })();
  return { ids, added, existing };
}

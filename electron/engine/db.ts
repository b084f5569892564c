/**
 * The single opener of the SQLite database: schema, migrations, pragmas, and the start-up
 * sweep that marks runs left "running" by a dead process as interrupted.
 */
import Database from 'better-sqlite3';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';

import { EmbaugError } from './errors.js';
import { makeDirs } from './paths.js';

export type Db = Database.Database;

// Each entry migrates from version i to i + 1; never edit a shipped one, append.
export const MIGRATIONS: string[] = [
  `
  CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY,
    format TEXT NOT NULL,          -- jpeg, png, webp, ..., or rgb (raw HWC uint8)
    bytes BLOB NOT NULL
  ) WITHOUT ROWID;

  CREATE TABLE datasets (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,            -- folder, wds, cifar10-bin, cifar100-bin
    source TEXT NOT NULL,
    classes TEXT NOT NULL,         -- JSON array of class names, index = label
    version TEXT NOT NULL,         -- hash of (image sha256, label, split) in order
    image_count INTEGER NOT NULL,
    import_report TEXT NOT NULL,   -- JSON: skipped files and notes
    created_at TEXT NOT NULL
  );

  CREATE TABLE images (
    dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    sha256 TEXT NOT NULL REFERENCES blobs(sha256),
    label INTEGER NOT NULL,
    split TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    source TEXT NOT NULL,          -- path, or shard:member, or file#record
    PRIMARY KEY (dataset_id, idx)
  ) WITHOUT ROWID;
  CREATE INDEX images_by_sha ON images(sha256);
  CREATE INDEX images_by_split ON images(dataset_id, split, label);

  CREATE TABLE backbones (
    sha256 TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    path TEXT NOT NULL,            -- the copy kept beside the database
    manifest TEXT NOT NULL,        -- JSON, validated
    dim INTEGER NOT NULL,
    added_at TEXT NOT NULL
  ) WITHOUT ROWID;

  CREATE TABLE embedding_sets (
    id INTEGER PRIMARY KEY,
    backbone_sha TEXT NOT NULL REFERENCES backbones(sha256),
    aug_key TEXT NOT NULL,
    preprocess_key TEXT NOT NULL,
    seed INTEGER NOT NULL,         -- 0 for deterministic augmentations
    dtype TEXT NOT NULL,           -- float32 or float16
    dim INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (backbone_sha, aug_key, preprocess_key, seed, dtype)
  );

  CREATE TABLE embeddings (
    set_id INTEGER NOT NULL REFERENCES embedding_sets(id) ON DELETE CASCADE,
    image_sha TEXT NOT NULL,
    vec BLOB NOT NULL,
    PRIMARY KEY (set_id, image_sha)
  ) WITHOUT ROWID;

  CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,            -- extract, omega, head, reproduce, import, export, ...
    name TEXT NOT NULL,
    parent_id INTEGER REFERENCES runs(id),
    group_name TEXT,
    backbone_sha TEXT,
    dataset_id INTEGER,
    dataset_version TEXT,
    protocol TEXT,
    config TEXT NOT NULL,          -- JSON
    seed INTEGER,
    status TEXT NOT NULL,          -- running, completed, failed, cancelled, interrupted
    started_at TEXT NOT NULL,
    ended_at TEXT,
    host TEXT NOT NULL,            -- JSON: hostname, cpu, threads, backend, pid
    summary TEXT,                  -- JSON
    error TEXT
  );
  CREATE INDEX runs_by_group ON runs(group_name);
  CREATE INDEX runs_by_parent ON runs(parent_id);

  CREATE TABLE metrics (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    step INTEGER NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (run_id, name, step)
  ) WITHOUT ROWID;

  CREATE TABLE artifacts (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,            -- weights, report, onnx, ...
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    bytes BLOB NOT NULL,
    meta TEXT NOT NULL,            -- JSON
    UNIQUE (run_id, name)
  );
  `,
  `
  ALTER TABLE images ADD COLUMN excluded INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE images ADD COLUMN tags TEXT NOT NULL DEFAULT '';
  ALTER TABLE images ADD COLUMN note TEXT NOT NULL DEFAULT '';

  -- Immutable snapshots of a data set's editable state; images holds the current one.
  CREATE TABLE dataset_versions (
    id INTEGER PRIMARY KEY,
    dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    hash TEXT NOT NULL,
    parent_hash TEXT,
    note TEXT NOT NULL,
    classes TEXT NOT NULL,
    state BLOB NOT NULL,           -- gzipped JSON: [label, split, excluded, tags, note] per idx
    image_count INTEGER NOT NULL,
    created_at TEXT NOT NULL
  );
  CREATE INDEX versions_by_dataset ON dataset_versions(dataset_id, hash);
  `,
  `
  -- An import writes its images in batches into a 'staging' data set that no reader sees,
  -- owned by its process ({hostname, pid}), and publishes it as 'ready' at the end.
  ALTER TABLE datasets ADD COLUMN state TEXT NOT NULL DEFAULT 'ready';
  ALTER TABLE datasets ADD COLUMN owner TEXT;
  `,
  `
  -- A user's tags (JSON array of strings) and note on a run.
  ALTER TABLE runs ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
  ALTER TABLE runs ADD COLUMN note TEXT;
  `,
  `
  -- Runs merged from elsewhere (a cluster shard's file) keep where they came from, so merging
  -- the same file twice adds nothing twice.
  ALTER TABLE runs ADD COLUMN origin TEXT;
  CREATE UNIQUE INDEX runs_by_origin ON runs(origin) WHERE origin IS NOT NULL;
  `,
  `
  -- A set names the backbone output it holds (the embedding, or the base model's logits), so
  -- that a base model's accuracy is measured once too. Sets keep their ids (the vectors point
  -- at them); a set made before is of its backbone's embedding output.
  CREATE TABLE embedding_sets_v6 (
    id INTEGER PRIMARY KEY,
    backbone_sha TEXT NOT NULL REFERENCES backbones(sha256),
    output TEXT NOT NULL,          -- the ONNX output: the manifest's embedding or logits
    aug_key TEXT NOT NULL,
    preprocess_key TEXT NOT NULL,
    seed INTEGER NOT NULL,         -- 0 for deterministic augmentations
    dtype TEXT NOT NULL,           -- float32 or float16
    dim INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (backbone_sha, output, aug_key, preprocess_key, seed, dtype)
  );
  INSERT INTO embedding_sets_v6 (id, backbone_sha, output, aug_key, preprocess_key, seed, dtype, dim, created_at)
    SELECT s.id, s.backbone_sha, coalesce(json_extract(b.manifest, '$.embedding.output'), 'embedding'), s.aug_key, s.preprocess_key, s.seed, s.dtype, s.dim, s.created_at
    FROM embedding_sets s LEFT JOIN backbones b ON b.sha256 = s.backbone_sha;
  DROP TABLE embedding_sets;
  ALTER TABLE embedding_sets_v6 RENAME TO embedding_sets;
  `,
];

export interface OpenOptions {
  readonly?: boolean;
}

/** Where the CLI keeps its database unless told otherwise: --db, then EMBAUG_DB. */
export function defaultDbPath(cwd = process.cwd()): string {
  return resolve(process.env.EMBAUG_DB ?? join(cwd, 'experiments.db'));
}

/** Folder beside the database for files it references (backbone copies, exports). */
export function dataDir(db: Db): string {
  return db.name === ':memory:' ? join(process.cwd(), '.embaug-memory') : `${db.name}.files`;
}

export function openDb(path: string, opts: OpenOptions = {}): Db {
  if (path !== ':memory:') makeDirs(dirname(resolve(path)));
  let db: Db;
  try {
    db = new Database(path, { readonly: opts.readonly ?? false, timeout: 10000 });
  } catch (err) {
    throw new EmbaugError('E_DB', `Cannot open the database ${path}: ${(err as Error).message}`);
  }
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  // Image bytes and embeddings are read in bulk: memory-map the file and keep a larger cache
  // than SQLite's 2 MB default, so reads do not go through a syscall per page.
  db.pragma('mmap_size = 1073741824');
  db.pragma('cache_size = -65536');
  if (!opts.readonly) {
    migrate(db);
    markInterrupted(db);
    sweepStaging(db);
  }
  return db;
}

function migrate(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length)
    throw new EmbaugError(
      'E_DB',
      `The database ${db.name} has schema version ${current}, newer than this embaug knows (${MIGRATIONS.length}): ` +
        'update embaug, or use another database with --db.',
    );
  if (current === MIGRATIONS.length) return;
  // A migration may rebuild a table others point at (SQLite cannot change a constraint in
  // place), and dropping the old one with foreign keys on would delete what points at it. So
  // they are off while migrating, as SQLite's procedure says, and checked before each commit
  // (against what was broken before, which is not the migration's doing).
  db.pragma('foreign_keys = OFF');
  const violations = () => db.pragma('foreign_key_check') as { table: string; parent: string }[];
  const before = violations().length;
  try {
    for (let v = current; v < MIGRATIONS.length; v++) {
      db.transaction(() => {
        db.exec(MIGRATIONS[v]);
        const broken = violations();
        if (broken.length > before) throw new EmbaugError('E_DB', `Migrating ${db.name} to schema version ${v + 1} would leave ${broken.length} rows of ${broken[0].table} pointing at missing ${broken[0].parent} rows, so it was not applied. Keep using the earlier embaug with this database, and report this.`);
        db.pragma(`user_version = ${v + 1}`);
      })();
    }
  } finally {
    db.pragma('foreign_keys = ON');
  }
}

/** Whether the process that wrote a `{hostname, pid}` owner (JSON) is gone: on this host only. */
function ownerGone(owner: string | null, me = hostname()): boolean {
  const h = JSON.parse(owner ?? '{}') as { hostname?: string; pid?: number; thread?: number };
  return h.hostname === me && typeof h.pid === 'number' && h.pid !== process.pid && !alive(h.pid);
}

/** Removes the staging rows of imports whose process died, and the image bytes only they held. */
export function sweepStaging(db: Db): number {
  const stale = (db.prepare(`SELECT id, owner FROM datasets WHERE state = 'staging'`).all() as { id: number; owner: string | null }[]).filter((r) =>
    ownerGone(r.owner),
  );
  for (const r of stale)
    db.transaction(() => {
      db.prepare('DELETE FROM images WHERE dataset_id = ?').run(r.id);
      db.prepare('DELETE FROM datasets WHERE id = ?').run(r.id);
    })();
  if (stale.length) db.prepare('DELETE FROM blobs WHERE NOT EXISTS (SELECT 1 FROM images i WHERE i.sha256 = blobs.sha256)').run();
  return stale.length;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A run is "running" only while its process lives; one whose process on this host is gone
 * crashed or was killed, and is marked interrupted here, at the next open.
 */
export function markInterrupted(db: Db): number {
  const rows = db.prepare(`SELECT id, host FROM runs WHERE status = 'running'`).all() as { id: number; host: string }[];
  const stale = rows.filter((r) => ownerGone(r.host));
  const mark = db.prepare(
    `UPDATE runs SET status = 'interrupted', ended_at = ?, error = 'the process running it stopped before it finished' WHERE id = ?`,
  );
  db.transaction(() => stale.forEach((r) => mark.run(new Date().toISOString(), r.id)))();
  return stale.length;
}

const prepared = new WeakMap<Db, Map<string, Database.Statement>>();

/**
 * A statement prepared once per connection and reused, as better-sqlite3 intends: the stores
 * call this with fixed SQL. Statements whose mode a caller changes (pluck, raw) are prepared
 * where they are used instead, since a cached one is shared.
 */
export function stmt(db: Db, sql: string): Database.Statement {
  let cache = prepared.get(db);
  if (!cache) prepared.set(db, (cache = new Map()));
  let s = cache.get(sql);
  if (!s) cache.set(sql, (s = db.prepare(sql)));
  return s;
}

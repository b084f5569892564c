/** What every command gets: the database (opened on first use), output mode, cancellation. */
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';

import { type Db, defaultDbPath, openDb } from '../engine/db.js';
import { EmbaugError } from '../engine/errors.js';
import { setThreads } from '../engine/native/index.js';
import type { OnProgress } from '../engine/jobs/index.js';
import { UsageError, intOpt } from './args.js';
import { progressPrinter } from './progress.js';

export interface Ctx {
  /**
   * The database, opened on first use; `readOnly` commands (lists, stats) refuse a path with
   * no database instead of creating an empty one there.
   */
  db(opts?: { readOnly?: boolean }): Db;
  /**
   * The database opened read-only, with no migration or clean-up: what a cluster task uses,
   * so many tasks can read one file on shared storage and none writes it.
   */
  readDb(): Db;
  dbPath: string;
  json: boolean;
  threads: number;
  signal: AbortSignal;
  progress: OnProgress;
  /** A log line on stderr, above any progress bar. */
  log: (line: string) => void;
  /** Prints an object as JSON with --json, else the text. */
  out(value: unknown, text: string | (() => string)): void;
}

export function makeCtx(values: Record<string, unknown>, signal: AbortSignal): Ctx {
  const dbPath = (values.db as string | undefined) ?? defaultDbPath();
  const threads = intOpt(values.threads, 'threads', cpus().length)!;
  if (threads < 1) throw new UsageError(`--threads is the number of cores to use, at least 1 (this machine has ${cpus().length}); got ${threads}`);
  let db: Db | undefined;
  const printer = progressPrinter((values.quiet as boolean) || false);
  const refuseMissing = () => {
    if (dbPath !== ':memory:' && !existsSync(dbPath))
      throw new EmbaugError('E_NOT_FOUND', `There is no database at ${dbPath}: nothing has been recorded there yet. Pass --db with the path of yours (or set EMBAUG_DB), or start one with \`embaug data get cifar10\` or \`embaug reproduce\`.`);
  };
  return {
    dbPath,
    json: values.json as boolean,
    threads,
    signal,
    progress: printer.progress,
    log: printer.log,
    readDb: () => {
      refuseMissing();
      db ??= openDb(dbPath, { readonly: true });
      setThreads(threads);
      return db;
    },
    db: (opts) => {
      if (!db && opts?.readOnly) refuseMissing();
      if (!db) {
        db = openDb(dbPath);
        setThreads(threads);
      }
      return db;
    },
    out(value, text) {
      process.stdout.write(values.json ? `${JSON.stringify(value, null, 2)}\n` : `${typeof text === 'function' ? text() : text}\n`);
    },
  };
}

export function table(rows: (string | number)[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c]).length)));
  return rows.map((r) => r.map((x, c) => String(x).padEnd(widths[c])).join('  ').trimEnd()).join('\n');
}

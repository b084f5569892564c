/** Importing a data set from any of the source layouts: read, then write all or nothing. */
import type { Db } from '../db.js';
import { type SplitRule, readCifarBinary, readFolder, readWds } from './sources.js';
import { type DatasetInfo, type ImportOptions, writeDataset } from './store.js';

export const IMPORT_KINDS = ['folder', 'wds', 'cifar'] as const;
export type ImportKind = (typeof IMPORT_KINDS)[number];

export interface ImportRequest extends ImportOptions {
  kind: ImportKind;
  path: string;
  splitRule?: SplitRule;
}

/** Imports a data set from a folder, WebDataset shards or CIFAR binary files; all or nothing. */
export async function importDataset(db: Db, req: ImportRequest): Promise<DatasetInfo> {
  const src =
    req.kind === 'folder' ? readFolder(req.path, req.splitRule) : req.kind === 'wds' ? await readWds(req.path) : readCifarBinary(req.path);
  return writeDataset(db, src, req);
}

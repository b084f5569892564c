export * from './store.js';
export { decodeToSize, sniff } from './formats.js';
export type { SplitRule } from './sources.js';
export { ARCHIVES, download, getCifar, type Archive } from './download.js';
export { exportDataset } from './exporter.js';
export * from './versions.js';

export { datasetVersion } from './snapshot.js';
export * from './import.js';
export { listFolder, previewFolder, type FolderListing, type FolderPreview } from './browse.js';

/**
 * The layers of STYLE.md, as import rules (`npm run lint:deps`, part of `npm test`): the engine
 * never imports Electron or a front end; IPC and jobs sit between the engine and the shells;
 * the renderer takes only types from electron/; and no module imports itself through a cycle.
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    { name: 'no-cycles', severity: 'error', comment: 'An import cycle: move the shared part into a module both can import.', from: {}, to: { circular: true } },
    {
      name: 'engine-is-headless', severity: 'error', comment: 'The engine imports no front end and no Electron: the CLI, web mode and the app all use it.',
      from: { path: '^electron/engine/' }, to: { path: ['^electron/(ipc|jobs|cli|web|main|preload)/', '^renderer/', '^node_modules/electron/'] },
    },
    {
      name: 'ipc-and-jobs-below-the-shells', severity: 'error', comment: 'IPC and jobs serve the shells; they do not import them.',
      from: { path: '^electron/(ipc|jobs)/' }, to: { path: ['^electron/(cli|web|main|preload)/', '^renderer/'] },
    },
    {
      name: 'shells-apart', severity: 'error', comment: 'The CLI, web mode and the desktop shell do not import each other.',
      from: { path: '^electron/(cli|web|main|preload)/' }, to: { path: ['^renderer/'] },
    },
    { name: 'cli-not-web-or-main', severity: 'error', from: { path: '^electron/cli/' }, to: { path: '^electron/(web|main|preload)/' } },
    { name: 'web-not-cli-or-main', severity: 'error', from: { path: '^electron/web/' }, to: { path: '^electron/(cli|main|preload)/' } },
    { name: 'main-not-cli-or-web', severity: 'error', from: { path: '^electron/(main|preload)/' }, to: { path: '^electron/(cli|web)/' } },
    {
      name: 'renderer-takes-only-types', severity: 'error', comment: 'The renderer runs in a page: it may take types from electron/, never code.',
      from: { path: '^renderer/' }, to: { path: '^electron/', dependencyTypesNot: ['type-only'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.cts', '.js', '.mjs', '.svelte', '.json'] },
  },
};

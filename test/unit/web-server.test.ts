/**
 * The web server against malformed and hostile requests, over plain HTTP (no browser): each
 * is answered, none stops the server or the jobs it runs, and nothing is written anywhere.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { openDb, type Db } from '../../electron/engine/db.js';
import { JobRunner } from '../../electron/jobs/runner.js';
import { startWebServer } from '../../electron/web/server.js';
import { rng, tempDir } from '../helpers/shared.js';

interface Reply {
  status: number;
  body: string;
}

/** A raw request: the path goes on the wire exactly as given (no URL normalisation). */
function raw(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string | Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers: { host: `127.0.0.1:${port}`, ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`no answer to ${method} ${path}`)));
    if (body !== undefined) req.write(body);
    req.end();
  });
}

describe('web server: malformed requests', () => {
  const tmp = tempDir();
  let db: Db, jobs: JobRunner, web: Awaited<ReturnType<typeof startWebServer>>;
  const staticDir = join(tmp.dir, 'static');
  const listing = () => JSON.stringify([readdirSync(tmp.dir).sort(), readdirSync(staticDir).sort()]);
  let before0: string;
  before(async () => {
    mkdirSync(staticDir);
    writeFileSync(join(staticDir, 'index.html'), '<!doctype html><title>embaug</title>');
    writeFileSync(join(staticDir, 'app.js'), 'console.log(1)');
    const dbPath = join(tmp.dir, 'web.db');
    db = openDb(dbPath);
    jobs = new JobRunner({ db, dbPath, threads: 1, settings: { modelsDir: tmp.dir, dataDir: tmp.dir, outDir: join(tmp.dir, 'reports') } });
    web = await startWebServer({ db, dbPath, jobs, staticDir, version: 'test', token: 'secret-token' });
    before0 = listing();
  });
  after(async () => {
    await jobs.close();
    await web.close();
    db.close();
    tmp.cleanup();
  });
  const api = (body: string, token = 'secret-token') => raw(web.port, 'POST', '/api/call', { 'x-embaug-token': token, 'content-type': 'application/json' }, body);
  const alive = async () => {
    const r = await api(JSON.stringify({ channel: 'system:info' }));
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).ok, true);
  };

  it('bad percent-escapes and unparsable targets in the path are a 400, and the server goes on', async () => {
    for (const p of ['/%', '/%E0%A4%A', '/%ZZ', '/a%', '/%C0%AF', '/..%2F..%2Fetc%2Fpasswd', '/%00', '/\\', '//']) {
      const r = await raw(web.port, 'GET', p);
      assert.ok([400, 403, 200].includes(r.status), `${p}: ${r.status}`);
      if (p === '/%' || p === '/%E0%A4%A' || p === '/%00' || p === '/\\' || p === '//') assert.equal(r.status, 400, p);
      assert.ok(!r.body.includes('root:'), p);
      await alive();
    }
  });

  it('request bodies must be JSON objects: null, arrays and strings get a 400', async () => {
    for (const b of ['null', '[]', '"x"', '1', 'true', '{"channel":null}', '{"channel":"system:info","payload":null}']) {
      const r = await api(b);
      if (['null', '[]', '"x"', '1', 'true'].includes(b)) {
        assert.equal(r.status, 400, b);
        assert.match(JSON.parse(r.body).error.message, /JSON object/);
      } else assert.equal(r.status, 200, b);
      await alive();
    }
  });

  it('edits are validated before they reach the engine', async () => {
    for (const edits of [[{ op: 'nope' }], [{ op: 'relabel', images: [0] }], [{ op: 'renameClass', label: -1, name: 'x' }], [{ op: 'exclude', images: { split: 'train', evil: 1 } }]]) {
      const r = JSON.parse((await api(JSON.stringify({ channel: 'datasets:edit', payload: { id: 1, edits } }))).body);
      assert.equal(r.ok, false);
      assert.equal(r.error.code, 'E_ARG', JSON.stringify(edits));
      assert.match(r.error.message, /^datasets:edit: edits\.0/);
    }
  });

  it('a reproduction with a base model there is none of is refused before it starts', async () => {
    const start = (bases: unknown) => api(JSON.stringify({ channel: 'jobs:start', payload: { kind: 'reproduce', args: { epochs: 1, seeds: 1, bases } } }));
    for (const bases of [['vflip'], [], 'none']) {
      const r = JSON.parse((await start(bases)).body);
      assert.equal(r.ok, false, JSON.stringify(bases));
      assert.equal(r.error.code, 'E_ARG');
      assert.match(r.error.message, /^jobs:start: args\.bases/);
    }
    assert.equal(jobs.list().length, 0);
  });

  it('an augmentation listed twice is refused before the job starts (it would be extracted twice, and weigh double in a head)', async () => {
    const r = JSON.parse((await api(JSON.stringify({ channel: 'jobs:start', payload: { kind: 'extract', args: { dataset: 1, backbone: 'tiny', augs: ['hflip', 'hflip:p=1'] } } }))).body);
    // Refused jobs are listed as failed, with the reason, and nothing ran.
    assert.deepEqual([r.ok, r.value.status, r.value.error], [true, 'failed', { code: 'E_ARG', message: 'augmentations gives hflip twice: give each once' }]);
  });

  it('static files need no token (they hold no data), every API call does', async () => {
    const page = await raw(web.port, 'GET', '/');
    assert.equal(page.status, 200);
    assert.match(page.body, /<title>embaug/);
    assert.equal((await raw(web.port, 'GET', '/app.js')).status, 200);
    assert.equal((await api(JSON.stringify({ channel: 'datasets:list' }), '')).status, 401);
    assert.equal((await api(JSON.stringify({ channel: 'datasets:list' }), 'secret-tokeX')).status, 401);
    assert.equal((await raw(web.port, 'GET', '/api/events')).status, 401);
  });

  it('survives a few hundred random and mutated requests, writes nothing, keeps the database whole', async () => {
    const r = rng(7);
    const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)];
    const junk = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(r() * 256)));
    const channels = ['system:info', 'datasets:list', 'datasets:images', 'datasets:edit', 'runs:get', 'jobs:start', 'jobs:cancel', 'nope', '', '__proto__', 'constructor'];
    const values = [null, true, -1, 0, 1e308, -1e308, 2 ** 53, 'x', '', '../../etc', '%', [], {}, { id: 1 }, { id: -5 }, { id: 'a' }, { __proto__: { x: 1 } }, { runId: 1, outDir: '/proc/1' }, { kind: 'export', args: { runId: 1, outDir: '/proc/embaug-x/y' } }, { kind: 'import', args: { kind: 'folder', path: '/nonexistent', name: 'x' } }];
    let answered = 0;
    for (let i = 0; i < 300; i++) {
      const kind = i % 5;
      let res: Reply;
      if (kind === 0) {
        const path = `/${Array.from({ length: 1 + Math.floor(r() * 6) }, () => pick(['%', '%2', '%E0%A4%A', '..', '%2e%2e', 'api', 'call', 'index.html', '%00', '\\', encodeURIComponent(String.fromCharCode(1 + Math.floor(r() * 0xd7fe)))])).join('/')}`;
        res = await raw(web.port, pick(['GET', 'POST', 'PUT', 'DELETE']), path);
      } else if (kind === 1) res = await api(junk(Math.floor(r() * 64)).toString('latin1'));
      else if (kind === 2) res = await api(JSON.stringify({ channel: pick(channels), payload: pick(values) }));
      else if (kind === 3) res = await api(JSON.stringify({ channel: pick(channels), payload: { id: pick(values), ids: [pick(values)], limit: pick(values), offset: pick(values), edits: pick(values) } }));
      else res = await raw(web.port, 'GET', `/api/events?token=${pick(['', 'x', '%', 'secret-token%00'])}`);
      assert.ok(res.status >= 200 && res.status < 600);
      if (res.status < 500) answered++;
      if (i % 25 === 0) await alive();
    }
    await alive();
    assert.equal(answered, 300, `${answered} of 300 answered below 500`);
    // Jobs started by the fuzz (imports of paths that do not exist) fail as jobs.
    for (const j of jobs.list()) assert.notEqual((await jobs.wait(j.id)).status, 'running');
    assert.equal(listing(), before0);
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
    assert.equal((db.prepare('SELECT count(*) AS n FROM datasets').get() as { n: number }).n, 0);
  });
});

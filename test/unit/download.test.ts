import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';

import { getCifar, listDatasets } from '../../electron/engine/datasets/index.js';
import { openDb } from '../../electron/engine/db.js';
import { EmbaugError } from '../../electron/engine/errors.js';
import { samples, writeCifar10Bin } from '../helpers/fixtures.js';
import { tempDir } from '../helpers/shared.js';

async function tarGz(dir: string, prefix: string): Promise<Buffer> {
  const p = pack();
  for (const f of readdirSync(dir).sort()) p.entry({ name: `${prefix}/${f}` }, readFileSync(join(dir, f)));
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  return gzipSync(Buffer.concat(chunks));
}

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

describe('embaug data get (against a local HTTP server)', () => {
  const tmp = tempDir();
  let archive: Buffer;
  let server: Server;
  let base = '';
  const requests: { path: string; range?: string }[] = [];
  let flakyServed = false;

  before(async () => {
    const bin = join(tmp.dir, 'src', 'cifar-10-batches-bin');
    mkdirSync(bin, { recursive: true });
    await writeCifar10Bin(bin, await samples('train-000000.tar', 50), await samples('test-000000.tar', 20));
    archive = await tarGz(bin, 'cifar-10-batches-bin');
    const corrupt = Buffer.from(archive);
    corrupt[corrupt.length >> 1] ^= 0xff;
    server = createServer((req, res) => {
      const path = req.url ?? '';
      requests.push({ path, range: req.headers.range });
      const body = path.startsWith('/corrupt') ? corrupt : path.startsWith('/notgz') ? Buffer.from('x'.repeat(5000)) : archive;
      const m = /bytes=(\d+)-/.exec(req.headers.range ?? '');
      const start = m ? Number(m[1]) : 0;
      if (path.startsWith('/flaky') && !flakyServed) {
        // First transfer: announce the whole file, send half, then cut the connection.
        flakyServed = true;
        res.writeHead(200, { 'Content-Length': body.length });
        // The cut comes a moment after the bytes, so the client has read them (a reset right
        // behind them may discard what is still buffered on the way).
        res.write(body.subarray(0, body.length >> 1), () => setTimeout(() => res.destroy(), 200));
        return;
      }
      res.writeHead(start ? 206 : 200, { 'Content-Length': body.length - start, ...(start ? { 'Content-Range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}) });
      res.end(body.subarray(start));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(() => {
    server.close();
    tmp.cleanup();
  });

  it('downloads, verifies the checksum, unpacks and imports', async () => {
    const db = openDb(':memory:');
    const cache = join(tmp.dir, 'cache1');
    const ds = await getCifar(db, 'cifar10', { cache, archive: { url: `${base}/good/cifar-10-binary.tar.gz`, md5: md5(archive), dir: 'cifar-10-batches-bin' } });
    assert.equal(ds.imageCount, 70);
    assert.deepEqual(ds.report.perSplit, { train: 50, test: 20 });
    assert.equal(ds.kind, 'cifar10-bin');
    assert.ok(existsSync(join(cache, 'data', 'cifar-10-batches-bin', 'test_batch.bin')));
    assert.ok(existsSync(join(cache, 'downloads', 'cifar-10-binary.tar.gz')));
    // A second call finds the data set and downloads nothing.
    const before = requests.length;
    assert.equal((await getCifar(db, 'cifar10', { cache })).id, ds.id);
    assert.equal(requests.length, before);
    db.close();
  });

  it('resumes an interrupted transfer with a Range request', async () => {
    const db = openDb(':memory:');
    const cache = join(tmp.dir, 'cache2');
    const a = { url: `${base}/flaky/cifar-10-binary.tar.gz`, md5: md5(archive), dir: 'cifar-10-batches-bin' };
    await assert.rejects(getCifar(db, 'cifar10', { cache, archive: a }), (e: unknown) => e instanceof EmbaugError && e.code === 'E_DOWNLOAD' && /run the command again to resume/.test(e.message));
    const part = join(cache, 'downloads', 'cifar-10-binary.tar.gz.part');
    assert.ok(existsSync(part) && statSync(part).size > 0, 'the interrupted transfer kept what it received');
    assert.equal(listDatasets(db).length, 0);
    const ds = await getCifar(db, 'cifar10', { cache, archive: a });
    assert.equal(ds.imageCount, 70);
    const last = requests.filter((r) => r.path.startsWith('/flaky')).at(-1)!;
    assert.match(last.range ?? '', /^bytes=\d+-$/);
    assert.ok(Number(/\d+/.exec(last.range!)![0]) > 0);
    db.close();
  });

  it('refuses a corrupt archive by its checksum, removes it, and imports nothing', async () => {
    const db = openDb(':memory:');
    const cache = join(tmp.dir, 'cache3');
    await assert.rejects(
      getCifar(db, 'cifar10', { cache, archive: { url: `${base}/corrupt/cifar-10-binary.tar.gz`, md5: md5(archive), dir: 'cifar-10-batches-bin' } }),
      (e: unknown) => e instanceof EmbaugError && e.code === 'E_CHECKSUM' && /published checksum/.test(e.message),
    );
    assert.ok(!existsSync(join(cache, 'downloads', 'cifar-10-binary.tar.gz')));
    assert.ok(!existsSync(join(cache, 'data', 'cifar-10-batches-bin')));
    assert.equal(listDatasets(db).length, 0);
    db.close();
  });

  it('refuses a file that passes its checksum but is no archive, leaving nothing unpacked', async () => {
    const db = openDb(':memory:');
    const cache = join(tmp.dir, 'cache4');
    const junk = Buffer.from('x'.repeat(5000));
    await assert.rejects(getCifar(db, 'cifar10', { cache, archive: { url: `${base}/notgz/cifar-10-binary.tar.gz`, md5: md5(junk), dir: 'cifar-10-batches-bin' } }), /not a readable \.tar\.gz/);
    assert.deepEqual(readdirSync(join(cache, 'data')), []);
    assert.equal(listDatasets(db).length, 0);
    db.close();
  });
});

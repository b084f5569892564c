/**
 * Local web mode: the same renderer and the same API over HTTP on 127.0.0.1 only, protected
 * by a random token; job events stream as server-sent events.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';

import type { Db } from '../engine/db.js';
import { createHandler } from '../ipc/handlers.js';
import type { JobEvent } from '../ipc/contract.js';
import type { JobRunner } from '../jobs/runner.js';

export interface WebOptions {
  db: Db;
  dbPath: string;
  jobs: JobRunner;
  staticDir: string;
  port?: number;
  token?: string;
  version: string;
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon', '.json': 'application/json',
};

// The page may load only its own scripts; images may be data: URLs (thumbnails).
export const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

export async function startWebServer(o: WebOptions): Promise<{ url: string; token: string; port: number; close: () => Promise<void> }> {
  const token = o.token ?? randomBytes(24).toString('base64url');
  const handle = createHandler({ db: o.db, dbPath: o.dbPath, jobs: o.jobs, mode: 'web', version: o.version });
  const clients = new Set<ServerResponse>();
  const off = o.jobs.onEvent((e: JobEvent) => {
    const data = `data: ${JSON.stringify(e)}\n\n`;
    for (const c of clients) c.write(data);
  });
  let port = 0;
  const tokenOk = (t: string | null | undefined) => {
    if (!t) return false;
    const a = Buffer.from(t), b = Buffer.from(token);
    return a.length === b.length && timingSafeEqual(a, b);
  };
  const send = (res: ServerResponse, status: number, body: string | Buffer, type = 'application/json') => {
    res.writeHead(status, { 'Content-Type': type, 'Content-Security-Policy': CSP, 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer', 'Cache-Control': 'no-store' });
    res.end(body);
  };
  const route = async (req: IncomingMessage, res: ServerResponse) => {
    // A target such as "/\\" reads as a scheme-relative URL with no host: the client's mistake, a 400.
    let url: URL;
    try {
      url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
    } catch {
      return send(res, 400, '{"error":"malformed request target"}');
    }
    // Only this origin, reached by its own host name: a page elsewhere (or DNS rebinding) is refused.
    const host = req.headers.host ?? '';
    if (host !== `127.0.0.1:${port}` && host !== `localhost:${port}`) return send(res, 421, '{"error":"wrong host"}');
    const origin = req.headers.origin;
    if (origin && origin !== `http://127.0.0.1:${port}` && origin !== `http://localhost:${port}`) return send(res, 403, '{"error":"cross-origin request refused"}');
    if (url.pathname === '/api/call' && req.method === 'POST') {
      if (!tokenOk(req.headers['x-embaug-token'] as string | undefined)) return send(res, 401, '{"ok":false,"error":{"code":"E_TOKEN","message":"missing or wrong token: open the URL printed by npm run web"}}');
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const c of req) {
        size += (c as Buffer).length;
        if (size > 8 << 20) return send(res, 413, '{"ok":false,"error":{"code":"E_ARG","message":"request too large"}}');
        chunks.push(c as Buffer);
      }
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return send(res, 400, '{"ok":false,"error":{"code":"E_ARG","message":"the body is not JSON"}}');
      }
      if (typeof body !== 'object' || body === null || Array.isArray(body))
        return send(res, 400, '{"ok":false,"error":{"code":"E_ARG","message":"the body must be a JSON object {channel, payload}"}}');
      const { channel, payload } = body as { channel?: unknown; payload?: unknown };
      return send(res, 200, JSON.stringify(await handle(channel, payload)));
    }
    if (url.pathname === '/api/events' && req.method === 'GET') {
      if (!tokenOk(url.searchParams.get('token'))) return send(res, 401, '{"error":"missing or wrong token"}');
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', Connection: 'keep-alive' });
      res.write(': connected\n\n');
      clients.add(res);
      req.on('close', () => clients.delete(res));
      return;
    }
    if (req.method !== 'GET') return send(res, 405, '{"error":"method not allowed"}');
    // The built renderer's static files are served without the token, deliberately: they are
    // the same public files that ship with the app, hold no data, and the page can do nothing
    // without the token, which only the printed URL carries. Every /api/ request needs it.
    // No path may leave staticDir.
    let path: string;
    try {
      path = decodeURIComponent(url.pathname);
    } catch {
      return send(res, 400, '{"error":"malformed percent-escape in the path"}');
    }
    if (path.includes('\0')) return send(res, 400, '{"error":"NUL in the path"}');
    const rel = normalize(path).replace(/^([/\\])+/, '');
    const file = join(o.staticDir, rel === '' ? 'index.html' : rel);
    if (!file.startsWith(o.staticDir + sep) && file !== o.staticDir) return send(res, 403, '{"error":"forbidden"}');
    const target = existsSync(file) && statSync(file).isFile() ? file : join(o.staticDir, 'index.html');
    if (!existsSync(target)) return send(res, 500, 'The renderer is not built: run `npm run build:renderer`.', 'text/plain');
    send(res, 200, readFileSync(target), MIME[extname(target)] ?? 'application/octet-stream');
  };
  // Every request goes through one catch: a bad request is answered, never the end of the
  // server (and of the jobs it runs).
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    route(req, res).catch((err: unknown) => {
      console.error(`web: ${req.method} ${String(req.url).slice(0, 200)} failed: ${err instanceof Error ? err.stack : String(err)}`);
      if (!res.headersSent) send(res, 500, '{"ok":false,"error":{"code":"E_INTERNAL","message":"the server could not answer this request"}}');
      else res.destroy();
    });
  });
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(o.port ?? 0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/?token=${token}`,
    token,
    port,
    close: () =>
      new Promise((resolve) => {
        off();
        for (const c of clients) c.end();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

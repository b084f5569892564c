/**
 * The typed client of the engine: Electron's preload bridge when present, else the local web
 * server (token from the URL, kept for the tab's session).
 */
import type { Api, Channel, EmbaugBridge, JobEvent, Result } from '../../../electron/ipc/contract.js';

declare global {
  interface Window {
    embaug?: EmbaugBridge;
  }
}

function webBridge(): EmbaugBridge {
  const fromUrl = new URLSearchParams(location.search).get('token');
  if (fromUrl) {
    sessionStorage.setItem('embaug-token', fromUrl);
    history.replaceState(null, '', location.pathname + location.hash);
  }
  const token = sessionStorage.getItem('embaug-token') ?? '';
  return {
    async call(channel, req) {
      try {
        const r = await fetch('api/call', { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Embaug-Token': token }, body: JSON.stringify({ channel, payload: req ?? null }) });
        return (await r.json()) as Result<never>;
      } catch (err) {
        return { ok: false, error: { code: 'E_CONNECTION', message: `the workbench server did not answer: ${(err as Error).message}` } };
      }
    },
    onJobEvent(listener) {
      const es = new EventSource(`api/events?token=${encodeURIComponent(token)}`);
      es.onmessage = (m) => listener(JSON.parse(m.data) as JobEvent);
      return () => es.close();
    },
  };
}

export const bridge: EmbaugBridge = window.embaug ?? webBridge();

export class ApiError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

/** Calls a channel and returns its value, or throws ApiError with the engine's message. */
export async function call<C extends Channel>(channel: C, req: Api[C]['req']): Promise<Api[C]['res']> {
  const r = await bridge.call(channel, req);
  if (!r.ok) throw new ApiError(r.error.code, r.error.message);
  return r.value;
}

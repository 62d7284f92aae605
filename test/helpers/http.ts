// A local HTTP server for download tests (127.0.0.1, a free port), and a URL where nothing listens.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface LocalServer {
  /** http://127.0.0.1:PORT */
  base: string;
  close(): Promise<void>;
}

export async function serve(handler: http.RequestListener): Promise<LocalServer> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/** A base URL on a port that was free a moment ago: connecting is refused, as offline. */
export async function refusedBase(): Promise<string> {
  const s = await serve(() => {});
  await s.close();
  return s.base;
}

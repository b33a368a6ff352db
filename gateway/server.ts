// The gateway's HTTP server on uWebSockets.js. At this stage it answers the operational routes
// (/health, /ready, /metrics); the availability and reservation API is added on top of it.

import { App, us_listen_socket_close, us_socket_local_port, type HttpResponse, type us_listen_socket, type us_socket } from 'uWebSockets.js';
import { Registry, collectDefaultMetrics } from 'prom-client';

export interface GatewayOptions {
  host: string;
  port: number;
  /** Reports whether the backends the gateway depends on answer; /ready returns 503 otherwise. */
  ready?: () => Promise<boolean>;
  registry?: Registry;
}

export interface RunningGateway {
  port: number;
  close(): void;
}

function send(res: HttpResponse, status: string, contentType: string, body: string): void {
  res.cork(() => {
    res.writeStatus(status).writeHeader('content-type', contentType).end(body);
  });
}

export async function startGateway(options: GatewayOptions): Promise<RunningGateway> {
  const registry = options.registry ?? new Registry();
  if (!options.registry) collectDefaultMetrics({ register: registry });
  const app = App();

  app.get('/health', (res) => {
    send(res, '200 OK', 'application/json', '{"status":"ok"}');
  });

  app.get('/ready', (res) => {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    void (options.ready ?? (async () => true))()
      .catch(() => false)
      .then((ok) => {
        if (aborted) return;
        send(res, ok ? '200 OK' : '503 Service Unavailable', 'application/json', JSON.stringify({ status: ok ? 'ready' : 'not ready' }));
      });
  });

  app.get('/metrics', (res) => {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    void registry.metrics().then((text) => {
      if (!aborted) send(res, '200 OK', registry.contentType, text);
    });
  });

  app.any('/*', (res, req) => {
    const detail = `no route for ${req.getMethod().toUpperCase()} ${req.getUrl()}`;
    send(res, '404 Not Found', 'application/problem+json', JSON.stringify({ type: 'about:blank', title: 'Not Found', status: 404, detail }));
  });

  const socket = await new Promise<us_listen_socket>((resolve, reject) => {
    app.listen(options.host, options.port, (listenSocket) => {
      if (listenSocket) resolve(listenSocket);
      else reject(new Error(`gateway could not listen on ${options.host}:${options.port} (port in use?)`));
    });
  });
  return {
    // Port 0 asks the OS for a free port: report the one actually bound.
    port: us_socket_local_port(socket as unknown as us_socket),
    close: () => us_listen_socket_close(socket),
  };
}

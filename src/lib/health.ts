// The health and leader endpoints of a control-plane component, answered as
// upstream's: GET /healthz is 200 with the API server's version and the
// resourceVersion of the KubeVirt CR the component's configuration came from
// (upstream's test suite waits on that to know a config change reached every
// pod), 500 when the API server cannot be reached; GET /leader says whether
// this replica leads; GET /metrics is the component's Prometheus metrics when it
// has a registry. Served over TLS on the component's port, as upstream's, and
// without client authentication, as upstream serves its metrics.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { Logger } from './log.ts';
import type { Registry } from 'prom-client';

export interface HealthState {
  /** The API server's /version answer; rejects when it cannot be reached. */
  apiserverVersion(): Promise<unknown>;
  /** The resourceVersion of the KubeVirt CR the configuration in use was read from ("" before one was seen). */
  configResourceVersion(): string;
  /** Whether this replica holds the leader lease and runs its controllers; absent where nothing is elected. */
  leader?(): boolean;
}

export interface HealthAnswer {
  status: number;
  body: Record<string, unknown>;
}

/**
 * How long an answer of the API server's is taken as proof that it can be reached, and how long
 * one may take. Upstream keeps the version until an informer's watch fails; asking again now and
 * then does the same without a hook in every watch: a component cut off from the API server
 * (upstream's suite blackholes virt-handler's route to it) turns unready within a probe or two.
 */
export const APISERVER_CHECK = { keptMs: 10_000, timeoutMs: 3_000 };

/** The API server's version, or a rejection once `timeoutMs` has passed without one. */
function versionWithin(state: HealthState, timeoutMs: number): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the API server did not answer within ${timeoutMs / 1000} s`)), timeoutMs);
  });
  return Promise.race([state.apiserverVersion(), timeout]).finally(() => clearTimeout(timer));
}

/** The answer to a GET of `path`, or undefined for a path that is none of these. */
export function healthEndpoints(
  state: HealthState,
  now: () => number = Date.now,
  check = APISERVER_CHECK,
): (path: string) => Promise<HealthAnswer | undefined> {
  let version: unknown;
  let versionAt = Number.NEGATIVE_INFINITY;
  return async (path) => {
    // Upstream's suite asks for https://host:port//healthz: Go's mux cleans that path, and so does this.
    const route = path
      .split('?')[0]
      .replace(/\/{2,}/g, '/')
      .replace(/\/+$/, '');
    if (route === '/healthz') {
      try {
        if (now() - versionAt > check.keptMs) {
          version = await versionWithin(state, check.timeoutMs);
          versionAt = now();
        }
      } catch (error) {
        return {
          status: 500,
          body: {
            apiserver: { connectivity: 'failed', error: String((error as Error).message ?? error) },
            'config-resource-version': state.configResourceVersion(),
          },
        };
      }
      return {
        status: 200,
        body: { apiserver: { connectivity: 'ok', version }, 'config-resource-version': state.configResourceVersion() },
      };
    }
    if (route === '/leader' && state.leader) return { status: 200, body: { apiserver: { leader: String(state.leader()) } } };
    return undefined;
  };
}

/** Answers a request with the endpoints' answer: JSON, or a 404 for a path that is none of them. */
export function respondWithHealth(answer: ReturnType<typeof healthEndpoints>, path: string, res: ServerResponse): void {
  void answer(path).then(
    (result) => {
      if (!result) res.writeHead(404, { 'Content-Type': 'text/plain' }).end('404 page not found\n');
      else res.writeHead(result.status, { 'Content-Type': 'application/json' }).end(JSON.stringify(result.body));
    },
    () => res.writeHead(500).end(),
  );
}

/** Serves the endpoints over HTTPS on `port` with the certificate `tls` returns, re-read every minute. */
export function serveHealth(options: {
  port: number;
  tls: () => { cert: Buffer | string; key: Buffer | string };
  state: HealthState;
  log: Logger;
  /** Served at /metrics. */
  metrics?: Registry;
}): Server {
  const answer = healthEndpoints(options.state);
  const server = createServer(options.tls(), (req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405).end();
      return;
    }
    const metrics = options.metrics;
    if (metrics && (req.url ?? '/').split('?')[0] === '/metrics') {
      void metrics.metrics().then(
        (text) => res.writeHead(200, { 'Content-Type': metrics.contentType }).end(text),
        (error: Error) => {
          options.log.warning('could not collect metrics', { error: error.message });
          res.writeHead(500).end();
        },
      );
      return;
    }
    respondWithHealth(answer, req.url ?? '/', res);
  });
  const reload = setInterval(() => {
    try {
      server.setSecureContext(options.tls());
    } catch (error) {
      options.log.warning('could not reload the serving certificate', { error: String(error) });
    }
  }, 60_000);
  reload.unref();
  server.on('close', () => clearInterval(reload));
  server.listen(options.port);
  return server;
}

// The upload proxy, as CDI's: clients (virtctl image-upload) send a disk
// image with an upload token; the proxy checks the token names a claim that
// waits for an upload and whose upload server is ready, then streams the
// request to that server over TLS, trusting only the fill-pod CA and the name
// of that server's certificate.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, request as httpsRequest, type Server } from 'node:https';
import type { V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import { CDI_POD_PORT, CLAIM_ANNOTATIONS as A, DATAVOLUME_UID_LABEL, UPLOAD_SERVER_PATHS } from '../contract/cdi.ts';
import { verifyUploadToken } from '../contract/upload-token.ts';
import type { InformerCache } from '../lib/kube.ts';
import type { Logger } from '../lib/log.ts';
import { podToken } from './datavolume-controller.ts';
import { fillPodClientTls } from './fill-pod-client.ts';
import { fillPodSubjectUid } from './plan.ts';

export interface UploadProxyOptions {
  tls: { cert: string; key: string };
  tokenKey: Buffer;
  /** The fill-pod CA bundle the upload servers' certificates are checked with. */
  fillPodCa: () => string;
  claims: InformerCache<V1PersistentVolumeClaim>;
  pods: InformerCache<V1Pod>;
  log: Logger;
  now: () => number;
}

/** How long a request waits for the upload server to become ready, as CDI's proxy. */
const READY_WAIT_MS = 10_000;
const UPLOAD_PATHS: string[] = Object.values(UPLOAD_SERVER_PATHS);

function reply(res: ServerResponse, code: number, message: string) {
  res.writeHead(code, { 'content-type': 'text/plain' });
  res.end(message);
}

export function uploadProxy(o: UploadProxyOptions): Server {
  type Target = { ip: string; podName: string; token: string } | { error: string; code?: number };
  const uploadTarget = async (namespace: string, name: string): Promise<Target> => {
    const deadline = o.now() + READY_WAIT_MS;
    for (;;) {
      const claim = o.claims.get(name, namespace);
      const annotations = claim?.metadata?.annotations ?? {};
      if (claim && annotations[A.uploadTarget] === undefined) return { error: `PVC ${namespace}/${name} is not an upload target` };
      if (claim && annotations[A.podReady] === 'true') {
        // A DataVolume's server is labelled with (and its token derived from) the DataVolume's UID, a bare claim's with the claim's.
        const uid = fillPodSubjectUid(claim);
        const pod = o.pods.list(namespace).find((p) => p.metadata?.labels?.[DATAVOLUME_UID_LABEL] === uid && p.status?.podIP);
        if (pod && uid) return { ip: pod.status!.podIP!, podName: pod.metadata!.name!, token: podToken(o.tokenKey, uid) };
      }
      if (o.now() > deadline) return { error: `upload server for ${namespace}/${name} is not ready`, code: 503 };
      await new Promise((r) => setTimeout(r, 250));
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') return reply(res, 200, 'OK');
    if (!UPLOAD_PATHS.includes(path)) return reply(res, 404, 'not found');
    // virtctl asks whether asynchronous uploads are offered.
    if (req.method === 'HEAD') return reply(res, 200, '');
    if (req.method !== 'POST' && req.method !== 'PUT') return reply(res, 405, 'method not allowed');
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!bearer) return reply(res, 401, 'authentication required: an upload token (Authorization: Bearer)');
    const claims = verifyUploadToken(o.tokenKey, bearer, o.now());
    if ('error' in claims) return reply(res, 401, claims.error);
    const target = await uploadTarget(claims.namespace, claims.name);
    if ('error' in target) return reply(res, target.code ?? 400, target.error);
    o.log.info('upload started', { namespace: claims.namespace, name: claims.name, bytes: req.headers['content-length'] ?? 'unknown' });
    const headers: Record<string, string> = { authorization: `Bearer ${target.token}` };
    for (const h of ['content-length', 'content-type', 'transfer-encoding']) if (req.headers[h]) headers[h] = String(req.headers[h]);
    const tls = fillPodClientTls(o.fillPodCa(), claims.namespace, target.podName);
    const upstream = httpsRequest({ host: target.ip, port: CDI_POD_PORT, method: req.method, path, headers, ...tls }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
      answer.on('end', () => o.log.info('upload answered', { namespace: claims.namespace, name: claims.name, code: answer.statusCode }));
    });
    upstream.on('error', (error) => {
      if (!res.headersSent) reply(res, 502, `upload server unreachable: ${error.message}`);
      else res.destroy(error);
    });
    req.pipe(upstream);
  };

  return createServer({ cert: o.tls.cert, key: o.tls.key }, (req, res) => {
    handle(req, res).catch((error: Error) => {
      o.log.warning('upload request failed', { error: error.message });
      if (!res.headersSent) reply(res, 500, error.message);
    });
  });
}

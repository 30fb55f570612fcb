// virt-handler's HTTPS endpoint for virt-api, mutual TLS with the kubevirt CA:
// only a client certificate from that CA with virt-api's client name gets in.
// It carries VMI actions to the launcher of a VMI on this node.
import { createServer, type Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { Logger } from '../lib/log.ts';

export const HANDLER_PORT = 8186;
/** The common name of the client certificate virt-api presents. */
export const VIRT_API_CLIENT_CN = 'kubevirt.io:system:client:virt-handler';
export const HANDLER_ACTIONS = ['pause', 'unpause', 'softreboot', 'reset'] as const;
export type HandlerAction = (typeof HANDLER_ACTIONS)[number];

export interface HandlerTls {
  cert: string | Buffer;
  key: string | Buffer;
  ca: string | Buffer;
}

/** The path virt-api calls for an action on a VMI. */
export const actionPath = (namespace: string, name: string, action: HandlerAction) => `/v1/namespaces/${namespace}/virtualmachineinstances/${name}/${action}`;

/** The path virt-api reads a VMI's guest agent information from. */
export const guestInfoPath = (namespace: string, name: string) => `/v1/namespaces/${namespace}/virtualmachineinstances/${name}/guestinfo`;

export function serveVirtApi(tls: () => HandlerTls, act: (namespace: string, name: string, action: HandlerAction) => Promise<void>, guestInfo: (namespace: string, name: string) => Promise<unknown>, log: Logger): Server {
  const server = createServer({ ...tls(), requestCert: true, rejectUnauthorized: true }, (req, res) => {
    const cn = (req.socket as TLSSocket).getPeerCertificate()?.subject?.CN;
    if (cn !== VIRT_API_CLIENT_CN) {
      res.writeHead(403).end(`client ${cn} may not call virt-handler`);
      return;
    }
    const match = /^\/v1\/namespaces\/([^/]+)\/virtualmachineinstances\/([^/]+)\/([a-z]+)$/.exec(req.url ?? '');
    if (req.method === 'GET' && match?.[3] === 'guestinfo') {
      guestInfo(match[1], match[2]).then(
        (info) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(info)),
        (error: Error) => res.writeHead(409).end(error.message),
      );
      return;
    }
    const action = match?.[3] as HandlerAction | undefined;
    if (req.method !== 'PUT' || !match || !HANDLER_ACTIONS.includes(action!)) {
      res.writeHead(404).end();
      return;
    }
    act(match[1], match[2], action!).then(
      () => res.writeHead(200).end(),
      (error: Error) => res.writeHead(409).end(error.message),
    );
  });
  server.listen(HANDLER_PORT, () => log.info('serving virt-api', { port: HANDLER_PORT }));
  return server;
}

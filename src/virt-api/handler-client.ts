// virt-api → virt-handler over mutual TLS: the handler on the VMI's node is
// found by its pod, and its certificate must be the kubevirt CA's
// virt-handler server certificate.
import { request } from 'node:https';
import type { CoreV1Api } from '@kubernetes/client-node';
import { HANDLER_PORT } from '../contract/handler-api.ts';
import { readText } from '../lib/raw-request.ts';

export interface ClientTls {
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
}

export async function handlerAddress(core: CoreV1Api, namespace: string, node: string): Promise<string> {
  const pods = await core.listNamespacedPod({
    namespace,
    labelSelector: 'kubevirt.io=virt-handler',
    fieldSelector: `spec.nodeName=${node}`,
  });
  const ip = pods.items.find((p) => p.status?.phase === 'Running' && p.status.podIP)?.status?.podIP;
  if (!ip) throw new Error(`no virt-handler runs on node ${node}`);
  return ip;
}

export function callHandler(
  method: 'GET' | 'PUT',
  address: string,
  path: string,
  tls: ClientTls,
  body?: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: address, port: HANDLER_PORT, path, method, ...tls, servername: 'virt-handler', timeout: 30_000 }, (res) => {
      readText(res).then((body) => resolve({ status: res.statusCode ?? 500, body }), reject);
    });
    req.on('timeout', () => req.destroy(new Error('virt-handler did not answer in time')));
    req.on('error', reject);
    req.end(body);
  });
}

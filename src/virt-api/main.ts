// virt-api: serves the admission webhooks over TLS. Its certificate is re-read
// when the mounted secret changes, so rotation needs no restart; the cluster
// configuration comes from the KubeVirt CR, watched.
import { apiTimestamp } from '../contract/vmi.ts';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import { connect as connectTcp, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { readFileSync, watchFile } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubernetesObject } from '@kubernetes/client-node';
import { WebSocket, WebSocketServer, type ClientOptions } from 'ws';
import type { VirtualMachine, VirtualMachineInstance, VirtualMachineInstancetype, VirtualMachinePreference } from '../api/types.ts';
import { expandVm } from '../api/instancetype.ts';
import { KUBEVIRT_SERVICE_ACCOUNTS, serviceAccountUsername } from '../api/constants.ts';
import { choosePlainProtocol, isWebSocketHandshake, PLAIN_STREAM_PROTOCOL, refuseUpgrade, relaySockets, relayStream } from '../lib/stream-relay.ts';
import { versionInfo } from '../lib/version.ts';
import { createLogger, exitOnSignals } from '../lib/log.ts';
import { apiErrorMessage, customInformer, loadKubeConfig, startInformers, statusMessage } from '../lib/kube.ts';
import { readText } from '../lib/raw-request.ts';
import { checkMigrate, checkVmiAction, conflict, planRestart, planStart, planStop, type LifecycleError, type VmiAction } from './lifecycle.ts';
import { callHandler, handlerAddress } from './handler-client.ts';
import { actionPath, guestInfoPath, HANDLER_PORT, streamPath, type StreamKind } from '../contract/handler-api.ts';
import { checkConsole, checkOnNode, checkVmStarted, checkVnc, portForwardTarget } from './streams.ts';
import { checkGuestInfo, guestInfoAnswer, type GuestInfoKind } from './guestinfo.ts';
import { clusterConfigInformer } from '../lib/cluster-config-watch.ts';
import { review, type AdmissionReview } from './admission.ts';
import { apiGroup, apiResourceList, authenticateProxy, requestHeaderConfig, statusError, SUBRESOURCE_GROUP, SUBRESOURCE_VERSION, type RequestHeaderConfig } from './aggregation.ts';

const log = createLogger('virt-api');
exitOnSignals(log);
// Flags, not environment: Kubernetes puts VIRT_API_* variables of its own (the Service's) into the pod.
const { values: flags } = parseArgs({ options: { port: { type: 'string', default: '8443' }, 'cert-dir': { type: 'string', default: '/etc/virt-api/certificates' } } });
const CERT_DIR = flags['cert-dir'];
const PORT = Number(flags.port);
const NAMESPACE = process.env.KUBEVIRT_NAMESPACE ?? 'kubevirt';
/** The service accounts whose writes to VMI status and spec kubevirt-ts trusts. */
const TRUSTED_USERNAMES = new Set(KUBEVIRT_SERVICE_ACCOUNTS.map((sa) => serviceAccountUsername(NAMESPACE, sa)));

const kc = loadKubeConfig();
type Typed<T> = T & KubernetesObject;
const clusterConfig = clusterConfigInformer(kc, NAMESPACE);
const instancetypes = customInformer<Typed<VirtualMachineInstancetype>>(kc, 'instancetype.kubevirt.io', 'v1beta1', 'virtualmachineinstancetypes');
const clusterInstancetypes = customInformer<Typed<VirtualMachineInstancetype>>(kc, 'instancetype.kubevirt.io', 'v1beta1', 'virtualmachineclusterinstancetypes');
const preferences = customInformer<Typed<VirtualMachinePreference>>(kc, 'instancetype.kubevirt.io', 'v1beta1', 'virtualmachinepreferences');
const clusterPreferences = customInformer<Typed<VirtualMachinePreference>>(kc, 'instancetype.kubevirt.io', 'v1beta1', 'virtualmachineclusterpreferences');
await startInformers(log, clusterConfig.informer, instancetypes, clusterInstancetypes, preferences, clusterPreferences);

// The front proxy's CA and names: aggregated requests are trusted only from a certificate it signed with an allowed CN.
let requestHeader: RequestHeaderConfig | undefined;
async function loadRequestHeader() {
  try {
    const map = await core.readNamespacedConfigMap({ name: 'extension-apiserver-authentication', namespace: 'kube-system' });
    requestHeader = requestHeaderConfig(map.data ?? {});
  } catch (error) {
    log.warning('cannot read the requestheader configuration; aggregated requests are refused', { error: (error as Error).message.split('\n')[0] });
  }
}
const core = kc.makeApiClient(CoreV1Api);
await loadRequestHeader();

const tls = () => ({
  cert: readFileSync(join(CERT_DIR, 'tls.crt')),
  key: readFileSync(join(CERT_DIR, 'tls.key')),
  // Client certificates are asked for but checked per request: the webhooks are called without one.
  requestCert: true,
  rejectUnauthorized: false,
  ...(requestHeader ? { ca: requestHeader.clientCA } : {}),
});
const json = (res: ServerResponse, code: number, body: unknown) => res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));

function serveAggregated(req: IncomingMessage, res: ServerResponse) {
  const socket = req.socket as TLSSocket;
  const auth = authenticateProxy({ verified: socket.authorized, commonName: socket.getPeerCertificate()?.subject?.CN as string | undefined }, req.headers, requestHeader);
  if ('error' in auth) {
    log.warning('aggregated request refused', { path: req.url, reason: auth.error });
    json(res, 401, statusError(401, 'Unauthorized', auth.error));
    return;
  }
  const path = (req.url ?? '').split('?')[0].replace(/\/$/, '');
  if (req.method === 'GET' && path === `/apis/${SUBRESOURCE_GROUP}`) return json(res, 200, apiGroup());
  if (req.method === 'GET' && path === `/apis/${SUBRESOURCE_GROUP}/${SUBRESOURCE_VERSION}`) return json(res, 200, apiResourceList());
  const action = new RegExp(`^/apis/${SUBRESOURCE_GROUP}/${SUBRESOURCE_VERSION}/namespaces/([^/]+)/virtualmachines/([^/]+)/(start|stop|restart)$`).exec(path);
  if (action && req.method === 'PUT') {
    void readText(req).then((text) => vmLifecycle(action[1], action[2], action[3] as 'start' | 'stop' | 'restart', optionsOf(text), auth.user.name)).then(
      (answer) => (answer ? json(res, answer.code, statusError(answer.code, answer.reason, answer.message)) : res.writeHead(202).end()),
      (error) => json(res, 500, statusError(500, 'InternalError', apiErrorMessage(error))),
    );
    return;
  }
  const vmiAction = new RegExp(`^/apis/${SUBRESOURCE_GROUP}/${SUBRESOURCE_VERSION}/namespaces/([^/]+)/virtualmachineinstances/([^/]+)/(pause|unpause|softreboot|reset)$`).exec(path);
  if (vmiAction && req.method === 'PUT') {
    void vmiLifecycle(vmiAction[1], vmiAction[2], vmiAction[3] as VmiAction, auth.user.name).then(
      (answer) => (answer ? json(res, answer.code, statusError(answer.code, answer.reason, answer.message)) : res.writeHead(200).end()),
      (error) => json(res, 500, statusError(500, 'InternalError', apiErrorMessage(error))),
    );
    return;
  }
  const info = new RegExp(`^/apis/${SUBRESOURCE_GROUP}/${SUBRESOURCE_VERSION}/namespaces/([^/]+)/virtualmachineinstances/([^/]+)/(guestosinfo|userlist|filesystemlist)$`).exec(path);
  if (info && req.method === 'GET') {
    void readGuestInfo(info[1], info[2], info[3] as GuestInfoKind).then(
      (answer) => ('code' in answer ? json(res, answer.code, statusError(answer.code, answer.reason, answer.message)) : json(res, 200, answer.body)),
      (error) => json(res, 500, statusError(500, 'InternalError', apiErrorMessage(error))),
    );
    return;
  }
  if (req.method === 'GET' && path === `${GROUP_PATH}/version`) return json(res, 200, versionInfo());
  const answer = (promise: Promise<LifecycleError | { code: number; body?: object }>) =>
    void promise.then(
      (a) => ('reason' in a ? json(res, a.code, statusError(a.code, a.reason, a.message)) : a.body ? json(res, a.code, a.body) : res.writeHead(a.code).end()),
      (error) => json(res, 500, statusError(500, 'InternalError', apiErrorMessage(error))),
    );
  const expand = new RegExp(`^${GROUP_PATH}/namespaces/([^/]+)/virtualmachines/([^/]+)/expand-spec$`).exec(path);
  if (expand && req.method === 'GET') return answer(expandStoredVm(expand[1], expand[2]));
  const expandBody = new RegExp(`^${GROUP_PATH}/namespaces/([^/]+)/expand-vm-spec$`).exec(path);
  if (expandBody && req.method === 'PUT') return answer(readText(req).then((text) => expandGivenVm(expandBody[1], text)));
  const migrate = new RegExp(`^${GROUP_PATH}/namespaces/([^/]+)/virtualmachines/([^/]+)/migrate$`).exec(path);
  if (migrate && req.method === 'PUT') return answer(readText(req).then((text) => migrateVm(migrate[1], migrate[2], optionsOf(text), auth.user.name)));
  json(res, 404, statusError(404, 'NotFound', `${req.method} ${path} is not served by virt-api`));
}

const GROUP_PATH = `/apis/${SUBRESOURCE_GROUP}/${SUBRESOURCE_VERSION}`;

type Informer<T> = { get(name: string, namespace?: string): T | undefined };
/** The instance type or preference a matcher names: cluster-wide unless its kind says namespaced (upstream's default). */
function matched<T>(kind: string | undefined, name: string, namespace: string | undefined, cluster: Informer<T>, namespaced: Informer<T>): T | undefined {
  return kind && !kind.toLowerCase().startsWith('virtualmachinecluster') ? namespaced.get(name, namespace) : cluster.get(name);
}
const notFound = (resource: string, name: string): LifecycleError => ({ code: 404, reason: 'NotFound', message: `${resource} "${name}" not found` });

/** A VM with its instance type and preference written into its template. */
function expanded(vm: VirtualMachine, errorCode: 400 | 500): LifecycleError | { code: number; body: object } {
  const namespace = vm.metadata.namespace;
  const lookup = <T>(ref: { kind?: string; name?: string } | undefined, cluster: Informer<T>, namespaced: Informer<T>, kind: string) => {
    if (!ref?.name) return { found: undefined };
    const found = matched(ref.kind, ref.name, namespace, cluster, namespaced);
    return found ? { found } : { missing: `${(ref.kind ?? kind).toLowerCase()}.instancetype.kubevirt.io "${ref.name}" not found` };
  };
  const fail = (message: string): LifecycleError => ({ code: errorCode, reason: errorCode === 400 ? 'BadRequest' : 'InternalError', message });
  const instancetype = lookup(vm.spec?.instancetype, clusterInstancetypes, instancetypes, 'VirtualMachineClusterInstancetype');
  if ('missing' in instancetype) return fail(instancetype.missing!);
  const preference = lookup(vm.spec?.preference, clusterPreferences, preferences, 'VirtualMachineClusterPreference');
  if ('missing' in preference) return fail(preference.missing!);
  const result = expandVm(vm, instancetype.found?.spec, preference.found?.spec);
  if ('causes' in result) return fail(result.causes.map((c) => c.message).join(', '));
  return { code: 200, body: result.vm };
}

async function expandStoredVm(namespace: string, name: string) {
  const vm = await getVm(namespace, name);
  return vm ? expanded(vm, 500) : notFound('virtualmachine.kubevirt.io', name);
}

function expandGivenVm(namespace: string, text: string): LifecycleError | { code: number; body: object } {
  let vm: VirtualMachine;
  try {
    vm = JSON.parse(text);
  } catch (error) {
    return { code: 400, reason: 'BadRequest', message: `Can not unmarshal Request body to struct, error: ${(error as Error).message}` };
  }
  if (vm?.kind !== 'VirtualMachine' || !vm.spec?.template) return { code: 400, reason: 'BadRequest', message: 'Object is not a valid VirtualMachine' };
  if (vm.metadata?.namespace && vm.metadata.namespace !== namespace) return { code: 400, reason: 'BadRequest', message: `VM namespace must be empty or ${namespace}` };
  return expanded({ ...vm, metadata: { ...vm.metadata, namespace } }, 400);
}

async function migrateVm(namespace: string, name: string, options: Record<string, unknown>, user: string): Promise<LifecycleError | { code: number }> {
  const vm = await getVm(namespace, name);
  if (!vm) return notFound('virtualmachine.kubevirt.io', name);
  const vmi = await getVmi(namespace, name);
  if (!vmi) return notFound('virtualmachineinstance.kubevirt.io', name);
  const refused = checkMigrate(name, vmi);
  if (refused) return refused;
  const dryRun = Array.isArray(options.dryRun) && options.dryRun.length ? 'All' : undefined;
  await custom.createNamespacedCustomObject({
    group: 'kubevirt.io', version: 'v1', namespace, plural: 'virtualmachineinstancemigrations', dryRun,
    body: { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstanceMigration', metadata: { generateName: 'kubevirt-migrate-vm-' }, spec: { vmiName: name, addedNodeSelector: options.addedNodeSelector } },
  });
  log.object({ kind: 'VirtualMachine', metadata: vm.metadata }).info('migration requested', { user });
  return { code: 202 };
}

const wss = new WebSocketServer({ noServer: true, handleProtocols: choosePlainProtocol });

/**
 * console and vnc go to the virt-handler of the VMI's node over mutual TLS;
 * portforward connects from here to the VMI's address. Refusals are plain
 * HTTP answers with a Status body, before the WebSocket handshake.
 */
function serveUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer) {
  const tlsSocket = req.socket as TLSSocket;
  const auth = authenticateProxy({ verified: tlsSocket.authorized, commonName: tlsSocket.getPeerCertificate()?.subject?.CN as string | undefined }, req.headers, requestHeader);
  if ('error' in auth) return refuseUpgrade(socket, 401, statusError(401, 'Unauthorized', auth.error));
  if (!isWebSocketHandshake(req)) return refuseUpgrade(socket, 400, statusError(400, 'BadRequest', 'not a WebSocket handshake'));
  const url = new URL(req.url ?? '/', 'https://virt-api');
  const stream = new RegExp(`^${GROUP_PATH}/namespaces/([^/]+)/virtualmachineinstances/([^/]+)/(console|vnc)$`).exec(url.pathname);
  const forward = new RegExp(`^${GROUP_PATH}/namespaces/([^/]+)/(virtualmachineinstances|virtualmachines)/([^/]+)/portforward/([^/]*)(?:/([^/]+))?$`).exec(url.pathname);
  const refuse = (e: LifecycleError) => refuseUpgrade(socket, e.code, statusError(e.code, e.reason, e.message));
  const opened = stream
    ? streamFromHandler(stream[1], stream[2], stream[3] as StreamKind, url.searchParams.get('preserveSession') === 'true')
    : forward
      ? forwardToGuest(forward[1], forward[2] === 'virtualmachines', forward[3], forward[4], forward[5])
      : Promise.resolve<LifecycleError>({ code: 404, reason: 'NotFound', message: `no stream at ${url.pathname}` });
  // A client gone before the handshake leaves nothing open at the far end.
  socket.once('close', () => void opened.then((o) => 'relay' in o && o.destroy(), () => undefined));
  void opened.then(
    (o) => {
      if (!('relay' in o)) return refuse(o);
      if (socket.destroyed) return;
      wss.handleUpgrade(req, socket, head, (client) => {
        o.relay(client);
        log.info('stream opened', { path: url.pathname, user: auth.user.name });
      });
    },
    (error) => refuse({ code: 500, reason: 'InternalError', message: apiErrorMessage(error) }),
  );
}

/** The far end of a stream, ready to be joined to the client's WebSocket. */
type StreamEnd = { relay: (client: WebSocket) => void; destroy: () => void };

async function streamFromHandler(namespace: string, name: string, kind: StreamKind, preserveSession: boolean): Promise<LifecycleError | StreamEnd> {
  const vmi = await getVmi(namespace, name);
  if (!vmi) return notFound('virtualmachineinstance.kubevirt.io', name);
  const refused = (kind === 'console' ? checkConsole(vmi) : checkVnc(vmi)) ?? checkOnNode(vmi);
  if (refused) return refused;
  const address = await handlerAddress(core, NAMESPACE, vmi.status!.nodeName!);
  const options: ClientOptions & { servername: string } = { ...handlerTls(), servername: 'virt-handler', handshakeTimeout: 10_000 };
  const handler = new WebSocket(`wss://${address}:${HANDLER_PORT}${streamPath(namespace, name, kind, preserveSession)}`, [PLAIN_STREAM_PROTOCOL], options);
  return new Promise((resolve) => {
    handler.once('open', () => {
      handler.pause();
      resolve({ relay: (client) => relaySockets(client, handler), destroy: () => handler.terminate() });
    });
    handler.once('unexpected-response', (_request, response) => {
      void readText(response).then((text) => {
        const code = response.statusCode ?? 500;
        resolve({ code, reason: code < 500 ? 'BadRequest' : 'InternalError', message: `virt-handler refused the ${kind} connection: ${statusMessage(text) ?? text}` });
      });
    });
    handler.once('error', (error) => resolve({ code: 500, reason: 'InternalError', message: `cannot reach virt-handler on node ${vmi.status!.nodeName}: ${error.message}` }));
  });
}

async function forwardToGuest(namespace: string, ofVm: boolean, name: string, port: string, protocol?: string): Promise<LifecycleError | StreamEnd> {
  if (ofVm) {
    const vm = await getVm(namespace, name);
    if (!vm) return notFound('virtualmachine.kubevirt.io', name);
    const notStarted = checkVmStarted(vm);
    if (notStarted) return notStarted;
  }
  const vmi = await getVmi(namespace, name);
  if (!vmi) return notFound('virtualmachineinstance.kubevirt.io', name);
  const target = portForwardTarget(vmi, port, protocol);
  if ('code' in target) return target;
  return new Promise((resolve) => {
    const tcp: Socket = connectTcp(target);
    tcp.once('connect', () => resolve({ relay: (client) => relayStream(client, tcp, 10_000), destroy: () => tcp.destroy() }));
    tcp.once('error', (error) => resolve({ code: 500, reason: 'InternalError', message: `dialing VM: ${error.message}` }));
  });
}

/** A VM or VMI, or undefined when there is none. */
async function getObject<T>(plural: 'virtualmachines' | 'virtualmachineinstances', namespace: string, name: string): Promise<T | undefined> {
  return (await custom.getNamespacedCustomObject({ group: 'kubevirt.io', version: 'v1', namespace, plural, name }).catch((error) => {
    if ((error as { code?: number }).code === 404) return undefined;
    throw error;
  })) as T | undefined;
}
const getVm = (namespace: string, name: string) => getObject<VirtualMachine>('virtualmachines', namespace, name);
const getVmi = (namespace: string, name: string) => getObject<VirtualMachineInstance>('virtualmachineinstances', namespace, name);

/** The guest agent's information about a VMI, from the virt-handler of its node. */
async function readGuestInfo(namespace: string, name: string, kind: GuestInfoKind): Promise<LifecycleError | { body: object }> {
  const vmi = await getVmi(namespace, name);
  if (!vmi) return notFound('virtualmachineinstance.kubevirt.io', name);
  const refused = checkGuestInfo(vmi);
  if (refused) return refused;
  const answer = await callHandler('GET', await handlerAddress(core, NAMESPACE, vmi.status!.nodeName!), guestInfoPath(namespace, name), handlerTls());
  if (answer.status !== 200) return { code: 500, reason: 'InternalError', message: `reading the guest agent failed: ${answer.body}` };
  return { body: guestInfoAnswer(kind, JSON.parse(answer.body)) };
}

const handlerTls = () => ({
  cert: readFileSync('/etc/virt-api/handler-client/tls.crt'),
  key: readFileSync('/etc/virt-api/handler-client/tls.key'),
  ca: readFileSync('/etc/virt-api/ca/ca-bundle'),
});

/** pause, unpause, softreboot or reset a VMI through the virt-handler of its node. */
async function vmiLifecycle(namespace: string, name: string, action: VmiAction, user: string): Promise<LifecycleError | undefined> {
  const vmi = await getVmi(namespace, name);
  if (!vmi) return notFound('virtualmachineinstance.kubevirt.io', name);
  const refused = checkVmiAction(vmi, action);
  if (refused) return refused;
  const address = await handlerAddress(core, NAMESPACE, vmi.status!.nodeName!);
  const answer = await callHandler('PUT', address, actionPath(namespace, name, action), handlerTls());
  if (answer.status !== 200) return { code: 500, reason: 'InternalError', message: `${action} failed: ${answer.body}` };
  log.object({ kind: 'VirtualMachineInstance', metadata: vmi.metadata }).info(`${action} done`, { user });
  return undefined;
}

/** A subresource's options; an empty or unreadable body means none, as upstream treats it. */
function optionsOf(text: string): Record<string, unknown> {
  try {
    return text ? JSON.parse(text) : {};
  } catch {
    return {};
  }
}

const custom = kc.makeApiClient(CustomObjectsApi);
const jsonPatchHeaders = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);

/** start, stop or restart a VM; undefined when accepted, else the error to answer with. */
async function vmLifecycle(namespace: string, name: string, action: 'start' | 'stop' | 'restart', body: Record<string, unknown>, user: string): Promise<LifecycleError | undefined> {
  const vm = await getVm(namespace, name);
  if (!vm) return notFound('virtualmachine.kubevirt.io', name);
  const vmi = await getVmi(namespace, name);
  const result = action === 'start'
    ? planStart(vm, vmi, { paused: body.paused === true })
    : action === 'stop'
      ? planStop(vm, vmi, { gracePeriod: typeof body.gracePeriod === 'number' ? body.gracePeriod : undefined })
      : planRestart(vm, vmi, { gracePeriodSeconds: typeof body.gracePeriodSeconds === 'number' ? body.gracePeriodSeconds : undefined });
  if ('error' in result) return result.error;
  const dryRun = Array.isArray(body.dryRun) && body.dryRun.length ? 'All' : undefined;
  const target = { group: 'kubevirt.io', version: 'v1', namespace, name, dryRun };
  try {
    if (result.plan.vmi) await custom.patchNamespacedCustomObject({ ...target, plural: 'virtualmachineinstances', body: result.plan.vmi }, jsonPatchHeaders);
    if (result.plan.vm) await custom.patchNamespacedCustomObject({ ...target, plural: 'virtualmachines', body: result.plan.vm }, jsonPatchHeaders);
    if (result.plan.vmStatus) await custom.patchNamespacedCustomObjectStatus({ ...target, plural: 'virtualmachines', body: result.plan.vmStatus }, jsonPatchHeaders);
  } catch (error) {
    // A failed test operation means someone else changed the VM meanwhile.
    if ((error as { code?: number }).code === 422) return conflict(name, apiErrorMessage(error)).error;
    throw error;
  }
  log.object({ kind: 'VirtualMachine', metadata: vm.metadata }).info(`${action} accepted`, { user, dryRun: dryRun !== undefined });
  return undefined;
}

const server = createServer(tls(), (req, res) => {
  if (req.method === 'GET' && (req.url === '/healthz' || req.url === '/readyz')) {
    res.writeHead(200).end('ok');
    return;
  }
  if (req.url?.startsWith('/apis/')) return serveAggregated(req, res);
  if (req.method !== 'POST') {
    res.writeHead(405).end();
    return;
  }
  void readText(req).then((text) => {
    try {
      const body = JSON.parse(text) as AdmissionReview;
      const answer = review(req.url?.split('?')[0] ?? '', body, {
        config: clusterConfig.current,
        kubevirtServiceAccounts: TRUSTED_USERNAMES,
        newUUID: () => crypto.randomUUID(),
        now: () => apiTimestamp(),
        findInstancetype: (namespace, kind, name) => matched(kind, name, namespace, clusterInstancetypes, instancetypes)?.spec,
      });
      if (answer.response && !answer.response.allowed) {
        log.info('admission rejected', { path: req.url, kind: body.request?.kind?.kind, name: (body.request?.object as KubernetesObject | undefined)?.metadata?.name, causes: answer.response.status?.details?.causes?.length });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
    } catch (error) {
      log.error('bad admission request', { path: req.url, error: (error as Error).message });
      res.writeHead(400).end((error as Error).message);
    }
  });
});
// A rotated certificate is picked up from the mounted secret without a restart.
watchFile(join(CERT_DIR, 'tls.crt'), { interval: 10_000 }, () => {
  server.setSecureContext(tls());
  log.info('serving certificate reloaded');
});
// The front-proxy CA can change too (kube-apiserver restarted with another); re-read it now and then.
setInterval(() => void loadRequestHeader().then(() => server.setSecureContext(tls())), 60_000).unref();
server.on('upgrade', serveUpgrade);
server.listen(PORT, () => log.info('serving admission webhooks', { port: PORT }));

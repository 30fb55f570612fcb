// virt-api's HTTPS server: the admission webhooks, and the aggregated
// subresources.kubevirt.io API that kube-apiserver forwards to it (lifecycle
// actions, guest agent information, spec expansion, migration, and the
// console, vnc and portforward streams). The decisions are the pure
// functions beside it (./admission.ts, ./lifecycle.ts, ./streams.ts,
// ./guestinfo.ts); this routes requests to them and carries out their answer.
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import { connect as connectTcp, type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { KubernetesObject, V1ConfigMap, V1Pod } from '@kubernetes/client-node';
import { WebSocket, WebSocketServer, type ClientOptions } from 'ws';
import type { ClusterConfig } from '../api/cluster-config.ts';
import { KUBEVIRT_SERVICE_ACCOUNTS, serviceAccountUsername } from '../api/constants.ts';
import { expandVm } from '../api/instancetype.ts';
import type {
  VirtualMachine,
  VirtualMachineInstance,
  VirtualMachineInstanceMigration,
  VirtualMachineInstancetype,
  VirtualMachinePreference,
} from '../api/types.ts';
import { DATAVOLUME_WEBHOOK_PATH } from '../contract/cdi.ts';
import {
  actionPath,
  guestInfoPath,
  HANDLER_PORT,
  streamPath,
  type StreamKind,
  type VncOptions,
  vncOptionsOf,
} from '../contract/handler-api.ts';
import { apiTimestamp } from '../contract/vmi.ts';
import { apiErrorMessage, ignoreNotFound, statusMessage, type InformerCache, type JsonPatchOperation, type Typed } from '../lib/kube.ts';
import type { Registry } from 'prom-client';
import { respondWithHealth, type healthEndpoints } from '../lib/health.ts';
import type { Logger } from '../lib/log.ts';
import { readText } from '../lib/raw-request.ts';
import {
  choosePlainProtocol,
  isWebSocketHandshake,
  PLAIN_STREAM_PROTOCOL,
  refuseUpgrade,
  relaySockets,
  relayStream,
} from '../lib/stream-relay.ts';
import { versionInfo } from '../lib/version.ts';
import { review, type AdmissionEnvironment, type AdmissionReview } from './admission.ts';
import {
  apiGroup,
  apiResourceList,
  authenticateProxy,
  requestHeaderConfig,
  statusError,
  SUBRESOURCE_GROUP,
  SUBRESOURCE_VERSION,
  type ProxyAuthentication,
  type RequestHeaderConfig,
} from './aggregation.ts';
import { checkGuestInfo, guestInfoAnswer, type GuestInfoKind } from './guestinfo.ts';
import { callHandler, type ClientTls } from './handler-client.ts';
import {
  checkMigrate,
  checkVmiAction,
  conflict,
  handlerRefusal,
  planRestart,
  planStart,
  planStop,
  type LifecycleError,
  type VmiAction,
} from './lifecycle.ts';
import { type CanI, reviewDataVolume } from './clone-authorization.ts';
import { MIGRATION_CREATE_PATH, migrationRefusal } from './migration-admission.ts';
import { decideEviction, evacuationPatch, EVICTION_WEBHOOK_PATH, evictionDryRun, launcherVmiName } from './eviction.ts';
import { answerUploadTokenRequest, UPLOAD_GROUP_PATH, UPLOAD_TOKEN_REQUESTS, uploadApiGroup, uploadApiResources } from './upload-tokens.ts';
import { checkConsole, checkOnNode, checkVmStarted, checkVnc, portForwardTarget } from './streams.ts';

/** The API calls of virt-api. Failures reject with the API's error (its `code` the HTTP status). */
export interface VirtApiServerApi {
  getVm(namespace: string, name: string): Promise<VirtualMachine>;
  getVmi(namespace: string, name: string): Promise<VirtualMachineInstance>;
  /** JSON patches; with dryRun 'All' nothing is persisted. */
  patchVm(namespace: string, name: string, patch: JsonPatchOperation[], dryRun?: 'All'): Promise<void>;
  patchVmStatus(namespace: string, name: string, patch: JsonPatchOperation[], dryRun?: 'All'): Promise<void>;
  /** A SubjectAccessReview: may this user do this? */
  canI: CanI;
  patchVmi(namespace: string, name: string, patch: JsonPatchOperation[], dryRun?: 'All'): Promise<void>;
  /** Deletes the launcher pods of the VMI of this UID (those labelled created-by it) with the grace period given; resolves to their names. */
  deleteLauncherPods(namespace: string, vmiUid: string, gracePeriodSeconds: number, dryRun?: 'All'): Promise<string[]>;
  createMigration(namespace: string, migration: VirtualMachineInstanceMigration, dryRun?: 'All'): Promise<void>;
  readConfigMap(namespace: string, name: string): Promise<V1ConfigMap>;
  /** A pod, for the eviction webhook. */
  getPod(namespace: string, name: string): Promise<V1Pod>;
  /** The address of the virt-handler that runs on the node. */
  handlerAddress(node: string): Promise<string>;
}

export interface VirtApiServerOptions {
  api: VirtApiServerApi;
  informers: {
    instancetypes: InformerCache<Typed<VirtualMachineInstancetype>>;
    clusterInstancetypes: InformerCache<Typed<VirtualMachineInstancetype>>;
    preferences: InformerCache<Typed<VirtualMachinePreference>>;
    clusterPreferences: InformerCache<Typed<VirtualMachinePreference>>;
  };
  config: () => ClusterConfig;
  /** kubevirt-ts's namespace, whose service accounts' writes to VMI status and spec are trusted. */
  namespace: string;
  /** virt-api's serving certificate, read anew on each reload. */
  servingCertificate: () => { cert: Buffer; key: Buffer };
  /** The client certificate virt-api presents to virt-handler, and the CA bundle virt-handler's must chain to. */
  handlerClientTls: () => ClientTls;
  now: () => Date;
  newUUID: () => string;
  /** The key upload tokens are signed with; undefined while kubevirt-ts serves no DataVolumes. */
  uploadTokenKey: () => Buffer | undefined;
  log: Logger;
  /** Served at GET /metrics (without client authentication, as upstream serves its metrics). */
  metrics?: Registry;
  /** GET /healthz, as the other components answer it (healthEndpoints). */
  health: ReturnType<typeof healthEndpoints>;
}

const GROUP_PATH = `/apis/${SUBRESOURCE_GROUP}/${SUBRESOURCE_VERSION}`;
const NAMESPACED = `^${GROUP_PATH}/namespaces/([^/]+)`;
const VM_ACTION = new RegExp(`${NAMESPACED}/virtualmachines/([^/]+)/(start|stop|restart)$`);
const VMI_ACTION = new RegExp(`${NAMESPACED}/virtualmachineinstances/([^/]+)/(pause|unpause|softreboot|reset|freeze|unfreeze)$`);
const GUEST_INFO = new RegExp(`${NAMESPACED}/virtualmachineinstances/([^/]+)/(guestosinfo|userlist|filesystemlist)$`);
const EXPAND_SPEC = new RegExp(`${NAMESPACED}/virtualmachines/([^/]+)/expand-spec$`);
const EXPAND_VM_SPEC = new RegExp(`${NAMESPACED}/expand-vm-spec$`);
const MIGRATE = new RegExp(`${NAMESPACED}/virtualmachines/([^/]+)/migrate$`);
const STREAM = new RegExp(`${NAMESPACED}/virtualmachineinstances/([^/]+)/(console|vnc)$`);
const PORT_FORWARD = new RegExp(`${NAMESPACED}/(virtualmachineinstances|virtualmachines)/([^/]+)/portforward/([^/]*)(?:/([^/]+))?$`);
/** The front proxy's CA can change (kube-apiserver restarted with another): it is re-read this often. */
const REQUEST_HEADER_RELOAD_MS = 60_000;

type Answer = LifecycleError | { code: number; body?: object };
type VmAction = 'start' | 'stop' | 'restart';
/** The far end of a stream, ready to be joined to the client's WebSocket, or why there is none. */
type Opened = LifecycleError | { relay: (client: WebSocket) => void; destroy: () => void };

function json(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}
const notFound = (resource: string, name: string): LifecycleError => ({
  code: 404,
  reason: 'NotFound',
  message: `${resource} "${name}" not found`,
});
const internalError = (error: unknown): LifecycleError => ({ code: 500, reason: 'InternalError', message: apiErrorMessage(error) });
const dryRunOf = (options: Record<string, unknown>) => (Array.isArray(options.dryRun) && options.dryRun.length ? 'All' : undefined);

/** The instance type or preference a matcher names: cluster-wide unless its kind says namespaced (upstream's default). */
function matched<T>(
  kind: string | undefined,
  name: string,
  namespace: string | undefined,
  cluster: InformerCache<T>,
  namespaced: InformerCache<T>,
): T | undefined {
  return kind && !kind.toLowerCase().startsWith('virtualmachinecluster') ? namespaced.get(name, namespace) : cluster.get(name);
}

/** A subresource's options; an empty or unreadable body means none, as upstream treats it. */
function optionsOf(text: string): Record<string, unknown> {
  try {
    return text ? JSON.parse(text) : {};
  } catch {
    return {};
  }
}

/** Who an aggregated request is from: the front proxy's client certificate must be trusted to say. */
function authenticate(req: IncomingMessage, requestHeader: RequestHeaderConfig | undefined): ProxyAuthentication {
  const socket = req.socket as TLSSocket;
  const peer = { verified: socket.authorized, commonName: socket.getPeerCertificate()?.subject?.CN as string | undefined };
  return authenticateProxy(peer, req.headers, requestHeader);
}

export class VirtApiServer {
  readonly #api: VirtApiServerApi;
  readonly #informers: VirtApiServerOptions['informers'];
  readonly #servingCertificate: () => { cert: Buffer; key: Buffer };
  readonly #handlerClientTls: () => ClientTls;
  readonly #log: Logger;
  readonly #uploadTokenKey: () => Buffer | undefined;
  readonly #now: () => Date;
  readonly #admission: AdmissionEnvironment;
  readonly #wss = new WebSocketServer({ noServer: true, handleProtocols: choosePlainProtocol });
  /** The front proxy's CA and names: aggregated requests are trusted only from a certificate it signed with an allowed CN. */
  #requestHeader: RequestHeaderConfig | undefined;
  #server: Server | undefined;
  #requestHeaderReload: NodeJS.Timeout | undefined;
  readonly #metrics: Registry | undefined;
  readonly #health: ReturnType<typeof healthEndpoints>;

  constructor(options: VirtApiServerOptions) {
    this.#metrics = options.metrics;
    this.#health = options.health;
    this.#api = options.api;
    this.#informers = options.informers;
    this.#servingCertificate = options.servingCertificate;
    this.#handlerClientTls = options.handlerClientTls;
    this.#log = options.log;
    this.#uploadTokenKey = options.uploadTokenKey;
    this.#now = options.now;
    const { clusterInstancetypes, instancetypes } = options.informers;
    this.#admission = {
      config: options.config,
      kubevirtServiceAccounts: new Set(KUBEVIRT_SERVICE_ACCOUNTS.map((sa) => serviceAccountUsername(options.namespace, sa))),
      newUUID: options.newUUID,
      now: () => apiTimestamp(options.now()),
      findInstancetype: (namespace, kind, name) => matched(kind, name, namespace, clusterInstancetypes, instancetypes)?.spec,
    };
  }

  /** Reads the requestheader configuration, then serves on the port; resolves once listening. */
  async start(port: number, host?: string): Promise<AddressInfo> {
    await this.#loadRequestHeader();
    const server = createServer(this.#tls(), (req, res) => this.#handleRequest(req, res));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#handleUpgrade(req, socket, head));
    this.#server = server;
    const reload = () => void this.#loadRequestHeader().then(() => server.setSecureContext(this.#tls()));
    this.#requestHeaderReload = setInterval(reload, REQUEST_HEADER_RELOAD_MS);
    this.#requestHeaderReload.unref();
    await new Promise<void>((resolve) => server.listen(port, host, resolve));
    this.#log.info('serving admission webhooks', { port });
    return server.address() as AddressInfo;
  }

  /** Serves a rotated certificate from now on, without a restart. */
  reloadServingCertificate(): void {
    this.#server?.setSecureContext(this.#tls());
    this.#log.info('serving certificate reloaded');
  }

  /** Stops serving and closes every connection. */
  async close(): Promise<void> {
    clearInterval(this.#requestHeaderReload);
    const server = this.#server;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  }

  #handleRequest(req: IncomingMessage, res: ServerResponse): void {
    if (req.method === 'GET' && req.url === '/readyz') {
      res.writeHead(200).end('ok');
      return;
    }
    if (req.method === 'GET' && req.url?.replace(/^\/+/, '/').startsWith('/healthz')) {
      respondWithHealth(this.#health, req.url, res);
      return;
    }
    const metrics = this.#metrics;
    if (req.method === 'GET' && metrics && req.url?.split('?')[0] === '/metrics') {
      void metrics.metrics().then(
        (text) => res.writeHead(200, { 'Content-Type': metrics.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
      return;
    }
    if (req.url?.startsWith('/apis/')) return this.#serveAggregated(req, res);
    if (req.method !== 'POST') {
      res.writeHead(405).end();
      return;
    }
    void readText(req).then((text) => this.#serveAdmission(req, res, text));
  }

  /**
   * console and vnc go to the virt-handler of the VMI's node over mutual TLS;
   * portforward connects from here to the VMI's address. Refusals are plain
   * HTTP answers with a Status body, before the WebSocket handshake.
   */
  #handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const auth = authenticate(req, this.#requestHeader);
    if ('error' in auth) return refuseUpgrade(socket, 401, statusError(401, 'Unauthorized', auth.error));
    if (!isWebSocketHandshake(req)) return refuseUpgrade(socket, 400, statusError(400, 'BadRequest', 'not a WebSocket handshake'));
    const url = new URL(req.url ?? '/', 'https://virt-api');
    const stream = STREAM.exec(url.pathname);
    const forward = PORT_FORWARD.exec(url.pathname);
    const refuse = (e: LifecycleError) => refuseUpgrade(socket, e.code, statusError(e.code, e.reason, e.message));
    const opened = stream
      ? this.#streamFromHandler(stream[1], stream[2], stream[3] as StreamKind, vncOptionsOf(url.searchParams))
      : forward
        ? this.#forwardToGuest(forward[1], forward[2] === 'virtualmachines', forward[3], forward[4], forward[5])
        : Promise.resolve<LifecycleError>({ code: 404, reason: 'NotFound', message: `no stream at ${url.pathname}` });
    // A client gone before the handshake leaves nothing open at the far end.
    socket.once(
      'close',
      () =>
        void opened.then(
          (o) => 'relay' in o && o.destroy(),
          () => undefined,
        ),
    );
    void opened.then(
      (o) => {
        if (!('relay' in o)) return refuse(o);
        if (socket.destroyed) return;
        this.#wss.handleUpgrade(req, socket, head, (client) => {
          o.relay(client);
          this.#log.info('stream opened', { path: url.pathname, user: auth.user.name });
        });
      },
      (error) => refuse(internalError(error)),
    );
  }

  #tls() {
    return {
      ...this.#servingCertificate(),
      // Client certificates are asked for but checked per request: the webhooks are called without one.
      requestCert: true,
      rejectUnauthorized: false,
      ...(this.#requestHeader ? { ca: this.#requestHeader.clientCA } : {}),
    };
  }

  async #loadRequestHeader(): Promise<void> {
    try {
      const map = await this.#api.readConfigMap('kube-system', 'extension-apiserver-authentication');
      this.#requestHeader = requestHeaderConfig(map.data ?? {});
    } catch (error) {
      const reason = (error as Error).message.split('\n')[0];
      this.#log.warning('cannot read the requestheader configuration; aggregated requests are refused', { error: reason });
    }
  }

  #serveAdmission(req: IncomingMessage, res: ServerResponse, text: string): void {
    if (req.url?.split('?')[0] === EVICTION_WEBHOOK_PATH) {
      void Promise.resolve()
        .then(() => this.#reviewEviction(JSON.parse(text) as AdmissionReview))
        .then(
          (answer) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer)),
          (error: Error) => {
            this.#log.error('bad admission request', { path: req.url, error: error.message });
            res.writeHead(400).end(error.message);
          },
        );
      return;
    }
    if (req.url?.split('?')[0] === DATAVOLUME_WEBHOOK_PATH) {
      void Promise.resolve()
        .then(() => reviewDataVolume(JSON.parse(text) as AdmissionReview, (q) => this.#api.canI(q)))
        .then(
          (answer) => {
            if (!answer.response?.allowed)
              this.#log.info('admission rejected', { path: req.url, reason: answer.response?.status?.message });
            res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
          },
          (error: Error) => {
            this.#log.error('bad admission request', { path: req.url, error: error.message });
            res.writeHead(400).end(error.message);
          },
        );
      return;
    }
    void Promise.resolve()
      .then(async () => {
        const body = JSON.parse(text) as AdmissionReview;
        const path = req.url?.split('?')[0] ?? '';
        let answer = review(path, body, this.#admission);
        if (path === MIGRATION_CREATE_PATH && answer.response?.allowed) answer = await this.#reviewMigrationVmi(body, answer);
        if (answer.response && !answer.response.allowed) {
          this.#log.info('admission rejected', {
            path: req.url,
            kind: body.request?.kind?.kind,
            name: (body.request?.object as KubernetesObject | undefined)?.metadata?.name,
            causes: answer.response.status?.details?.causes?.length,
            reason: answer.response.status?.message,
          });
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
      })
      .catch((error: Error) => {
        this.#log.error('bad admission request', { path: req.url, error: error.message });
        res.writeHead(400).end(error.message);
      });
  }

  /** A new migration's VMI, read now: the checks of ./migration-admission.ts. */
  async #reviewMigrationVmi(body: AdmissionReview, allowed: AdmissionReview): Promise<AdmissionReview> {
    const migration = body.request?.object as VirtualMachineInstanceMigration;
    const name = migration.spec?.vmiName ?? '';
    const namespace = body.request?.namespace ?? '';
    const refusal = migrationRefusal(namespace, name, await this.#getVmi(namespace, name));
    if (!refusal) return allowed;
    return {
      ...allowed,
      response: { uid: allowed.response!.uid, allowed: false, status: { message: refusal, code: 400, reason: 'BadRequest' } },
    };
  }

  /** A launcher pod's eviction: let through, refused, or refused once its VMI is marked for evacuation (./eviction.ts). */
  async #reviewEviction(body: AdmissionReview): Promise<AdmissionReview> {
    const request = body.request;
    const respond = (allowed: boolean, message?: string): AdmissionReview => ({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid: request?.uid ?? '', allowed, ...(message !== undefined ? { status: { message, code: 429 } } : {}) },
    });
    const namespace = request?.namespace ?? '';
    const pod = request?.name ? await this.#api.getPod(namespace, request.name).catch(() => undefined) : undefined;
    const vmiName = pod && launcherVmiName(pod);
    if (!pod || !vmiName) return respond(true);
    let vmi: VirtualMachineInstance;
    try {
      vmi = await this.#api.getVmi(namespace, vmiName);
    } catch (error) {
      return respond(false, `kubevirt failed getting the vmi: ${apiErrorMessage(error)}`);
    }
    const decision = decideEviction(pod, vmi, this.#admission.config());
    if ('allow' in decision) return respond(true);
    if ('deny' in decision) return respond(false, decision.deny);
    const dryRun = evictionDryRun(request?.dryRun, request?.object);
    try {
      await this.#api.patchVmi(
        namespace,
        vmiName,
        evacuationPatch(vmi, decision.mark.nodeName, request?.object),
        dryRun ? 'All' : undefined,
      );
    } catch (error) {
      return respond(false, `kubevirt failed marking the vmi for eviction: ${apiErrorMessage(error)}`);
    }
    this.#log.object({ kind: 'VirtualMachineInstance', metadata: vmi.metadata }).info('marked for evacuation by an eviction', {
      node: decision.mark.nodeName,
      dryRun,
    });
    return respond(false, decision.mark.message);
  }

  #serveAggregated(req: IncomingMessage, res: ServerResponse): void {
    const auth = authenticate(req, this.#requestHeader);
    if ('error' in auth) {
      this.#log.warning('aggregated request refused', { path: req.url, reason: auth.error });
      json(res, 401, statusError(401, 'Unauthorized', auth.error));
      return;
    }
    const user = auth.user.name;
    const path = (req.url ?? '').split('?')[0].replace(/\/$/, '');
    if (req.method === 'GET' && path === `/apis/${SUBRESOURCE_GROUP}`) return json(res, 200, apiGroup());
    if (req.method === 'GET' && path === GROUP_PATH) return json(res, 200, apiResourceList());
    if (req.method === 'GET' && path === `${GROUP_PATH}/version`) return json(res, 200, versionInfo());
    if (req.method === 'GET' && path === UPLOAD_GROUP_PATH) return json(res, 200, uploadApiGroup());
    if (req.method === 'GET' && path === `${UPLOAD_GROUP_PATH}/v1beta1`) return json(res, 200, uploadApiResources());
    const respond = (a: Answer) => {
      if ('reason' in a) json(res, a.code, statusError(a.code, a.reason, a.message));
      else if (a.body) json(res, a.code, a.body);
      else res.writeHead(a.code).end();
    };
    const body = () => readText(req);
    const routes: [string, RegExp, (match: string[]) => Answer | Promise<Answer>][] = [
      ['PUT', VM_ACTION, ([, ns, name, act]) => body().then((text) => this.#vmLifecycle(ns, name, act as VmAction, optionsOf(text), user))],
      ['PUT', VMI_ACTION, ([, ns, name, action]) => body().then((text) => this.#vmiLifecycle(ns, name, action as VmiAction, user, text))],
      ['GET', GUEST_INFO, ([, ns, name, kind]) => this.#readGuestInfo(ns, name, kind as GuestInfoKind)],
      ['GET', EXPAND_SPEC, ([, ns, name]) => this.#expandStoredVm(ns, name)],
      ['PUT', EXPAND_VM_SPEC, ([, ns]) => body().then((text) => this.#expandGivenVm(ns, text))],
      ['PUT', MIGRATE, ([, ns, name]) => body().then((text) => this.#migrateVm(ns, name, optionsOf(text), user))],
      [
        'POST',
        UPLOAD_TOKEN_REQUESTS,
        ([, ns]) => body().then((text) => answerUploadTokenRequest(ns, text, this.#uploadTokenKey(), this.#now().getTime())),
      ],
    ];
    for (const [method, pattern, serve] of routes) {
      const match = req.method === method ? pattern.exec(path) : null;
      if (!match) continue;
      void Promise.resolve(match)
        .then(serve)
        .then(respond, (error) => respond(internalError(error)));
      return;
    }
    json(res, 404, statusError(404, 'NotFound', `${req.method} ${path} is not served by virt-api`));
  }

  /** A VM with its instance type and preference written into its template. */
  #expanded(vm: VirtualMachine, errorCode: 400 | 500): Answer {
    const namespace = vm.metadata.namespace;
    type Matcher = { kind?: string; name?: string } | undefined;
    const lookup = <T>(ref: Matcher, cluster: InformerCache<T>, namespaced: InformerCache<T>, kind: string) => {
      if (!ref?.name) return { found: undefined };
      const found = matched(ref.kind, ref.name, namespace, cluster, namespaced);
      return found ? { found } : { missing: `${(ref.kind ?? kind).toLowerCase()}.instancetype.kubevirt.io "${ref.name}" not found` };
    };
    const reason = errorCode === 400 ? 'BadRequest' : 'InternalError';
    const fail = (message: string): LifecycleError => ({ code: errorCode, reason, message });
    const { clusterInstancetypes, instancetypes, clusterPreferences, preferences } = this.#informers;
    const instancetype = lookup(vm.spec?.instancetype, clusterInstancetypes, instancetypes, 'VirtualMachineClusterInstancetype');
    if ('missing' in instancetype) return fail(instancetype.missing!);
    const preference = lookup(vm.spec?.preference, clusterPreferences, preferences, 'VirtualMachineClusterPreference');
    if ('missing' in preference) return fail(preference.missing!);
    const result = expandVm(vm, instancetype.found?.spec, preference.found?.spec);
    if ('causes' in result) return fail(result.causes.map((c) => c.message).join(', '));
    return { code: 200, body: result.vm };
  }

  async #expandStoredVm(namespace: string, name: string): Promise<Answer> {
    const vm = await this.#getVm(namespace, name);
    return vm ? this.#expanded(vm, 500) : notFound('virtualmachine.kubevirt.io', name);
  }

  #expandGivenVm(namespace: string, text: string): Answer {
    let vm: VirtualMachine;
    try {
      vm = JSON.parse(text);
    } catch (error) {
      return { code: 400, reason: 'BadRequest', message: `Can not unmarshal Request body to struct, error: ${(error as Error).message}` };
    }
    if (vm?.kind !== 'VirtualMachine' || !vm.spec?.template) {
      return { code: 400, reason: 'BadRequest', message: 'Object is not a valid VirtualMachine' };
    }
    if (vm.metadata?.namespace && vm.metadata.namespace !== namespace) {
      return { code: 400, reason: 'BadRequest', message: `VM namespace must be empty or ${namespace}` };
    }
    return this.#expanded({ ...vm, metadata: { ...vm.metadata, namespace } }, 400);
  }

  async #migrateVm(namespace: string, name: string, options: Record<string, unknown>, user: string): Promise<Answer> {
    const vm = await this.#getVm(namespace, name);
    if (!vm) return notFound('virtualmachine.kubevirt.io', name);
    const vmi = await this.#getVmi(namespace, name);
    if (!vmi) return notFound('virtualmachineinstance.kubevirt.io', name);
    const refused = checkMigrate(name, vmi);
    if (refused) return refused;
    await this.#api.createMigration(
      namespace,
      {
        apiVersion: 'kubevirt.io/v1',
        kind: 'VirtualMachineInstanceMigration',
        metadata: { generateName: 'kubevirt-migrate-vm-' },
        spec: { vmiName: name, addedNodeSelector: options.addedNodeSelector as Record<string, string> | undefined },
      },
      dryRunOf(options),
    );
    this.#log.object({ kind: 'VirtualMachine', metadata: vm.metadata }).info('migration requested', { user });
    return { code: 202 };
  }

  async #streamFromHandler(namespace: string, name: string, kind: StreamKind, vnc: VncOptions): Promise<Opened> {
    const vmi = await this.#getVmi(namespace, name);
    if (!vmi) return notFound('virtualmachineinstance.kubevirt.io', name);
    const refused = (kind === 'console' ? checkConsole(vmi) : checkVnc(vmi)) ?? checkOnNode(vmi);
    if (refused) return refused;
    const address = await this.#api.handlerAddress(vmi.status!.nodeName!);
    const tls = this.#handlerClientTls();
    const options: ClientOptions & { servername: string } = { ...tls, servername: 'virt-handler', handshakeTimeout: 10_000 };
    const url = `wss://${address}:${HANDLER_PORT}${streamPath(namespace, name, kind, vnc)}`;
    const handler = new WebSocket(url, [PLAIN_STREAM_PROTOCOL], options);
    return new Promise((resolve) => {
      handler.once('open', () => {
        handler.pause();
        resolve({ relay: (client) => relaySockets(client, handler), destroy: () => handler.terminate() });
      });
      handler.once('unexpected-response', (_request, response) => {
        void readText(response).then((text) => {
          const code = response.statusCode ?? 500;
          const message = `virt-handler refused the ${kind} connection: ${statusMessage(text) ?? text}`;
          resolve({ code, reason: code < 500 ? 'BadRequest' : 'InternalError', message });
        });
      });
      handler.once('error', (error) => {
        const message = `cannot reach virt-handler on node ${vmi.status!.nodeName}: ${error.message}`;
        resolve({ code: 500, reason: 'InternalError', message });
      });
    });
  }

  async #forwardToGuest(namespace: string, ofVm: boolean, name: string, port: string, protocol?: string): Promise<Opened> {
    if (ofVm) {
      const vm = await this.#getVm(namespace, name);
      if (!vm) return notFound('virtualmachine.kubevirt.io', name);
      const notStarted = checkVmStarted(vm);
      if (notStarted) return notStarted;
    }
    const vmi = await this.#getVmi(namespace, name);
    if (!vmi) return notFound('virtualmachineinstance.kubevirt.io', name);
    const target = portForwardTarget(vmi, port, protocol);
    if ('code' in target) return target;
    return new Promise((resolve) => {
      const tcp: Socket = connectTcp(target);
      tcp.once('connect', () => resolve({ relay: (client) => relayStream(client, tcp, 10_000), destroy: () => tcp.destroy() }));
      tcp.once('error', (error) => resolve({ code: 500, reason: 'InternalError', message: `dialing VM: ${error.message}` }));
    });
  }

  /** A VM, or undefined when there is none. */
  #getVm(namespace: string, name: string): Promise<VirtualMachine | undefined> {
    return this.#api.getVm(namespace, name).catch(ignoreNotFound);
  }

  #getVmi(namespace: string, name: string): Promise<VirtualMachineInstance | undefined> {
    return this.#api.getVmi(namespace, name).catch(ignoreNotFound);
  }

  /** The guest agent's information about a VMI, from the virt-handler of its node. */
  async #readGuestInfo(namespace: string, name: string, kind: GuestInfoKind): Promise<Answer> {
    const vmi = await this.#getVmi(namespace, name);
    if (!vmi) return notFound('virtualmachineinstance.kubevirt.io', name);
    const refused = checkGuestInfo(vmi);
    if (refused) return refused;
    const address = await this.#api.handlerAddress(vmi.status!.nodeName!);
    const answer = await callHandler('GET', address, guestInfoPath(namespace, name), this.#handlerClientTls());
    if (answer.status !== 200) return { code: 500, reason: 'InternalError', message: `reading the guest agent failed: ${answer.body}` };
    return { code: 200, body: guestInfoAnswer(kind, JSON.parse(answer.body)) };
  }

  /** pause, unpause, softreboot or reset a VMI through the virt-handler of its node. */
  async #vmiLifecycle(namespace: string, name: string, action: VmiAction, user: string, body: string): Promise<Answer> {
    const vmi = await this.#getVmi(namespace, name);
    if (!vmi) return notFound('virtualmachineinstance.kubevirt.io', name);
    const refused = checkVmiAction(vmi, action);
    if (refused) return refused;
    const address = await this.#api.handlerAddress(vmi.status!.nodeName!);
    // freeze's body (its unfreezeTimeout) goes on to virt-handler, which reads it as upstream's does.
    const forwarded = action === 'freeze' ? body : undefined;
    const answer = await callHandler('PUT', address, actionPath(namespace, name, action), this.#handlerClientTls(), forwarded);
    if (answer.status !== 200 && (action === 'freeze' || action === 'unfreeze'))
      return handlerRefusal(answer.status, STATUS_CODES[answer.status] ?? '', answer.body);
    if (answer.status !== 200) return { code: 500, reason: 'InternalError', message: `${action} failed: ${answer.body}` };
    this.#log.object({ kind: 'VirtualMachineInstance', metadata: vmi.metadata }).info(`${action} done`, { user });
    return { code: 200 };
  }

  /** start, stop or restart a VM; 202 when accepted. */
  async #vmLifecycle(namespace: string, name: string, action: VmAction, body: Record<string, unknown>, user: string): Promise<Answer> {
    const vm = await this.#getVm(namespace, name);
    if (!vm) return notFound('virtualmachine.kubevirt.io', name);
    const vmi = await this.#getVmi(namespace, name);
    const result =
      action === 'start'
        ? planStart(vm, vmi, { paused: body.paused === true })
        : action === 'stop'
          ? planStop(vm, vmi, { gracePeriod: typeof body.gracePeriod === 'number' ? body.gracePeriod : undefined })
          : planRestart(vm, vmi, { gracePeriodSeconds: typeof body.gracePeriodSeconds === 'number' ? body.gracePeriodSeconds : undefined });
    if ('error' in result) return result.error;
    const dryRun = dryRunOf(body);
    try {
      if (result.plan.vmi) await this.#api.patchVmi(namespace, name, result.plan.vmi, dryRun);
      if (result.plan.vm) await this.#api.patchVm(namespace, name, result.plan.vm, dryRun);
      if (result.plan.vmStatus) await this.#api.patchVmStatus(namespace, name, result.plan.vmStatus, dryRun);
      if (result.plan.forceDeletePodsOf) {
        const pods = await this.#api.deleteLauncherPods(namespace, result.plan.forceDeletePodsOf, 0, dryRun);
        this.#log.object({ kind: 'VirtualMachine', metadata: vm.metadata }).info('force restart: launcher pods deleted', { pods });
      }
    } catch (error) {
      // A failed test operation means someone else changed the VM meanwhile.
      if ((error as { code?: number }).code === 422) return conflict(name, apiErrorMessage(error)).error;
      throw error;
    }
    this.#log.object({ kind: 'VirtualMachine', metadata: vm.metadata }).info(`${action} accepted`, { user, dryRun: dryRun !== undefined });
    return { code: 202 };
  }
}

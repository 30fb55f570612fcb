// AdmissionReview v1 handlers for every webhook path virt-api serves, as
// upstream names them. Pure: a review and the cluster config in, a review out.
import jsonpatch, { type Operation } from 'fast-json-patch';
import type { StatusCause } from '../api/causes.ts';
import type { ClusterConfig } from '../api/cluster-config.ts';
import type {
  MigrationPolicy,
  VirtualMachine,
  VirtualMachineInstance,
  VirtualMachineInstanceMigration,
  VirtualMachineInstanceReplicaSet,
  VirtualMachineInstancetype,
  VirtualMachineInstancetypeSpec,
  VirtualMachinePool,
  VirtualMachinePreference,
  VirtualMachineInstancePreset,
} from '../api/types.ts';
import { defaultNewVmi, DefaultingError, type DefaultingContext } from '../api/defaults/vmi.ts';
import { defaultVm } from '../api/defaults/vm.ts';
import { MIGRATION_FINALIZER, VMI_NAME_LABEL } from '../api/constants.ts';
import {
  validateInstancetype,
  validateMigrationCreate,
  validateMigrationPolicy,
  validateMigrationUpdate,
  validatePool,
  validatePreference,
  validatePreset,
  validateReplicaSet,
  validateVm,
  validateVmiCreate,
  validateVmiUpdate,
  type RequestContext,
} from '../api/validation/objects.ts';
import { validateSchema } from '../api/validation/schema.ts';
import { jsonEqual } from '../api/json-equal.ts';
import { EVICTION_WEBHOOK_PATH } from './eviction.ts';

export interface AdmissionRequest {
  uid: string;
  kind?: { group: string; version: string; kind: string };
  resource?: { group: string; version: string; resource: string };
  subResource?: string;
  name?: string;
  namespace?: string;
  operation: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
  userInfo?: { username?: string; groups?: string[]; extra?: Record<string, string[]> };
  object?: unknown;
  oldObject?: unknown;
  dryRun?: boolean;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: {
    message: string;
    reason?: string;
    code: number;
    details?: { causes: StatusCause[] };
  };
  patch?: string;
  patchType?: 'JSONPatch';
  warnings?: string[];
}

export interface AdmissionReview {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  request?: AdmissionRequest;
  response?: AdmissionResponse;
}

export interface AdmissionEnvironment extends DefaultingContext {
  config: () => ClusterConfig;
  /** Usernames of kubevirt-ts's own service accounts (system:serviceaccount:<ns>:<name>). */
  kubevirtServiceAccounts: ReadonlySet<string>;
  /** The spec of the instance type a VM references, if it exists (from an informer cache). */
  findInstancetype?: (namespace: string | undefined, kind: string | undefined, name: string) => VirtualMachineInstancetypeSpec | undefined;
}

type Handler = (request: AdmissionRequest, env: AdmissionEnvironment) => Omit<AdmissionResponse, 'uid'>;

const allow = (): Omit<AdmissionResponse, 'uid'> => ({ allowed: true });

/** upstream's ToAdmissionResponse: 422 with every cause, their messages joined. */
export function reject(causes: StatusCause[]): Omit<AdmissionResponse, 'uid'> {
  return {
    allowed: false,
    status: {
      message: causes.map((c) => c.message).join(', '),
      reason: 'Invalid',
      code: 422,
      details: { causes },
    },
  };
}

function errorResponse(message: string, code = 400): Omit<AdmissionResponse, 'uid'> {
  return { allowed: false, status: { message, code } };
}

const verdict = (causes: StatusCause[]) => (causes.length ? reject(causes) : allow());

/** The patch that turns the object as the request carries it into `after`. */
function patchFrom(request: AdmissionRequest, after: unknown): Omit<AdmissionResponse, 'uid'> {
  const ops: Operation[] = jsonpatch.compare(request.object as object, after as object);
  if (ops.length === 0) return allow();
  return { allowed: true, patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(ops)).toString('base64') };
}

const requestContext = (request: AdmissionRequest, env: AdmissionEnvironment): RequestContext => ({
  isKubeVirtServiceAccount: env.kubevirtServiceAccounts.has(request.userInfo?.username ?? ''),
});

/** The object with its metadata, which kube-apiserver always sends; left as it came, since patches are made against that. */
function asObject<T>(value: unknown, missing: string): T {
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new AdmissionInputError(missing);
  return ((value as { metadata?: unknown }).metadata == null ? { ...value, metadata: {} } : value) as T;
}

const object = <T>(request: AdmissionRequest) => asObject<T>(request.object, 'the request carries no object');
const oldObject = <T>(request: AdmissionRequest) => asObject<T>(request.oldObject, 'the request carries no old object');

class AdmissionInputError extends Error {}

/** Checks the object against its kind's schema before `handler` sees it, as upstream's ValidateSchema does. */
function typed(kind: string, handler: Handler): Handler {
  return (request, env) => {
    const causes = validateSchema(kind, object(request));
    return causes.length ? reject(causes) : handler(request, env);
  };
}

const HANDLERS: Record<string, Handler> = {
  '/virtualmachineinstances-mutate': typed('VirtualMachineInstance', (request, env) => {
    const vmi = object<VirtualMachineInstance>(request);
    if (request.operation === 'CREATE') {
      const defaulted = defaultNewVmi(vmi, env.config(), env);
      return patchFrom(request, defaulted);
    }
    if (request.operation === 'UPDATE' && !requestContext(request, env).isKubeVirtServiceAccount) {
      const old = oldObject<VirtualMachineInstance>(request);
      if (!jsonEqual(old.status ?? {}, vmi.status ?? {})) {
        // Status belongs to kubevirt-ts: other writers' changes are put back.
        return patchFrom(request, { ...vmi, status: old.status ?? {} });
      }
    }
    return allow();
  }),
  '/virtualmachines-mutate': typed('VirtualMachine', (request, env) => {
    const vm = object<VirtualMachine>(request);
    return patchFrom(request, defaultVm(vm, env.config(), env, request.operation === 'CREATE' ? 'CREATE' : 'UPDATE'));
  }),
  '/migration-mutate-create': typed('VirtualMachineInstanceMigration', (request) => {
    const migration = object<VirtualMachineInstanceMigration>(request);
    const out = structuredClone(migration);
    out.metadata.labels = { ...out.metadata.labels, [VMI_NAME_LABEL]: migration.spec?.vmiName ?? '' };
    if (!out.metadata.finalizers?.includes(MIGRATION_FINALIZER))
      out.metadata.finalizers = [...(out.metadata.finalizers ?? []), MIGRATION_FINALIZER];
    return patchFrom(request, out);
  }),
  '/virtualmachineinstances-validate-create': typed('VirtualMachineInstance', (request, env) =>
    verdict(validateVmiCreate(object(request), env.config(), requestContext(request, env))),
  ),
  '/virtualmachineinstances-validate-update': typed('VirtualMachineInstance', (request, env) => {
    const old = oldObject<VirtualMachineInstance>(request);
    return verdict(validateVmiUpdate(old, object<VirtualMachineInstance>(request), requestContext(request, env)));
  }),
  '/virtualmachines-validate': typed('VirtualMachine', (request, env) => {
    const vm = object<VirtualMachine>(request);
    const ref = vm.spec?.instancetype;
    const instancetype = ref?.name ? env.findInstancetype?.(vm.metadata.namespace, ref.kind, ref.name) : undefined;
    return verdict(validateVm(vm, env.config(), requestContext(request, env), instancetype));
  }),
  '/virtualmachinereplicaset-validate': typed('VirtualMachineInstanceReplicaSet', (request, env) =>
    verdict(validateReplicaSet(object<VirtualMachineInstanceReplicaSet>(request), env.config())),
  ),
  '/virtualmachinepool-validate': typed('VirtualMachinePool', (request, env) =>
    verdict(validatePool(object<VirtualMachinePool>(request), env.config(), requestContext(request, env))),
  ),
  '/migration-validate-create': typed('VirtualMachineInstanceMigration', (request, env) =>
    verdict(validateMigrationCreate(object(request), env.config(), requestContext(request, env))),
  ),
  '/migration-validate-update': typed('VirtualMachineInstanceMigration', (request) =>
    verdict(validateMigrationUpdate(oldObject(request), object(request))),
  ),
  '/virtualmachineinstancetypes-validate': typed('VirtualMachineInstancetype', (request) =>
    verdict(validateInstancetype(object<VirtualMachineInstancetype>(request))),
  ),
  '/virtualmachineclusterinstancetypes-validate': typed('VirtualMachineClusterInstancetype', (request) =>
    verdict(validateInstancetype(object<VirtualMachineInstancetype>(request))),
  ),
  '/virtualmachinepreferences-validate': typed('VirtualMachinePreference', (request) =>
    verdict(validatePreference(object<VirtualMachinePreference>(request))),
  ),
  '/virtualmachineclusterpreferences-validate': typed('VirtualMachineClusterPreference', (request) =>
    verdict(validatePreference(object<VirtualMachinePreference>(request))),
  ),
  // The deprecated presets are still checked as upstream checks them; kube-apiserver adds the deprecation warning.
  '/vmipreset-validate': typed('VirtualMachineInstancePreset', (request) =>
    verdict(validatePreset(object<VirtualMachineInstancePreset>(request))),
  ),
  '/migration-policy-validate-create': typed('MigrationPolicy', (request) =>
    verdict(validateMigrationPolicy(object<MigrationPolicy>(request))),
  ),
};

/** Every path served, the pure ones here and those with API calls in ./server.ts (DataVolumes' is registered by the CDI objects). */
export const WEBHOOK_PATHS = [...Object.keys(HANDLERS), EVICTION_WEBHOOK_PATH];

/** Answers one AdmissionReview posted to `path`. */
export function review(path: string, body: AdmissionReview, env: AdmissionEnvironment): AdmissionReview {
  const request = body.request;
  const uid = request?.uid ?? '';
  const respond = (response: Omit<AdmissionResponse, 'uid'>): AdmissionReview => ({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid, ...response },
  });
  if (!request) return respond(errorResponse('the AdmissionReview has no request'));
  const handler = HANDLERS[path];
  if (!handler) return respond(errorResponse(`no webhook is served at ${path}`, 404));
  try {
    return respond(handler(request, env));
  } catch (error) {
    if (error instanceof DefaultingError || error instanceof AdmissionInputError) return respond(errorResponse(error.message));
    throw error;
  }
}

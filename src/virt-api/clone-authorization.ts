// Who may clone a claim into a DataVolume, checked when the DataVolume is
// created, as CDI's webhook checks it: within a namespace anyone who may
// create the DataVolume; across namespaces only a user who may create
// `datavolumes/source` (or pods) in the source's namespace, asked of
// kube-apiserver as a SubjectAccessReview for that user.
import type { AdmissionRequest, AdmissionResponse, AdmissionReview } from './admission.ts';

export interface AccessQuestion {
  user: string;
  groups: string[];
  extra: Record<string, string[]>;
  namespace: string;
  group: string;
  resource: string;
  subresource?: string;
  verb: string;
}

export type CanI = (question: AccessQuestion) => Promise<boolean>;

interface DataVolumeObject {
  metadata?: { namespace?: string };
  spec?: { source?: { pvc?: { name?: string; namespace?: string } } };
}

export async function reviewDataVolume(body: AdmissionReview, canI: CanI): Promise<AdmissionReview> {
  const request = body.request as AdmissionRequest;
  const respond = (response: Omit<AdmissionResponse, 'uid'>): AdmissionReview => ({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid: request.uid, ...response },
  });
  const dv = (request.object ?? {}) as DataVolumeObject & { metadata?: { namespace?: string } };
  const source = dv.spec?.source?.pvc;
  const targetNamespace = dv.metadata?.namespace ?? (request as { namespace?: string }).namespace;
  if (request.operation !== 'CREATE' || !source?.namespace || source.namespace === targetNamespace) return respond({ allowed: true });
  const who = {
    user: request.userInfo?.username ?? '',
    groups: request.userInfo?.groups ?? [],
    extra: request.userInfo?.extra ?? {},
    namespace: source.namespace,
  };
  const allowed =
    (await canI({ ...who, group: 'cdi.kubevirt.io', resource: 'datavolumes', subresource: 'source', verb: 'create' })) ||
    (await canI({ ...who, group: '', resource: 'pods', verb: 'create' }));
  if (allowed) return respond({ allowed: true });
  return respond({
    allowed: false,
    status: {
      code: 403,
      reason: 'Forbidden',
      message: `User ${who.user} has insufficient permissions in clone source namespace ${source.namespace}`,
    },
  });
}

// The UploadTokenRequest API (upload.cdi.kubevirt.io/v1beta1), which CDI
// serves and virtctl image-upload calls: kube-apiserver has already authorized
// the user to create one in the namespace; the answer is a token the upload
// proxy accepts for that claim alone, for a few minutes.
import { UPLOAD_GROUP } from '../contract/cdi.ts';
import { issueUploadToken, UPLOAD_TOKEN_TTL_MS } from '../contract/upload-token.ts';
import { statusError } from './aggregation.ts';

const VERSION = 'v1beta1';
export const UPLOAD_GROUP_PATH = `/apis/${UPLOAD_GROUP}`;
export const UPLOAD_TOKEN_REQUESTS = new RegExp(`^/apis/${UPLOAD_GROUP}/${VERSION}/namespaces/([^/]+)/uploadtokenrequests$`);

export function uploadApiGroup() {
  const version = { groupVersion: `${UPLOAD_GROUP}/${VERSION}`, version: VERSION };
  return { kind: 'APIGroup', apiVersion: 'v1', name: UPLOAD_GROUP, versions: [version], preferredVersion: version };
}

export function uploadApiResources() {
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: `${UPLOAD_GROUP}/${VERSION}`,
    resources: [
      { name: 'uploadtokenrequests', singularName: 'uploadtokenrequest', namespaced: true, kind: 'UploadTokenRequest', verbs: ['create'] },
    ],
  };
}

interface UploadTokenRequest {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string };
  spec?: { pvcName?: string };
}

/** The created UploadTokenRequest with its token, or the error to answer. */
export function answerUploadTokenRequest(
  namespace: string,
  text: string,
  key: Buffer | undefined,
  nowMs: number,
): { code: number; body: object } {
  if (!key)
    return {
      code: 503,
      body: statusError(503, 'ServiceUnavailable', 'uploads are not served: kubevirt-ts does not serve DataVolumes here'),
    };
  let request: UploadTokenRequest;
  try {
    request = JSON.parse(text) as UploadTokenRequest;
  } catch {
    return { code: 400, body: statusError(400, 'BadRequest', 'the body is not an UploadTokenRequest (JSON)') };
  }
  const pvcName = request.spec?.pvcName;
  if (!pvcName) return { code: 422, body: statusError(422, 'Invalid', 'spec.pvcName: Required value: the claim to upload into') };
  const token = issueUploadToken(key, { operation: 'Upload', namespace, name: pvcName, expires: nowMs + UPLOAD_TOKEN_TTL_MS });
  return {
    code: 201,
    body: {
      apiVersion: `${UPLOAD_GROUP}/${VERSION}`,
      kind: 'UploadTokenRequest',
      metadata: { ...request.metadata, namespace },
      spec: { pvcName },
      status: { token },
    },
  };
}

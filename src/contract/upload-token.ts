// The upload token: virt-api issues it (UploadTokenRequest) to a user kube-apiserver
// let create one, and the upload proxy takes it as proof, for five minutes, that the
// bearer may upload into that one claim. Signed with a key both share (a Secret).
import { createHmac, timingSafeEqual } from 'node:crypto';

export const UPLOAD_TOKEN_TTL_MS = 5 * 60 * 1000;
/** The Secret (in the install namespace) holding the signing key, and where the components mount it. */
export const UPLOAD_TOKEN_SECRET = 'kubevirt-cdi-upload-token-key';
export const UPLOAD_TOKEN_KEY_FILE = 'key';

export interface UploadClaims {
  operation: 'Upload';
  namespace: string;
  name: string;
  /** Expiry, ms since the epoch. */
  expires: number;
}

const encode = (data: string | Buffer) => Buffer.from(data).toString('base64url');
const sign = (key: Buffer, payload: string) => createHmac('sha256', key).update(payload).digest();

export function issueUploadToken(key: Buffer, claims: UploadClaims): string {
  const payload = encode(JSON.stringify(claims));
  return `${payload}.${encode(sign(key, payload))}`;
}

/** The token's claims, or why it is refused. */
export function verifyUploadToken(key: Buffer, token: string, nowMs: number): UploadClaims | { error: string } {
  const [payload, signature, extra] = token.split('.');
  if (!payload || !signature || extra !== undefined) return { error: 'malformed token' };
  const given = Buffer.from(signature, 'base64url');
  const expected = sign(key, payload);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { error: 'invalid token signature' };
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as UploadClaims;
  if (claims.operation !== 'Upload') return { error: 'token is not for an upload' };
  if (claims.expires < nowMs) return { error: 'token expired' };
  return claims;
}

// virt-api trusts X-Remote-* headers only from the front proxy: a verified
// certificate from the requestheader CA with an allowed common name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { authenticateProxy, requestHeaderConfig } from '../../src/virt-api/aggregation.ts';

const config = requestHeaderConfig({
  'requestheader-client-ca-file': '-----BEGIN CERTIFICATE-----\n...',
  'requestheader-allowed-names': '["front-proxy-client"]',
  'requestheader-username-headers': '["X-Remote-User"]',
  'requestheader-group-headers': '["X-Remote-Group"]',
  'requestheader-extra-headers-prefix': '["X-Remote-Extra-"]',
});
const headers = { 'x-remote-user': 'alice', 'x-remote-group': ['dev', 'system:authenticated'], 'x-remote-extra-scopes': 'a' };

test("the front proxy's certificate with an allowed CN is trusted, and the user read from the headers", () => {
  assert.deepEqual(authenticateProxy({ verified: true, commonName: 'front-proxy-client' }, headers, config), {
    user: { name: 'alice', groups: ['dev', 'system:authenticated'], extra: { scopes: ['a'] } },
  });
});

test('another CN from the same CA cannot impersonate anyone', () => {
  const result = authenticateProxy({ verified: true, commonName: 'kubelet' }, headers, config);
  assert.match('error' in result ? result.error : '', /common name "kubelet" is not one of the allowed/);
});

test('no verified certificate, no configuration, or no user: refused', () => {
  assert.ok('error' in authenticateProxy({ verified: false, commonName: 'front-proxy-client' }, headers, config));
  assert.ok('error' in authenticateProxy({ verified: true, commonName: 'front-proxy-client' }, headers, undefined));
  assert.ok('error' in authenticateProxy({ verified: true, commonName: 'front-proxy-client' }, {}, config));
});

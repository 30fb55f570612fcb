// The web console's pure parts: what its server forwards to kube-apiserver
// (API paths and a few headers only, the token from the WebSocket
// subprotocol), how a refused stream is told to the page, and the page's VM
// rows and create-form manifest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bearerFromProtocols, forwardedHeaders, isApiPath, isStreamPath, refusalClose } from '../../src/console/proxy.ts';
import { bearerProtocol, checkCreateForm, describeError, streamRefusal, vmManifest, vmRows } from '../../src/console/web/model.ts';

test('only API paths are forwarded, and only the console and vnc streams relayed', () => {
  for (const path of ['/api/v1/namespaces', '/apis/kubevirt.io/v1/namespaces/a/virtualmachines', '/api']) assert.ok(isApiPath(path), path);
  for (const path of ['/', '/app.js', '/apisx', '/healthz', '/api/../app.js']) assert.ok(!isApiPath(path), path);
  assert.ok(isStreamPath('/apis/subresources.kubevirt.io/v1/namespaces/ns/virtualmachineinstances/vm-1/console'));
  assert.ok(isStreamPath('/apis/subresources.kubevirt.io/v1/namespaces/ns/virtualmachineinstances/vm-1/vnc'));
  assert.ok(!isStreamPath('/apis/subresources.kubevirt.io/v1/namespaces/ns/virtualmachineinstances/vm-1/portforward/22'));
  assert.ok(!isStreamPath('/api/v1/namespaces/ns/pods/p/exec'));
});

test("the user's own token and the API's headers go on; cookies, impersonation and the rest stay behind", () => {
  assert.deepEqual(
    forwardedHeaders({
      authorization: 'Bearer abc',
      'content-type': 'application/json',
      accept: 'application/json',
      cookie: 'a=b',
      'impersonate-user': 'admin',
      'x-remote-user': 'admin',
      'x-forwarded-for': '1.2.3.4',
    }),
    { authorization: 'Bearer abc', accept: 'application/json', 'content-type': 'application/json' },
  );
});

test('the bearer token rides in a WebSocket subprotocol, as the page offers it, and is never answered back', () => {
  const token = 'eyJhbGciOi.payload_with-chars+/=.sig';
  const offered = `plain.kubevirt.io, ${bearerProtocol(token)}`;
  assert.deepEqual(bearerFromProtocols(offered), { token, protocols: ['plain.kubevirt.io'] });
  assert.deepEqual(bearerFromProtocols('plain.kubevirt.io'), { token: undefined, protocols: ['plain.kubevirt.io'] });
  assert.equal(bearerFromProtocols('base64url.bearer.authorization.k8s.io.not*base64').token, undefined);
});

test("a refused stream closes with 4000 + the status and the API's message, which the page reads back", () => {
  const body = JSON.stringify({
    kind: 'Status',
    code: 403,
    message: `virtualmachineinstances.subresources.kubevirt.io "vm" is forbidden: User "u" cannot get resource "virtualmachineinstances/console"${' x'.repeat(80)}`,
  });
  const { closeCode, reason } = refusalClose(403, body);
  assert.equal(closeCode, 4403);
  assert.ok(Buffer.byteLength(reason) <= 123);
  assert.match(streamRefusal(closeCode, reason)!, /^403 Forbidden: virtualmachineinstances.subresources.kubevirt.io "vm" is forbidden/);
  assert.equal(streamRefusal(1006, ''), undefined);
  assert.equal(describeError(500, 'plain text'), '500: plain text');
});

test('VM rows: status, first address and node from the VMI, paused from its condition, by name', () => {
  const rows = vmRows(
    [
      { metadata: { name: 'b' }, status: { printableStatus: 'Running' } },
      { metadata: { name: 'a' }, status: { printableStatus: 'Stopped' } },
    ],
    [
      {
        metadata: { name: 'b' },
        status: {
          nodeName: 'node1',
          interfaces: [{ name: 'x' }, { ipAddress: '10.0.0.5' }],
          conditions: [{ type: 'Paused', status: 'True' }],
        },
      },
    ],
  );
  assert.deepEqual(rows, [
    { name: 'a', status: 'Stopped', ip: '', node: '', started: false, paused: false },
    { name: 'b', status: 'Running', ip: '10.0.0.5', node: 'node1', started: true, paused: true },
  ]);
});

test('the create form: checked field by field, and the VM it describes', () => {
  const form = {
    name: 'web',
    namespace: 'ns',
    diskSource: 'containerDisk' as const,
    image: 'registry:5000/kubevirt/cirros-container-disk-demo:devel',
    url: '',
    size: '',
    instancetype: 'u1.nano',
    preference: '',
    userData: '#!/bin/sh\necho hi\n',
    start: false,
  };
  assert.deepEqual(checkCreateForm(form), []);
  assert.deepEqual(
    checkCreateForm({ ...form, name: 'Web_1', image: ' ', instancetype: '' }).map((e) => e.split(':')[0]),
    ['metadata.name', 'spec.template.spec.volumes[0].containerDisk.image', 'spec.instancetype.name'],
  );
  const vm = vmManifest(form) as any;
  assert.equal(vm.spec.runStrategy, 'Halted');
  assert.deepEqual(vm.spec.instancetype, { kind: 'VirtualMachineClusterInstancetype', name: 'u1.nano' });
  assert.equal(vm.spec.preference, undefined);
  assert.deepEqual(
    vm.spec.template.spec.volumes.map((v: { name: string }) => v.name),
    ['rootdisk', 'cloudinitdisk'],
  );
  assert.equal(vm.spec.template.spec.volumes[1].cloudInitNoCloud.userData, form.userData);
  const bare = vmManifest({ ...form, userData: ' ', preference: 'cirros', start: true }) as any;
  assert.equal(bare.spec.runStrategy, 'Always');
  assert.deepEqual(bare.spec.preference, { kind: 'VirtualMachineClusterPreference', name: 'cirros' });
  assert.equal(bare.spec.template.spec.volumes.length, 1);
  assert.equal(bare.spec.dataVolumeTemplates, undefined);
});

test('the create form with a DataVolume: the URL and size checked, a template the VM owns as its root disk', () => {
  const form = {
    name: 'dv',
    namespace: 'ns',
    diskSource: 'dataVolume' as const,
    image: '',
    url: 'http://10.0.0.1:8080/disk.qcow2',
    size: '1Gi',
    instancetype: 'u1.nano',
    preference: '',
    userData: '',
    start: true,
  };
  assert.deepEqual(checkCreateForm(form), []);
  assert.deepEqual(
    checkCreateForm({ ...form, url: 'file:///etc/passwd', size: 'big' }).map((e) => e.split(':')[0]),
    ['spec.dataVolumeTemplates[0].spec.source.http.url', 'spec.dataVolumeTemplates[0].spec.storage.resources.requests.storage'],
  );
  const vm = vmManifest(form) as any;
  assert.deepEqual(vm.spec.dataVolumeTemplates, [
    {
      metadata: { name: 'dv-rootdisk' },
      spec: { source: { http: { url: form.url } }, storage: { resources: { requests: { storage: '1Gi' } } } },
    },
  ]);
  assert.deepEqual(vm.spec.template.spec.volumes, [{ name: 'rootdisk', dataVolume: { name: 'dv-rootdisk' } }]);
});

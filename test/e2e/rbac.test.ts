// The aggregated roles: kubevirt.io:view reads but cannot create or open a
// console, only in its namespace; kubevirt.io:edit can. Asked of the real RBAC
// authorizer with SubjectAccessReviews.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { kubectl, kubectlResult, deleteNamespace } from './kube.ts';

const [A, B] = ['kvts-rbac-a', 'kvts-rbac-b'];

before(() => {
  for (const ns of [A, B]) {
    deleteNamespace(ns, true);
    kubectl(['create', 'namespace', ns]);
  }
  kubectl(['create', 'rolebinding', 'viewer', '-n', A, '--clusterrole', 'kubevirt.io:view', '--user', 'viewer']);
  kubectl(['create', 'rolebinding', 'editor', '-n', A, '--clusterrole', 'kubevirt.io:edit', '--user', 'editor']);
  kubectl(['create', 'rolebinding', 'k8s-viewer', '-n', A, '--clusterrole', 'view', '--user', 'k8s-viewer']);
});
after(() => {
  for (const ns of [A, B]) deleteNamespace(ns);
});

/** Whether `user` may `verb` `resource[/subresource].group` in `namespace`. */
function can(user: string, verb: string, what: string, namespace: string): boolean {
  const [resourcePath, ...group] = what.split('.');
  const [resource, subresource] = resourcePath.split(/\/(.*)/);
  const review = {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SubjectAccessReview',
    spec: { user, resourceAttributes: { namespace, verb, group: group.join('.'), resource, subresource } },
  };
  return JSON.parse(kubectl(['create', '-o', 'json', '-f', '-'], JSON.stringify(review))).status.allowed === true;
}

/** Asks each [verb, resource, namespace, expected] of the authorizer for `user`. */
function expectAccess(user: string, cases: [string, string, string, boolean][]) {
  for (const [verb, what, ns, expected] of cases) assert.equal(can(user, verb, what, ns), expected, `${user} ${verb} ${what} in ${ns}`);
}

test('kubevirt.io:view reads VMs in its namespace, and nothing more', () => {
  expectAccess('viewer', [
    ['list', 'virtualmachines.kubevirt.io', A, true],
    ['get', 'virtualmachineinstances.kubevirt.io', A, true],
    ['get', 'virtualmachineinstances/guestosinfo.subresources.kubevirt.io', A, true],
    ['create', 'virtualmachines.kubevirt.io', A, false],
    ['delete', 'virtualmachineinstances.kubevirt.io', A, false],
    ['get', 'virtualmachineinstances/console.subresources.kubevirt.io', A, false],
    ['get', 'virtualmachineinstances/vnc.subresources.kubevirt.io', A, false],
    ['update', 'virtualmachines/start.subresources.kubevirt.io', A, false],
    ['list', 'virtualmachines.kubevirt.io', B, false],
  ]);
  assert.match(kubectlResult(['get', 'vm', '-n', B, '--as', 'viewer']).stderr, /forbidden/);
});

test('kubevirt.io:edit creates VMs, opens consoles and starts VMs in its namespace', () => {
  expectAccess('editor', [
    ['create', 'virtualmachines.kubevirt.io', A, true],
    ['get', 'virtualmachineinstances/console.subresources.kubevirt.io', A, true],
    ['get', 'virtualmachineinstances/vnc.subresources.kubevirt.io', A, true],
    ['update', 'virtualmachines/start.subresources.kubevirt.io', A, true],
    ['update', 'virtualmachineinstances/pause.subresources.kubevirt.io', A, true],
    ['create', 'virtualmachines.kubevirt.io', B, false],
  ]);
});

test("the roles aggregate into Kubernetes' own view role", () => {
  expectAccess('k8s-viewer', [
    ['list', 'virtualmachines.kubevirt.io', A, true],
    ['create', 'virtualmachines.kubevirt.io', A, false],
    ['get', 'virtualmachineinstances/console.subresources.kubevirt.io', A, false],
  ]);
});

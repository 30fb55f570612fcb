// The operator's PKI: lifetimes, renewal at 20% left, CA rotation with overlap.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { createCa, planFillPodCa, planPki, renewalTime, signedBy, splitBundle } from '../../src/operator/certs.ts';
import { leafCertificates } from '../../src/operator/components.ts';

const leaves = leafCertificates('kubevirt');
const t0 = new Date('2026-11-22T10:00:00Z');
const hours = (h: number) => new Date(t0.getTime() + h * 3600e3);

test('a fresh install gets a 7-day CA and 24-hour leaves that verify against it', async () => {
  const plan = await planPki({ leaves: {} }, leaves, t0);
  assert.equal(plan.caRenewed, true);
  assert.deepEqual(Object.keys(plan.write).sort(), leaves.map((l) => l.secret).sort());
  const ca = new X509Certificate(plan.ca.cert);
  assert.equal(Math.round((Date.parse(ca.validTo) - t0.getTime()) / 86400e3), 7);
  const api = new X509Certificate(plan.write['kubevirt-virt-api-certs'].cert);
  assert.ok(api.verify(ca.publicKey));
  assert.equal(Math.round((Date.parse(api.validTo) - t0.getTime()) / 3600e3), 24);
  assert.match(api.subjectAltName ?? '', /DNS:virt-api\.kubevirt\.svc/);
  assert.ok(api.checkPrivateKey(await import('node:crypto').then((c) => c.createPrivateKey(plan.write['kubevirt-virt-api-certs'].key))));
  // Renewal comes when 20% of the lifetime is left: after 19.2 h for a leaf.
  assert.equal(plan.nextCheck.getTime(), renewalTime(plan.write['kubevirt-virt-api-certs'].cert).getTime());
  assert.ok(Math.abs(plan.nextCheck.getTime() - hours(19.2).getTime()) < 120_000);
});

test('nothing is reissued before it is due; leaves are renewed at 80% of their life', async () => {
  const first = await planPki({ leaves: {} }, leaves, t0);
  const state = { ca: first.ca, bundle: first.bundle, leaves: first.write };
  const early = await planPki(state, leaves, hours(19));
  assert.equal(early.caRenewed, false);
  assert.deepEqual(Object.keys(early.write), []);
  const due = await planPki(state, leaves, hours(19.5));
  assert.equal(due.caRenewed, false);
  assert.equal(Object.keys(due.write).length, leaves.length);
});

test('a CA due for rotation is replaced; the old one stays in the bundle until it expires, and leaves move to the new CA', async () => {
  const oldCa = await createCa(t0);
  const first = await planPki({ ca: oldCa, bundle: oldCa.cert, leaves: {} }, leaves, t0);
  const rotateAt = hours(7 * 24 * 0.8 + 1);
  const rotated = await planPki({ ca: oldCa, bundle: first.bundle, leaves: first.write }, leaves, rotateAt);
  assert.equal(rotated.caRenewed, true);
  assert.equal(splitBundle(rotated.bundle).length, 2);
  for (const pair of Object.values(rotated.write)) assert.ok(signedBy(pair.cert, rotated.ca.cert));
  assert.equal(Object.keys(rotated.write).length, leaves.length);
  const later = await planPki({ ca: rotated.ca, bundle: rotated.bundle, leaves: rotated.write }, leaves, hours(7 * 24 + 2));
  assert.equal(splitBundle(later.bundle).length, 1, 'the expired CA leaves the bundle');
});

test('the fill-pod CA: made once and kept, replaced with two weeks left, the old one trusted until it expires', async () => {
  const days = (d: number) => hours(24 * d);
  const first = await planFillPodCa({}, t0);
  assert.equal(first.changed, true);
  assert.equal(first.bundle, first.ca.cert);
  assert.equal(Math.round((Date.parse(new X509Certificate(first.ca.cert).validTo) - t0.getTime()) / 86400e3), 28);
  assert.ok(Math.abs(first.nextCheck.getTime() - days(14).getTime()) < 120_000, 'looked at again when two weeks are left');
  const kept = await planFillPodCa({ ca: first.ca, bundle: first.bundle }, days(13));
  assert.equal(kept.changed, false);
  assert.equal(kept.ca, first.ca);
  const rotated = await planFillPodCa({ ca: first.ca, bundle: first.bundle }, days(14.1));
  assert.equal(rotated.caRenewed, true);
  assert.deepEqual(splitBundle(rotated.bundle), [rotated.ca.cert, first.ca.cert]);
  // The old CA leaves the bundle when it expires, which is when the operator looks next.
  assert.ok(Math.abs(rotated.nextCheck.getTime() - days(28).getTime()) < 120_000);
  const later = await planFillPodCa({ ca: rotated.ca, bundle: rotated.bundle }, days(28.05));
  assert.equal(later.caRenewed, false);
  assert.equal(later.changed, true);
  assert.deepEqual(splitBundle(later.bundle), [rotated.ca.cert]);
});

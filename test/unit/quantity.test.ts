import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalQuantity, compareQuantities, parseQuantity, quantityValue, binaryQuantity } from '../../src/api/quantity.ts';

test('quantities print in the canonical form Kubernetes uses', () => {
  const cases: [string | number, string][] = [
    ['128Mi', '128Mi'],
    ['1.5Gi', '1536Mi'],
    ['1024M', '1024M'],
    ['1000M', '1G'],
    ['0.5', '500m'],
    ['100m', '100m'],
    ['1e3', '1e3'],
    ['1024Ki', '1Mi'],
    ['512', '512'],
    [2, '2'],
    ['0', '0'],
    ['1500m', '1500m'],
    ['2000Mi', '2000Mi'],
  ];
  for (const [input, expected] of cases) assert.equal(canonicalQuantity(input), expected, String(input));
});

test('values round up like resource.Quantity.Value()', () => {
  assert.equal(quantityValue('100m'), 1);
  assert.equal(quantityValue('1.5'), 2);
  assert.equal(quantityValue('128Mi'), 134217728);
  assert.equal(quantityValue('1G'), 1e9);
});

test('comparison and binary formatting', () => {
  assert.equal(compareQuantities('1Gi', '1024Mi'), 0);
  assert.equal(compareQuantities('1G', '1Gi'), -1);
  assert.equal(binaryQuantity(4n * 1024n ** 3n), '4Gi');
  assert.equal(binaryQuantity(1000), '1k');
  assert.equal(binaryQuantity(1500), '1500');
});

test('malformed quantities are refused', () => {
  for (const bad of ['', 'Gi', '1.2.3', '12XB', '--1']) assert.throws(() => parseQuantity(bad), String(bad));
});

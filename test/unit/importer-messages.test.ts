// The failure texts, which follow CDI's importer and upload server word for
// word where users and controllers match them, and always fit the kubelet's
// one termination message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  failedAt,
  ImportError,
  imageTooLarge,
  imageTooLargeError,
  qemuError,
  redactUrl,
  requestFailed,
  STAGE,
  TERMINATION_MESSAGE_MAX_BYTES,
  terminationMessage,
  truncatedBody,
  unexpectedStatus,
} from '../../src/cdi/importer/messages.ts';
import { uploadFailure } from '../../src/cdi/importer/upload.ts';

test("CDI's size message, which controllers turn into 'DataVolume too small to contain image'", () => {
  assert.equal(
    imageTooLarge(10737418240, 5368709120),
    'virtual image size 10737418240 is larger than the reported available storage 5368709120. A larger PVC is required',
  );
  const err = imageTooLargeError(2, 1);
  assert.ok(err.tooLarge);
  assert.equal(err.message, `${STAGE.convert}: ${imageTooLarge(2, 1)}`);
});

test('an unexpected status quotes it as Go does', () => {
  assert.equal(unexpectedStatus(404, 'Not Found'), 'expected status code 200, got 404. Status: 404 Not Found');
  assert.equal(unexpectedStatus(503, ''), 'expected status code 200, got 503. Status: 503');
});

test("connection failures in net/http's words", () => {
  const url = 'http://images.example:8080/disk.img';
  assert.equal(
    requestFailed(url, { code: 'ECONNREFUSED', address: '10.0.0.1', port: 8080, message: 'connect ECONNREFUSED 10.0.0.1:8080' }),
    `HTTP request errored: Get "${url}": dial tcp 10.0.0.1:8080: connect: connection refused`,
  );
  assert.equal(
    requestFailed(url, { code: 'ENOTFOUND', hostname: 'images.example', message: 'getaddrinfo ENOTFOUND images.example' }),
    `HTTP request errored: Get "${url}": dial tcp: lookup images.example: no such host`,
  );
  // Node tries every address of a name and reports them together.
  const both = Object.assign(new AggregateError([{ code: 'ECONNREFUSED', address: '::1', port: 8080 }, {}], ''), { code: 'ECONNREFUSED' });
  assert.equal(requestFailed(url, both), `HTTP request errored: Get "${url}": dial tcp [::1]:8080: connect: connection refused`);
  assert.equal(
    requestFailed(url, {
      code: 'DEPTH_ZERO_SELF_SIGNED_CERT',
      message: 'self-signed certificate; if the root CA is installed locally, try running Node.js with --use-system-ca',
    }),
    `HTTP request errored: Get "${url}": tls: failed to verify certificate: self-signed certificate`,
  );
  assert.equal(requestFailed(url, new Error('socket hang up')), `HTTP request errored: Get "${url}": socket hang up`);
});

test('credentials in a URL stay out of messages', () => {
  assert.equal(redactUrl('https://user:secret@example.com/a.img'), 'https://example.com/a.img');
  assert.equal(redactUrl('http://example.com/a.img'), 'http://example.com/a.img');
  assert.ok(!requestFailed('http://u:pw@h/x', new Error('boom')).includes('pw'));
});

test('stages wrap causes and keep whether it was about size', () => {
  const wrapped = failedAt(STAGE.upload, failedAt(STAGE.target, imageTooLargeError(3, 2, STAGE.target)));
  assert.ok(wrapped.tooLarge);
  assert.match(wrapped.message, /^Saving stream failed: Unable to transfer source data to target file: Unable to transfer source data/);
  assert.ok(!failedAt(STAGE.scratch, new Error('ENOSPC: no space left on device, write')).tooLarge);
  assert.equal(truncatedBody(10, 20), 'unexpected EOF: the connection closed after 10 of 20 bytes');
});

test("the upload server's answers: 400 with CDI's prefix for an image too large, 500 otherwise", () => {
  assert.deepEqual(uploadFailure(imageTooLargeError(3, 2)), {
    status: 400,
    message: `Saving stream failed: effective image size is larger than the reported available storage: ${STAGE.convert}: ${imageTooLarge(3, 2)}`,
  });
  assert.deepEqual(uploadFailure(new ImportError('xz: File format not recognized')), {
    status: 500,
    message: 'Saving stream failed: xz: File format not recognized',
  });
});

test("qemu-img's stderr and the termination message are one line, cut to the kubelet's limit", () => {
  assert.equal(qemuError("qemu-img: Could not open 'x': L1 size too big\n", 'exit 1'), "qemu-img: Could not open 'x': L1 size too big");
  assert.equal(qemuError('a\n\n b \n', 'x'), 'a; b');
  assert.equal(qemuError('', 'qemu-img exited with 1'), 'qemu-img exited with 1');
  assert.equal(terminationMessage('first\r\nsecond\n'), 'first; second');
  const long = terminationMessage('é'.repeat(5000));
  assert.ok(Buffer.byteLength(long) <= TERMINATION_MESSAGE_MAX_BYTES);
  assert.ok(long.endsWith('é...'), 'cut between characters');
});

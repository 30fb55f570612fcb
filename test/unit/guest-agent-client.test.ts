// The guest-agent client against a real unix socket standing in for QEMU's agent channel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { guestAgentCommand, QmpError } from '../../src/launcher/qmp.ts';

/** A channel that answers guest-sync, then does with the command what `then` says. */
async function channel(then: (socket: Socket, command: { execute: string }) => void) {
  const path = join(mkdtempSync(join(tmpdir(), 'qga-')), 'qga.sock');
  const server = createServer((socket) => {
    let buffer = '';
    socket.on('data', (chunk) => {
      // The client's leading 0xFF (resynchronise) is no part of any message.
      buffer += Buffer.from(chunk.filter((byte) => byte !== 0xff)).toString('utf8');
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const message = JSON.parse(buffer.slice(0, newline));
        buffer = buffer.slice(newline + 1);
        if (message.execute === 'guest-sync') socket.write(`${JSON.stringify({ return: message.arguments.id })}\n`);
        else then(socket, message);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return { path, close: () => server.close() };
}

test("an agent's error keeps its class, so a missing command can be told from other failures", async () => {
  const agent = await channel((socket, { execute }) =>
    socket.write(`${JSON.stringify({ error: { class: 'CommandNotFound', desc: `The command ${execute} has not been found` } })}\n`),
  );
  try {
    await assert.rejects(
      guestAgentCommand(agent.path, 'guest-get-load', 2000),
      (error: unknown) => error instanceof QmpError && error.errorClass === 'CommandNotFound',
    );
  } finally {
    agent.close();
  }
});

test('a channel that closes without answering (QEMU exited on a guest reboot) fails at once, not at the deadline', async () => {
  const agent = await channel((socket) => socket.destroy());
  try {
    const started = performance.now();
    await assert.rejects(
      guestAgentCommand(agent.path, 'guest-shutdown', 5000, { mode: 'reboot' }),
      /closed before it answered guest-shutdown/,
    );
    assert.ok(performance.now() - started < 1000);
  } finally {
    agent.close();
  }
});

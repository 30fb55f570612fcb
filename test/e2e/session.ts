// A long-running virtctl in an e2e test, its output collected.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { eventually, KUBECONFIG } from './kube.ts';

export const VIRTCTL = join(import.meta.dirname, '..', '..', 'bin', 'virtctl');

/** A long-running command whose output is collected; `waitFor` resolves once the output matches. */
export class Session {
  readonly child: ChildProcessWithoutNullStreams;
  output = '';
  readonly exited: Promise<number | null>;
  constructor(command: string, args: string[]) {
    this.child = spawn(command, args, { env: { ...process.env, KUBECONFIG } });
    for (const stream of [this.child.stdout, this.child.stderr]) stream.on('data', (d: Buffer) => (this.output += d.toString('utf8')));
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }
  /** virtctl in namespace on a terminal: script(1) gives it a pty, as a user's shell would. */
  static onPty(namespace: string, args: string[]) {
    return new Session('script', ['-qfec', [VIRTCTL, '-n', namespace, ...args].join(' '), '/dev/null']);
  }
  write(text: string) {
    this.child.stdin.write(text);
  }
  async waitFor(pattern: RegExp, seconds: number) {
    await eventually(`${pattern} in the output of ${this.child.spawnargs.join(' ')}; got: ${this.output.slice(-400)}`, seconds, () =>
      pattern.test(this.output),
    );
  }
}

// What the wiring tests hand a component besides its informers and its API:
// a logger and an event recorder that keep what they are given, and the
// errors the Kubernetes API rejects with.
import type { EventRecorder } from '../../src/lib/events.ts';
import { createLogger, type Logger } from '../../src/lib/log.ts';

export interface CapturedEvent {
  name: string | undefined;
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

/** A logger whose JSON lines are kept in `lines` instead of written to stderr. */
export function capturedLog(component = 'test'): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  return { log: createLogger(component, {}, (line) => lines.push(JSON.parse(line))), lines };
}

/** An event recorder that keeps the events in `events`. */
export function capturedEvents(): { record: EventRecorder; events: CapturedEvent[] } {
  const events: CapturedEvent[] = [];
  return { record: (subject, type, reason, message) => events.push({ name: subject.metadata.name, type, reason, message }), events };
}

/** A rejection as client-node raises it for an HTTP error status. */
export function apiError(code: number, message = `HTTP ${code}`): Error & { code: number } {
  return Object.assign(new Error(message), { code });
}

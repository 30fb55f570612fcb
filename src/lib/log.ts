// Structured JSON logs: one line per record, with the component and, when a
// record is about an object, its kind, namespace, name and uid. Keys come in
// alphabetical order, as in upstream's logs, which its tests match as text
// (`"kind":"Domain","level":"info","msg":"...","name":"..."`).
export interface ObjectRef {
  kind?: string;
  metadata?: { namespace?: string; name?: string; uid?: string };
}

export type Level = 'debug' | 'info' | 'warning' | 'error';

export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warning(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
  /** A logger whose records name this object. */
  object(obj: ObjectRef): Logger;
}

export interface LoggerOptions {
  /** Whether debug records are written; by default, when KVTS_DEBUG is set. */
  debug?: boolean;
}

export function createLogger(
  component: string,
  base: Record<string, unknown> = {},
  write: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
  options: LoggerOptions = {},
): Logger {
  const emit = (level: Level, msg: string, fields?: Record<string, unknown>) => {
    const record: Record<string, unknown> = { timestamp: new Date().toISOString(), component, level, msg, ...base, ...fields };
    write(JSON.stringify(Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))));
  };
  return {
    info: (msg, fields) => emit('info', msg, fields),
    warning: (msg, fields) => emit('warning', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
    debug: (msg, fields) => {
      if (options.debug ?? process.env.KVTS_DEBUG) emit('debug', msg, fields);
    },
    object: (obj) =>
      createLogger(
        component,
        { ...base, kind: obj.kind, namespace: obj.metadata?.namespace, name: obj.metadata?.name, uid: obj.metadata?.uid },
        write,
        options,
      ),
  };
}

/**
 * Ends the process on SIGTERM/SIGINT after `cleanup`. A Node process that is
 * PID 1 in its container would otherwise ignore SIGTERM, and its pod would
 * take the whole grace period to stop.
 */
export function exitOnSignals(log: Logger, cleanup: () => unknown = () => undefined): void {
  const stop = (signal: string) => {
    log.info('stopping', { signal });
    Promise.resolve()
      .then(cleanup)
      .catch(() => undefined)
      .finally(() => process.exit(0));
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

import pino, { type Logger } from 'pino';

export type { Logger };

function defaultLevel(): string {
  return process.env.LOG_LEVEL ?? (process.env.VITEST ? 'silent' : 'info');
}

function make(level: string, fd = 1): Logger {
  const pretty = process.stdout.isTTY === true && !process.env.CI && !process.env.VITEST;
  const opts = {
    level,
    base: { pid: process.pid },
    // Nothing logged ever holds a secret (CONTRACT §2).
    redact: {
      paths: ['password', 'token', 'secret', '*.password', '*.token', '*.secret', '*.*.password', 'spec.password'],
      censor: '<redacted>',
    },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true, destination: 2 } } } : {}),
  };
  // fd 2: `petrel ctl` keeps stdout for its output (yaml/json/tables) and logs to stderr.
  return fd === 1 || pretty ? pino(opts) : pino(opts, pino.destination(fd));
}

let root: Logger = make(defaultLevel());

/**
 * Re-creates the process logger at `level`. The CLI calls this before it builds any component,
 * so components take their child logger (`logger(name)`) in constructors, not at module load.
 */
export function setLogLevel(level: string, fd = 1): Logger {
  root = make(level, fd);
  return root;
}

/** A child logger for one component (JSON lines, `component` field). */
export function logger(component: string, bindings: Record<string, unknown> = {}): Logger {
  return root.child({ component, ...bindings });
}

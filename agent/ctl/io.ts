// Output, input and exit codes of `petrel ctl`, swappable so tests can run it in-process.
import { readFileSync } from 'node:fs';

export interface CtlIO {
  out(text: string): void;
  err(text: string): void;
  stdin(): Promise<string>;
}

export const processIO: CtlIO = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  stdin: async () => readFileSync(0, 'utf8'),
};

let current: CtlIO = processIO;
export const io = (): CtlIO => current;
export function setIO(next: CtlIO): CtlIO {
  const prev = current;
  current = next;
  return prev;
}

/** Exit codes of CONTRACT §1. */
export const EXIT_OK = 0;
export const EXIT_BAD_INPUT = 1;
export const EXIT_UNREACHABLE = 2;

/** Thrown by verbs to stop with a message and an exit code. */
export class CtlExit extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

// Coalesces bursts of work into one run: many datastore events (or BGP route changes) within
// `delayMs` yield one calculation and one apply. Runs never overlap; work that arrives during a
// run schedules exactly one more run after it.

export class Batcher {
  private timer?: NodeJS.Timeout;
  private running = false;
  private again = false;
  private stopped = false;

  constructor(
    private readonly run: () => Promise<void>,
    private readonly delayMs = 10,
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {}

  /** Asks for a run soon. */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (!this.timer) this.timer = setTimeout(() => void this.fire(), this.delayMs);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Resolves once no run is in progress or pending. */
  async idle(): Promise<void> {
    while (this.running || this.timer) await new Promise((r) => setTimeout(r, 5));
  }

  private async fire(): Promise<void> {
    this.timer = undefined;
    this.running = true;
    try {
      await this.run();
    } catch (err) {
      this.onError(err);
    } finally {
      this.running = false;
      if (this.again) {
        this.again = false;
        this.kick();
      }
    }
  }
}

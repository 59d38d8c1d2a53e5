// A FIFO mutex: callers run one at a time in call order.

export class Mutex {
  private tail: Promise<void> = Promise.resolve();
  private held = 0;

  /** True while a holder runs or waiters are queued. */
  get busy(): boolean {
    return this.held > 0;
  }

  /** Run `fn` once every earlier caller has finished (whether it succeeded or not). */
  run<T>(fn: () => Promise<T>): Promise<T> {
    this.held++;
    // `finally` runs before the caller sees the result, so `busy` is accurate when it resumes
    const result = this.tail.then(fn).finally(() => {
      this.held--;
    });
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

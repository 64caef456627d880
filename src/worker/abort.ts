/**
 * An AbortController made only when something looks at its signal or aborts it. Most task runs
 * never do (no time limit, no revoke, a handler that ignores `ctx.signal`), and an AbortSignal is
 * an EventTarget: costly to allocate once per task at tens of thousands of tasks a second.
 */
export class LazyAbortController implements AbortController {
  #controller: AbortController | undefined;

  get signal(): AbortSignal {
    this.#controller ??= new AbortController();
    return this.#controller.signal;
  }

  /** True once aborted (without creating the signal when nobody asked for it). */
  get aborted(): boolean {
    return this.#controller?.signal.aborted ?? false;
  }

  abort(reason?: unknown): void {
    this.#controller ??= new AbortController();
    this.#controller.abort(reason);
  }
}

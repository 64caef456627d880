/**
 * What a worker offers to remote control: the Worker class implements this (structurally), so the
 * control package never imports the worker and the worker can own its mailbox.
 */
export interface ControlTarget {
  /** The node name (`celeriac@host`), Celery's `hostname`. */
  readonly hostname: string;
  readonly concurrency: number;
  readonly queues: readonly string[];
  activeTasks(): object[];
  reservedTasks(): object[];
  scheduledTasks(): Array<{ eta: string | null; priority: number; request: object }>;
  registeredTasks(): string[];
  statsInfo(): Record<string, unknown>;
  queryTask(ids: readonly string[]): Record<string, [string, object]>;
  revokedIds(): string[];
  /** Returns the ids of running tasks that were told to stop. */
  revoke(ids: readonly string[], options?: { terminate?: boolean }): string[];
  /** Throws for an unknown task or a bad rate. */
  setRateLimit(taskName: string, rate: string | number | null): void;
  /** Seconds, as Celery's command. Throws for an unknown task. */
  setTimeLimit(taskName: string, soft: number | null, hard: number | null): void;
  resize(concurrency: number): void;
  addConsumer(queue: string): Promise<void>;
  cancelConsumer(queue: string): Promise<void>;
  stop(): Promise<void>;
}

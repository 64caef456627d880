/**
 * Celeriac's public API. The dashboard (`celeriac/dashboard`) and Prometheus metrics
 * (`celeriac/metrics`) are subpath exports, so a worker that uses neither never loads hono or prom-client.
 * Adapters load lazily by URL scheme; nothing here opens a connection.
 */
export { Celeriac } from './app.js';
export type {
  Consumer,
  DeadLetter,
  Delivery,
  OutgoingMessage,
  Subscription,
  Transport,
} from './brokers/transport.js';
export type { CeleriacConfig } from './config.js';
export type { TaskContext } from './context.js';
export { currentTask } from './context.js';
export type {
  BroadcastOptions,
  CommandOptions,
  InspectOptions,
  NodeReplies,
  OkReply,
  RevokeOptions,
  TargetOptions,
} from './control/control.js';
export { Control } from './control/control.js';
export type { ScheduledReply, TaskInfoReply } from './control/inspect.js';
export { Inspect } from './control/inspect.js';
export type { DashboardAuth } from './dashboard/auth.js';
export type { DashboardOptions, DashboardServer } from './dashboard/server.js';
export type { Duration } from './duration.js';
export { EagerResult } from './eager.js';
export {
  CeleriacError,
  ClosedError,
  ConfigError,
  ConnectionError,
  Ignore,
  MalformedMessageError,
  NoResultSinkError,
  NotRegistered,
  PayloadError,
  Reject,
  Retry,
  SoftTimeLimitExceeded,
  TaskError,
  TaskRevokedError,
  TimeLimitExceeded,
  TimeoutError,
} from './errors.js';
export type { EventPayload, EventSubscriber, PublishedEvent } from './event.js';
export { CeleriacEvent } from './event.js';
export type { HealthReport, HealthStatus } from './health.js';
export type { Logger } from './logging.js';
export type { TaskMessage, WireMessage } from './messages/types.js';
export type {
  CeleryEvent,
  CeleryEventFields,
  CeleryEventType,
  MonitoredState,
  MonitoringEvents,
  TaskView,
  WorkerView,
} from './observability/index.js';
export {
  ClusterState,
  EventReceiver,
  isEvent,
  receiveEvents,
  sendTaskSentEvents,
  sendWorkerEvents,
} from './observability/index.js';
export { AsyncResult } from './result.js';
export type { ResultMeta, TaskState } from './results/meta.js';
export type { ResultSink } from './results/sink.js';
export { Signature } from './signature.js';
export type { ApplyOptions, ErrorClass, RetryPolicy, TaskOptions } from './task.js';
export { Task } from './task.js';
export type { WorkerEventMap } from './worker/events.js';
export { MaxRetriesExceededError } from './worker/execute.js';
export type { WorkerOptions } from './worker/worker.js';
export { Worker } from './worker/worker.js';

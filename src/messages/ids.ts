/**
 * Identifiers on the wire: task ids (uuid4), derived ids (uuid5), the sender's node name
 * (`origin`) and its reply-to oid, as Celery makes them.
 */
import { createHash, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { threadId } from 'node:worker_threads';

/** RFC 4122 namespaces (the same constants as Python's `uuid.NAMESPACE_*`). */
export const NAMESPACE_DNS = '6ba7b810-9dad-11d1-80b4-00c04fd430c8';
export const NAMESPACE_URL = '6ba7b811-9dad-11d1-80b4-00c04fd430c8';
export const NAMESPACE_OID = '6ba7b812-9dad-11d1-80b4-00c04fd430c8';

/**
 * Celeriac's namespace for event subscriber task ids:
 * `uuid5(NAMESPACE_URL, 'https://celeriac.dev/ns/event-subscriber')`. Fixed forever: changing it
 * would change every derived id.
 */
export const SUBSCRIBER_NAMESPACE = '3613615c-f291-5c5e-a847-44efafd12335';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A random task id.
 *
 * @example
 * uuid4() // '1b4e28ba-2fa1-4d2a-883f-0016d3cca427'
 */
export function uuid4(): string {
  return randomUUID();
}

function nameBased(algorithm: 'md5' | 'sha1', version: number, namespace: string, name: string): string {
  if (!UUID.test(namespace)) throw new TypeError(`namespace must be a UUID string, got '${namespace}'`);
  const hash = createHash(algorithm)
    .update(Buffer.from(namespace.replaceAll('-', ''), 'hex'))
    .update(name, 'utf8')
    .digest();
  hash[6] = ((hash[6] as number) & 0x0f) | (version << 4);
  hash[8] = ((hash[8] as number) & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * RFC 4122 version 5 (SHA-1) UUID: the same as Python's `uuid.uuid5(namespace, name)`.
 *
 * @example
 * uuid5(NAMESPACE_DNS, 'www.example.com') // '2ed6657d-e927-568b-95e1-2665a8aea6a2'
 */
export function uuid5(namespace: string, name: string): string {
  return nameBased('sha1', 5, namespace, name);
}

/**
 * RFC 4122 version 3 (MD5) UUID: the same as Python's `uuid.uuid3(namespace, name)`; kombu makes
 * its oids this way.
 */
export function uuid3(namespace: string, name: string): string {
  return nameBased('md5', 3, namespace, name);
}

/**
 * The task id of one subscriber's run of an event: `uuid5(SUBSCRIBER_NAMESPACE, eventId + "\0" +
 * taskName)`. Deterministic, so a re-published event (same id) gives the same task ids, and each
 * subscriber's results and retries have their own id. In Python:
 * `uuid.uuid5(uuid.UUID('3613615c-f291-5c5e-a847-44efafd12335'), f'{event_id}\0{task_name}')`.
 *
 * @example
 * subscriberTaskId('6f1c1f3e-2f0b-4c34-9a55-0d5f9d7d1e2a', 'tasks.send_welcome_email')
 * // '62b301af-78d6-51dd-8ba4-c58ed6b1a292'
 */
export function subscriberTaskId(eventId: string, taskName: string): string {
  return uuid5(SUBSCRIBER_NAMESPACE, `${eventId}\0${taskName}`);
}

/**
 * This process's node name as Celery writes it in the `origin` header: `gen<pid>@<hostname>`.
 *
 * @example
 * originName() // 'gen10169@vm'
 */
export function originName(): string {
  return `gen${process.pid}@${hostname()}`;
}

let oid: string | undefined;

/**
 * A reply-to id that is stable for this process and thread (each worker thread has its own), as
 * Celery's `app.thread_oid`: kombu hashes node id, pid, thread id and the app's object id with
 * uuid3; here hostname, pid, thread id and a random value drawn once.
 *
 * @example
 * threadOid() === threadOid() // true
 */
export function threadOid(): string {
  oid ??= uuid3(
    NAMESPACE_OID,
    `${hostname()}-${process.pid.toString(16)}-${threadId.toString(16)}-${randomUUID()}`,
  );
  return oid;
}

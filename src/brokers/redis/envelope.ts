import { dumps, loads } from '../../messages/json.js';
import { fromKombuEnvelope, toKombuPriority } from '../../messages/kombu.js';
import type { WireMessage } from '../../messages/types.js';

/**
 * What the transport needs of kombu's envelope beyond the codec in `messages/kombu.ts`: the wire
 * priority, and kombu's restore edit.
 */
export interface DecodedEnvelope {
  message: WireMessage;
  /** kombu wire priority (0 served first). */
  wirePriority: number;
  redelivered: boolean;
}

/** Reads an envelope; throws MalformedMessageError with the reason when it cannot. */
export function decodeEnvelope(raw: string): DecodedEnvelope {
  const d = fromKombuEnvelope(raw);
  return {
    message: d.wire,
    wirePriority: toKombuPriority(d.wire.priority),
    redelivered: d.redelivered,
  };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * kombu's restore edit (`_do_restore_message`): `headers.redelivered = true` and
 * `properties.delivery_info.redelivered = true`, re-serialized as Python's json.dumps would.
 * Text that is not a JSON object goes back unchanged.
 */
export function redeliveredText(raw: string): string {
  let env: unknown;
  try {
    env = loads(raw);
  } catch {
    return raw;
  }
  return isRecord(env) ? markRedelivered(env) : raw;
}

export function markRedelivered(envelope: Record<string, unknown>): string {
  if (isRecord(envelope.headers)) envelope.headers.redelivered = true;
  const props = envelope.properties;
  if (isRecord(props) && isRecord(props.delivery_info)) props.delivery_info.redelivered = true;
  return dumps(envelope, { allowBigInt: true });
}

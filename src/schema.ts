import type { StandardSchemaV1 } from '@standard-schema/spec';
import { PayloadError } from './errors.js';

export type { StandardSchemaV1 };

/**
 * Validates `value` with any Standard Schema validator (zod, valibot, arktype…). Resolves with the
 * validator's output, or throws a PayloadError listing every issue with its path.
 *
 * @example
 * await validate(z.object({ id: z.string() }), { id: 1 }, 'event user.registered')
 * // PayloadError: event user.registered: id: expected string, received number
 */
export async function validate<S extends StandardSchemaV1>(
  schema: S,
  value: unknown,
  what: string,
): Promise<StandardSchemaV1.InferOutput<S>> {
  let result = schema['~standard'].validate(value);
  if (result instanceof Promise) result = await result;
  if (result.issues) throw new PayloadError(what, formatIssues(result.issues));
  return result.value as StandardSchemaV1.InferOutput<S>;
}

/** `a.b: message; c: message` from Standard Schema issues. */
export function formatIssues(issues: ReadonlyArray<StandardSchemaV1.Issue>): string {
  return issues
    .map((issue) => {
      const path = (issue.path ?? [])
        .map((seg) => String(typeof seg === 'object' && seg !== null && 'key' in seg ? seg.key : seg))
        .join('.');
      return path ? `${path}: ${issue.message}` : issue.message;
    })
    .join('; ');
}

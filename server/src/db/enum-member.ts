/**
 * An entity's enum column as its exact union: the entities' inferred enum types are wider
 * than the value lists they are built from.
 */
export function enumMember<T extends string>(values: readonly T[], value: unknown): T {
  const found = values.find((v) => v === value);
  if (found === undefined) throw new Error(`unexpected enum value ${String(value)}`);
  return found;
}

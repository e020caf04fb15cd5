/**
 * Hot read paths (a request's viewer, a customer's snapshot list) skip MikroORM's query builder
 * and hydration and send one SQL string; these read the driver's values the way MikroORM would.
 */

/** A DATETIME as the driver hands it to MikroORM ('YYYY-MM-DD hh:mm:ss[.fff]'), stored in UTC. */
export function utcDatetime(value: string | Date): Date {
  return value instanceof Date ? value : new Date(`${value.replace(' ', 'T')}Z`);
}

export function nullableUtcDatetime(value: string | Date | null): Date | null {
  return value === null ? null : utcDatetime(value);
}

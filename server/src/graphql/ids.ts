/** A database id given as a GraphQL ID; null when it cannot be one. */
export function parseId(id: string | number): number | null {
  const text = String(id);
  if (!/^[1-9][0-9]{0,9}$/.test(text)) return null;
  const value = Number(text);
  return value <= 0xffffffff ? value : null;
}

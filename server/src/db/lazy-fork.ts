import type { EntityManager } from '@mikro-orm/mariadb';

/**
 * An EntityManager that forks `base` when it is first used, so that a request that never
 * reaches the ORM (the catalog listing reads plain rows through the connection, and the
 * viewer comes from the token cache) does not build an identity map, a unit of work and
 * their helpers only to drop them: ~3.5% of the api's CPU per `me { snapshots }` request in
 * a profile. Every use goes to the one fork, so the request still has its own identity map.
 */
export function lazyFork(base: EntityManager): EntityManager {
  let fork: EntityManager | undefined;
  const real = (): EntityManager => {
    fork ??= base.fork();
    return fork;
  };
  return new Proxy({} as EntityManager, {
    get(_target, property) {
      const em = real();
      const value: unknown = Reflect.get(em, property, em);
      return typeof value === 'function' ? value.bind(em) : value;
    },
    set: (_target, property, value) => Reflect.set(real(), property, value),
    has: (_target, property) => Reflect.has(real(), property),
    getPrototypeOf: () => Reflect.getPrototypeOf(real()),
  });
}

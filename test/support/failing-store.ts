// A Store whose chosen methods throw a database-looking error (with details that must never reach a client).
import type { Store } from '#core/ports.js';

export const LEAKY_DB_ERROR = 'connection to 10.1.2.3 lost: password=hunter2';

/** Wraps `store` so that `methods` (or every method but close, for 'all') reject with LEAKY_DB_ERROR. */
export function failingStore(store: Store, methods: (keyof Store)[] | 'all'): Store {
  const fails = (prop: string | symbol) =>
    methods === 'all' ? prop !== 'close' : (methods as (string | symbol)[]).includes(prop);
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      if (fails(prop)) return async () => { throw new Error(LEAKY_DB_ERROR); };
      // close() of the wrapper leaves the real store to its owner.
      if (prop === 'close') return async () => {};
      return value.bind(target);
    },
  }) as Store;
}

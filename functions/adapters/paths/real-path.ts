// The RealPath port on this machine: a path with its symbolic links resolved, as far as it exists.
import { realpathSync } from 'node:fs';
import { posix } from 'node:path';
import type { RealPath } from '#core/ports.js';

/**
 * The real path of the longest part of `path` that exists, with the rest appended as written: a directory that is
 * not there yet (a clone URL naming a repository still to be made) is judged by where its parent leads.
 */
export const realPathOnThisMachine: RealPath = (path) => {
  let existing = posix.resolve(path);
  const missing: string[] = [];
  for (;;) {
    try {
      return posix.join(realpathSync.native(existing), ...missing.reverse());
    } catch {
      const parent = posix.dirname(existing);
      if (parent === existing) return path;
      missing.push(posix.basename(existing));
      existing = parent;
    }
  }
};

// Reading the clone's files with care: it holds untrusted content (links, huge files), so these never follow a
// link where it matters and never read more than a config file's worth.
import fs from 'node:fs';
import { readNoFollow } from './tar.mjs';

/** Config files read from the repository (enot_config.json, Makefile) beyond this size are ignored. */
const MAX_CONFIG_BYTES = 1024 * 1024;

export function isRegularFile(file) {
  try {
    return fs.lstatSync(file).isFile();
  } catch {
    return false;
  }
}

export function isExecutable(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function realpathOrEmpty(p) {
  try {
    return fs.realpathSync(p);
  } catch {
    return '';
  }
}

/** A repository file's text when it is a regular file (not a link) of a sane size; '' otherwise. */
export function readSmallFile(file) {
  try {
    const st = fs.lstatSync(file);
    if (!st.isFile() || st.size > MAX_CONFIG_BYTES) return '';
    return readNoFollow(file).toString('utf8');
  } catch {
    return '';
  }
}

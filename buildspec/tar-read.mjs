// A tar reader for archives from outside (hex package tarballs): entries read into memory within a byte budget, and
// unpacked as regular files and directories only, each name checked, so an archive can neither write outside its
// target (no absolute names, no `..`, no links to follow) nor fill the disk.
import fs from 'node:fs';
import path from 'node:path';

const BLOCK = 512;

/** An archive that is malformed or over its budget. */
export class TarError extends Error {}

/**
 * The entries of a (ustar, GNU or pax) tar, in archive order: regular files with their bytes, directories; links and
 * devices are left out (listed in `skipped`).
 * @param {Buffer} buf
 * @param {number} maxBytes the most the files' contents may add up to
 * @returns {{ entries: Array<{ name: string, type: 'file' | 'dir', data?: Buffer, mode: number }>, skipped: string[] }}
 */
export function readTar(buf, maxBytes) {
  const entries = [];
  const skipped = [];
  let offset = 0;
  let total = 0;
  let longName = '';
  let paxPath = '';
  while (offset + BLOCK <= buf.length) {
    const header = buf.subarray(offset, offset + BLOCK);
    if (header.every((b) => b === 0)) break;
    const size = octal(header.subarray(124, 136));
    const type = String.fromCharCode(header[156] || 0x30);
    const dataStart = offset + BLOCK;
    const dataEnd = dataStart + size;
    if (!Number.isSafeInteger(size) || size < 0 || dataEnd > buf.length) throw new TarError('truncated or malformed tar entry');
    const data = buf.subarray(dataStart, dataEnd);
    offset = dataStart + Math.ceil(size / BLOCK) * BLOCK;
    if (type === 'L') {
      longName = cString(data);
      continue;
    }
    if (type === 'x') {
      paxPath = paxValue(data, 'path') ?? '';
      continue;
    }
    if (type === 'g') continue;
    const prefix = cString(header.subarray(345, 500));
    const plain = cString(header.subarray(0, 100));
    const name = paxPath || longName || (prefix ? `${prefix}/${plain}` : plain);
    paxPath = '';
    longName = '';
    const mode = octal(header.subarray(100, 108)) || 0o644;
    if (type === '0' || type === '7') {
      total += size;
      if (total > maxBytes) throw new TarError(`unpacks to more than ${maxBytes} bytes`);
      entries.push({ name, type: 'file', data, mode });
    } else if (type === '5') {
      entries.push({ name, type: 'dir', mode });
    } else {
      skipped.push(name);
    }
  }
  return { entries, skipped };
}

/**
 * Writes `entries` under `dir` (which must not exist yet). A name that is absolute, empty, or has a `.`/`..`
 * segment refuses the whole archive. Files are created new (`wx`), never through an existing path.
 */
export function unpackEntries(entries, dir) {
  const files = [];
  for (const entry of entries) {
    const clean = entry.name.replace(/^\.\//, '').replace(/\/+$/, '');
    if (clean === '' && entry.type === 'dir') continue;
    const parts = clean.split('/');
    if (clean === '' || clean.startsWith('/') || parts.some((p) => p === '' || p === '.' || p === '..') || clean.includes('\\')) {
      throw new TarError(`refusing the entry name ${JSON.stringify(entry.name.slice(0, 200))}`);
    }
    files.push({ ...entry, parts });
  }
  fs.mkdirSync(dir, { recursive: false });
  for (const entry of files) {
    const target = path.join(dir, ...entry.parts);
    if (entry.type === 'dir') {
      fs.mkdirSync(target, { recursive: true });
      continue;
    }
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, entry.data, { flag: 'wx', mode: entry.mode & 0o111 ? 0o755 : 0o644 });
  }
}

function octal(field) {
  // GNU base-256 sizes (high bit set) are for files over 8 GiB: far past any budget here.
  if (field[0] & 0x80) return Number.MAX_SAFE_INTEGER + 1;
  const text = cString(field).trim();
  return text === '' ? 0 : Number.parseInt(text, 8);
}

function cString(bytes) {
  const end = bytes.indexOf(0);
  return bytes.subarray(0, end < 0 ? bytes.length : end).toString('utf8');
}

/** A pax extended header's value for `key` ("<len> key=value\n" records). */
function paxValue(data, key) {
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    if (space < 0) return undefined;
    const len = Number.parseInt(data.subarray(at, space).toString('utf8'), 10);
    if (!Number.isSafeInteger(len) || len <= 0) return undefined;
    const record = data.subarray(space + 1, at + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (record.slice(0, eq) === key) return record.slice(eq + 1);
    at += len;
  }
  return undefined;
}

// A plain (ustar, with pax headers for long names) tar writer. Written here rather than calling `tar` so the archive
// is the same on every machine: sorted entries, owner 0:0 with no names, a fixed mtime, modes 0755/0644.
import { createHash } from 'node:crypto';
import fs from 'node:fs';

const BLOCK = 512;

/**
 * @typedef {{ name: string, type: 'dir' } | { name: string, type: 'file', source: string, executable?: boolean }
 *   | { name: string, type: 'file', data: Buffer, executable?: boolean } | { name: string, type: 'symlink', target: string }} TarEntry
 */

/**
 * Writes `entries` (sorted here by name) to `outFile`.
 * @param {string} outFile
 * @param {TarEntry[]} entries names relative, '/'-separated; a directory's name may end with '/'
 * @param {{ mtime?: number }} [options] seconds since the epoch for every entry
 * @returns {{ size: number, sha256: string }}
 */
export function writeTar(outFile, entries, { mtime = 0 } = {}) {
  const sorted = [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const hash = createHash('sha256');
  const fd = fs.openSync(outFile, 'w', 0o644);
  let size = 0;
  const put = (buf) => {
    fs.writeSync(fd, buf);
    hash.update(buf);
    size += buf.length;
  };
  try {
    for (const entry of sorted) {
      const isDir = entry.type === 'dir';
      const name = isDir && !entry.name.endsWith('/') ? `${entry.name}/` : entry.name;
      if (entry.type === 'file') {
        const data = 'data' in entry ? entry.data : readNoFollow(entry.source);
        putHeader(put, { name, type: '0', size: data.length, mode: entry.executable ? 0o755 : 0o644, mtime });
        put(data);
        const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
        if (pad) put(Buffer.alloc(pad));
      } else if (isDir) {
        putHeader(put, { name, type: '5', size: 0, mode: 0o755, mtime });
      } else {
        putHeader(put, { name, type: '2', size: 0, mode: 0o777, mtime, linkname: entry.target });
      }
    }
    put(Buffer.alloc(BLOCK * 2));
  } finally {
    fs.closeSync(fd);
  }
  return { size, sha256: hash.digest('hex') };
}

function putHeader(put, { name, type, size, mode, mtime, linkname = '' }) {
  const nameBytes = Buffer.from(name, 'utf8');
  const linkBytes = Buffer.from(linkname, 'utf8');
  let split = splitName(nameBytes);
  const pax = [];
  if (!split) {
    pax.push(paxRecord('path', name));
    split = { prefix: Buffer.alloc(0), name: nameBytes.subarray(0, 100) };
  }
  if (linkBytes.length > 100) pax.push(paxRecord('linkpath', linkname));
  if (pax.length) {
    const body = Buffer.concat(pax);
    put(header({ prefix: Buffer.alloc(0), name: Buffer.from('PaxHeader', 'utf8') }, 'x', body.length, 0o644, mtime, Buffer.alloc(0)));
    put(body);
    const pad = (BLOCK - (body.length % BLOCK)) % BLOCK;
    if (pad) put(Buffer.alloc(pad));
  }
  put(header(split, type, size, mode, mtime, linkBytes.subarray(0, 100)));
}

/** ustar's name field holds 100 bytes and a 155-byte prefix holds the directories before it; null if it won't fit. */
function splitName(bytes) {
  if (bytes.length <= 100) return { prefix: Buffer.alloc(0), name: bytes };
  for (let i = bytes.length - 1; i > 0; i--) {
    if (bytes[i] !== 0x2f) continue;
    const prefix = bytes.subarray(0, i);
    const name = bytes.subarray(i + 1);
    if (prefix.length <= 155 && name.length > 0 && name.length <= 100) return { prefix, name };
  }
  return null;
}

function paxRecord(key, value) {
  const body = ` ${key}=${value}\n`;
  const bodyLength = Buffer.byteLength(body, 'utf8');
  // The record's length counts its own digits.
  let length = bodyLength + String(bodyLength).length;
  while (bodyLength + String(length).length !== length) length = bodyLength + String(length).length;
  return Buffer.from(`${length}${body}`, 'utf8');
}

function header({ prefix, name }, type, size, mode, mtime, linkname) {
  const h = Buffer.alloc(BLOCK);
  name.copy(h, 0);
  octal(h, 100, 8, mode);
  octal(h, 108, 8, 0);
  octal(h, 116, 8, 0);
  octal(h, 124, 12, size);
  octal(h, 136, 12, mtime);
  h.fill(0x20, 148, 156);
  h.write(type, 156, 'latin1');
  linkname.copy(h, 157);
  h.write('ustar\u000000', 257, 'latin1');
  octal(h, 329, 8, 0);
  octal(h, 337, 8, 0);
  prefix.copy(h, 345);
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 'latin1');
  return h;
}

function octal(buf, offset, length, value) {
  buf.write(`${Math.floor(value).toString(8).padStart(length - 1, '0')}\u0000`, offset, 'latin1');
}

/**
 * Reads a file whose path was resolved already, refusing a link put in its place since (the package step reads
 * what a repository's own build left behind).
 */
export function readNoFollow(file) {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    return fs.readFileSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

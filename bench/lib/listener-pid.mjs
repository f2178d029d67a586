// The process listening on a loopback TCP port, found through /proc (Linux): the bench reads a broker's CPU
// time from it, whoever started the broker.
import { readdir, readFile, readlink } from 'node:fs/promises';

const LISTEN = '0A';

/** Inodes of the sockets listening on `port` (IPv4 and IPv6). */
async function listeningInodes(port) {
  const inodes = new Set();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(table, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10 || fields[3] !== LISTEN) continue;
      const localPort = Number.parseInt(fields[1].split(':')[1], 16);
      if (localPort === port) inodes.add(fields[9]);
    }
  }
  return inodes;
}

/** The pid of the process holding the socket that listens on `port`, or undefined when none is found. */
export async function listenerPid(port) {
  const inodes = await listeningInodes(Number(port));
  if (inodes.size === 0) return undefined;
  const wanted = new Set([...inodes].map((inode) => `socket:[${inode}]`));
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fds = await readdir(`/proc/${entry}/fd`).catch(() => []);
    for (const fd of fds) {
      const target = await readlink(`/proc/${entry}/fd/${fd}`).catch(() => '');
      if (wanted.has(target)) return Number(entry);
    }
  }
  return undefined;
}

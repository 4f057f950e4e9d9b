// Hostile fixture repositories: each is a tagged git repository whose Makefile (the package's own code, run by the
// compile) tries one escape from the build sandbox and prints `ATTEMPT <name>: refused` or `ATTEMPT <name>: ESCAPED`.
// Every one is bounded: fixed process counts, fixed sizes, sleeps that end, and only this machine as a target.
import { gitRepo, type ErlangRepo } from './erlang-repos.js';

/** What the escapes aim at: the service's data directory, its port, and a marker path on the host's /tmp. */
export interface HostileTargets {
  dataDir: string;
  servicePort: number;
  /** A Postgres table the attacks try to change (through psql, when installed). */
  victimTable: string;
  /** A file on the host that a build writing outside its sandbox would create. */
  hostMarker: string;
  /** Appears in the command line of the process the build tries to leave behind. */
  sleeperMarker: string;
}

/** One shell test per line: `refused` when `command` fails, `ESCAPED` when it works. */
const attempt = (name: string, command: string) =>
  `\t@if ${command} >/dev/null 2>&1; then echo "ATTEMPT ${name}: ESCAPED"; else echo "ATTEMPT ${name}: refused"; fi`;

/**
 * For writes: `refused` when the write fails, `written` when it worked, which in the sandbox means into its own
 * scratch (private /tmp, the tmpfs of the clone): the test then looks on the host that nothing landed there.
 */
const write = (name: string, command: string) =>
  `\t@if ${command} >/dev/null 2>&1; then echo "ATTEMPT ${name}: written"; else echo "ATTEMPT ${name}: refused"; fi`;

/** The escapes by name, each a Makefile recipe (tab-indented lines, `$$` for the shell's `$`). */
export function hostileRecipes(t: HostileTargets): Record<string, string[]> {
  const update = `UPDATE ${t.victimTable} SET value = 'pwned'`;
  return {
    'postgres-socket': [
      attempt('postgres-socket-visible', 'test -e /run/postgresql/.s.PGSQL.5432'),
      attempt('postgres-socket', `psql -h /run/postgresql -U postgres -d test -Atc "${update}"`),
    ],
    'tcp-loopback': [
      attempt('tcp-postgres', `psql -h 127.0.0.1 -p 5432 -U postgres -d test -Atc "${update}"`),
      attempt('tcp-postgres-raw', "bash -c 'exec 3<>/dev/tcp/127.0.0.1/5432'"),
      attempt('tcp-service', `bash -c 'exec 3<>/dev/tcp/127.0.0.1/${t.servicePort}'`),
    ],
    'read-secrets': [
      attempt('read-shadow', 'cat /etc/shadow'),
      attempt('read-root', 'ls /root/'),
      attempt('read-data-dir', `cat ${t.dataDir}/secret.txt`),
      attempt('list-run', 'ls /run/'),
      attempt('list-home', 'ls /home/'),
    ],
    'write-outside': [
      write('write-next-to-clone', 'touch ../escaped-next-to-clone'),
      write('write-data-dir', `touch ${t.dataDir}/pwned`),
      write('write-host-tmp', `touch ${t.hostMarker}`),
      write('write-usr', 'touch /usr/enot-pwned'),
    ],
    'process-left-behind': [
      // A detached sleeper that would outlive the build if nothing ended it (and ends by itself after 20 s).
      `\t@setsid sh -c 'sleep 20' ${t.sleeperMarker} >/dev/null 2>&1 < /dev/null &`,
      '\t@echo "ATTEMPT process-left-behind: started"',
    ],
    'memory': [
      // tail keeps a line without end in memory: 3 GB of it at most, were there no limit.
      '\t@echo "ATTEMPT memory: allocating"',
      '\t@head -c 3000000000 /dev/zero | tail -n 1 >/dev/null',
    ],
    'disk': [
      attempt('disk-clone', 'dd if=/dev/zero of=big-file bs=1M count=200'),
      attempt('disk-tmp', 'dd if=/dev/zero of=/tmp/big-file bs=1M count=200'),
      '\t@rm -f big-file /tmp/big-file',
      '\t@dd if=/dev/zero of=big-file bs=1M count=200',
    ],
    'fork-200': [
      // 200 sleepers of 5 s each, were there no limit; dash fails at once where it cannot fork.
      '\t@i=0; while [ $$i -lt 200 ]; do sleep 5 & i=$$((i+1)); done; echo "ATTEMPT fork-200: ESCAPED"; wait',
    ],
    'huge-line': [
      // 3 MB on one line.
      "\t@head -c 3000000 /dev/zero | tr '\\0' a; echo",
      '\t@echo "ATTEMPT huge-line: printed"',
    ],
  };
}

/** A repository whose Makefile runs `recipe` and nothing else (it builds no .beam, so the build fails after it). */
export function hostileRepo(name: string, recipe: string[]): Promise<ErlangRepo> {
  const app = name.replace(/-/g, '_');
  return gitRepo(app, '1.0.0', {
    Makefile: `all:\n${recipe.join('\n')}\n`,
    [`src/${app}.app.src`]: `{application, ${app}, [{vsn, "1.0.0"}, {applications, [kernel, stdlib]}]}.\n`,
    [`src/${app}.erl`]: `-module(${app}).\n-export([hi/0]).\nhi() -> hello.\n`,
  });
}

// Shared by the build steps: the job read from the environment, the state kept between step processes, the capped
// build log, and child processes (always argv arrays, never a shell: the repository and its ref are untrusted).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BUILD_ENV, BUILD_LIMIT_DEFAULTS, BUILD_OUTPUT, RUNNER_ENV, UPLOAD_FORM_ENV } from '#core/build-contract-names.mjs';

const DEFAULT_LOG_MAX_BYTES = 1048576;
/** Lines of a child's output kept in memory to pick an error message from, each cut to TAIL_LINE_BYTES. */
const TAIL_LINES = 400;
const TAIL_LINE_BYTES = 4096;
/** What a child's answers (see run's answerPrefix) may add up to; past it they are dropped. */
const MAX_ANSWER_BYTES = 8 * 1024 * 1024;

/** A failure of the package being built (not of the builder): recorded in result.json, the build goes on to publish. */
export class BuildFailure extends Error {
  /**
   * @param {'clone'|'ref'|'release'|'compile'|'package'|'internal'} failure
   * @param {string} message one line a person can act on
   * @param {Record<string, unknown>} [extra] result fields to keep (availableReleases, tool, ...)
   */
  constructor(failure, message, extra = {}) {
    super(message);
    this.failure = failure;
    this.extra = extra;
  }
}

/** Where everything lives and what the job is. Defaults let a person run the steps by hand in a scratch directory. */
export function readSettings(env = process.env) {
  const workDir = path.resolve(env[RUNNER_ENV.workDir] || '.enot-work');
  const outDir = path.resolve(env[RUNNER_ENV.outDir] || '.enot-out');
  const stateDir = path.join(workDir, 'state');
  const parsedMax = Number.parseInt(env[RUNNER_ENV.logMaxBytes] ?? '', 10);
  /** A positive integer from the environment, else the default. */
  const limit = (key) => {
    const value = Number.parseInt(env[RUNNER_ENV[key]] ?? '', 10);
    return Number.isSafeInteger(value) && value > 0 ? value : BUILD_LIMIT_DEFAULTS[key];
  };
  return {
    workDir,
    outDir,
    stateDir,
    repoDir: path.join(workDir, 'repo'),
    homeDir: path.join(workDir, 'home'),
    logFile: path.join(outDir, BUILD_OUTPUT.log),
    logMaxBytes: Number.isSafeInteger(parsedMax) && parsedMax > 0 ? parsedMax : DEFAULT_LOG_MAX_BYTES,
    limits: {
      memoryMb: limit('memoryMb'),
      diskMb: limit('diskMb'),
      maxProcesses: limit('maxProcesses'),
      logLineMaxBytes: limit('logLineMaxBytes'),
    },
    otpInstalls: env[RUNNER_ENV.otpInstalls] ? path.resolve(env[RUNNER_ENV.otpInstalls]) : '',
    // The runner's own OTP when it knows it (the local builder): the release step then need not start a VM to ask.
    otpRoot: env[RUNNER_ENV.otpRoot] ? path.resolve(env[RUNNER_ENV.otpRoot]) : '',
    otpVersion: env[RUNNER_ENV.otpVersion] ?? '',
    sandbox: (env[RUNNER_ENV.sandbox] || 'auto').toLowerCase(),
    // The ERTS project's bucket (publish-erts, with the aws CLI); package builds upload through presigned forms.
    uploadBucket: env[RUNNER_ENV.uploadBucket] || '',
    // Each a presigned POST form as JSON, read by publish (which fails the build on a malformed one).
    uploadForms: {
      artifact: env[UPLOAD_FORM_ENV.artifact] || '',
      log: env[UPLOAD_FORM_ENV.log] || '',
      result: env[UPLOAD_FORM_ENV.result] || '',
    },
    basePath: env.PATH || '/usr/local/bin:/usr/bin:/bin',
    // Every BUILD_ENV value by the same key ('' when unset).
    job: Object.fromEntries(Object.entries(BUILD_ENV).map(([key, name]) => [key, env[name] ?? ''])),
  };
}

// ---- state -------------------------------------------------------------------------------------------------------

export function loadState(settings) {
  try {
    return JSON.parse(fs.readFileSync(path.join(settings.stateDir, 'state.json'), 'utf8'));
  } catch {
    return { done: [] };
  }
}

export function saveState(settings, state) {
  fs.mkdirSync(settings.stateDir, { recursive: true });
  const file = path.join(settings.stateDir, 'state.json');
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(state, null, 2));
  fs.renameSync(`${file}.tmp`, file);
}

/** Fails (as the builder's fault) a step whose predecessors have not run: the buildspec calls them in order. */
export function requireDone(state, steps) {
  const missing = steps.filter((s) => !state.done.includes(s));
  if (missing.length) throw new Error(`step run out of order: ${missing.join(', ')} has not run`);
}

// ---- log ---------------------------------------------------------------------------------------------------------

/**
 * build.log, shared by the step processes one after the other: each appends and echoes to stdout. Past the cap
 * nothing more is written except one last line saying so; a flag file tells later steps the log is closed.
 */
export class BuildLog {
  constructor(settings) {
    this.file = settings.logFile;
    this.max = settings.logMaxBytes;
    /** The longest line of a tool's output that run() passes on (and holds in memory). */
    this.lineMax = settings.limits.logLineMaxBytes;
    this.flag = path.join(settings.stateDir, 'log-truncated');
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    fs.mkdirSync(settings.stateDir, { recursive: true });
    this.size = fileSize(this.file);
    this.truncated = fs.existsSync(this.flag);
    this.endsWithNewline = true;
  }

  /** @param {string | Buffer} chunk */
  write(chunk) {
    if (this.truncated) return;
    let bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    if (bytes.length === 0) return;
    const room = this.max - this.size;
    if (bytes.length <= room) {
      this.append(bytes);
      return;
    }
    let cut = Math.max(0, room);
    // Never split a UTF-8 sequence: back up to the start of the character that crosses the cap.
    while (cut > 0 && (bytes[cut] & 0xc0) === 0x80) cut--;
    if (cut > 0) this.append(bytes.subarray(0, cut));
    this.append(Buffer.from(`${this.endsWithNewline ? '' : '\n'}[log truncated at ${this.max} bytes]\n`));
    this.truncated = true;
    fs.writeFileSync(this.flag, '');
  }

  /** One line of the builder's own. Control characters are blanked: values from the job must not forge log lines. */
  line(text) {
    this.write(`${oneLine(text, 4000)}\n`);
  }

  append(bytes) {
    fs.appendFileSync(this.file, bytes);
    echo(bytes);
    this.size += bytes.length;
    this.endsWithNewline = bytes[bytes.length - 1] === 0x0a;
  }
}

// The echo is a courtesy (CodeBuild's console, a person's terminal); a closed stdout must not stop the build.
let stdoutOpen = true;
process.stdout.on('error', () => {
  stdoutOpen = false;
});

/** Writes to stdout unless it has gone away. */
export function echo(bytes) {
  if (stdoutOpen) process.stdout.write(bytes);
}

function fileSize(file) {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

/** A value made safe for a one-line message: no control characters (ANSI colours included), bounded length. */
export function oneLine(text, max = 300) {
  const flat = String(text)
    // eslint-disable-next-line no-control-regex
    .replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '')
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return flat.length > max ? `${flat.slice(0, max - 3)}...` : flat;
}

/** Clone URLs may carry credentials (https://user:token@host/...); they never reach the log or a message. */
export function redactUrl(value) {
  try {
    const url = new URL(value);
    if (url.username || url.password) {
      url.username = '';
      url.password = '';
    }
    return url.toString();
  } catch {
    return value;
  }
}

// ---- processes ---------------------------------------------------------------------------------------------------

/**
 * Runs a program (argv, no shell) with its stdout and stderr streamed into the log.
 * Resolves with the exit code (127 when it could not start) and the last lines of its output.
 * `answerPrefix`: stdout lines starting with it and a tab are the program's answers, not output: they are kept
 * (without the prefix and tab) in `answers`, and neither logged nor captured.
 * @returns {Promise<{ code: number, signal: string | null, lines: string[], output?: string, answers: string, error?: string }>}
 */
export function run(log, command, args, { cwd, env, quiet = false, capture = false, answerPrefix = '' } = {}) {
  return new Promise((resolve) => {
    const lines = [];
    let partial = '';
    let captured = '';
    const keep = (chunk) => {
      const text = partial + chunk.toString('utf8');
      const parts = text.split('\n');
      partial = parts.pop() ?? '';
      for (const l of parts) {
        lines.push(l.length > TAIL_LINE_BYTES ? l.slice(0, TAIL_LINE_BYTES) : l);
        if (lines.length > TAIL_LINES) lines.shift();
      }
      if (partial.length > TAIL_LINE_BYTES) partial = partial.slice(0, TAIL_LINE_BYTES);
    };
    let child;
    try {
      child = spawn(command, args, { cwd, env, shell: false, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      resolve({ code: 127, signal: null, lines: [], answers: '', error: errorText(err) });
      return;
    }
    running.add(child);
    // Each stream's lines are cut at the log's line limit before anything holds them (the builder's own helpers,
    // whose output is captured whole, excepted): a line that never ends costs no memory.
    const lineMax = capture ? Infinity : log.lineMax ?? Infinity;
    const sink = () => {
      const cut = lineCutter(lineMax);
      return (chunk) => {
        const kept = cut(chunk);
        if (kept.length === 0) return;
        keep(kept);
        if (capture) captured += kept.toString('utf8');
        if (!quiet) log.write(kept);
      };
    };
    const onData = sink();
    const onStderr = sink();
    // With answers to pick out, stdout goes on line by line (whole lines: a chunk may end inside one).
    const tag = answerPrefix ? Buffer.from(`${answerPrefix}\t`) : null;
    let answers = '';
    let pending = Buffer.alloc(0);
    const sortLine = (line) => {
      const answer = tag && line.subarray(0, tag.length).equals(tag);
      if (answer && answers.length + line.length <= MAX_ANSWER_BYTES) answers += line.subarray(tag.length).toString('utf8');
      else if (!answer) onData(line);
    };
    const onStdout = (chunk) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      for (let end = pending.indexOf(0x0a); end >= 0; end = pending.indexOf(0x0a)) {
        sortLine(pending.subarray(0, end + 1));
        pending = pending.subarray(end + 1);
      }
      // A line that never ends is output, not an answer: it goes on as it comes.
      if (pending.length > MAX_ANSWER_BYTES) {
        onData(pending);
        pending = Buffer.alloc(0);
      }
    };
    child.stdout.on('data', tag ? onStdout : onData);
    child.stderr.on('data', onStderr);
    child.on('error', (err) => {
      running.delete(child);
      resolve({ code: 127, signal: null, lines, answers, error: errorText(err) });
    });
    child.on('close', (code, signal) => {
      running.delete(child);
      if (pending.length) sortLine(pending);
      if (partial) lines.push(partial);
      if (!quiet && partial && !log.truncated) log.write('\n');
      resolve({ code: code ?? 128, signal, lines, output: captured, answers });
    });
  });
}

/**
 * A filter for one stream that passes on at most `max` bytes of each line (newline not counted): the rest of a longer
 * line is dropped, and a note says where. It holds no more than the chunk it is given.
 * @returns {(chunk: Buffer) => Buffer}
 */
export function lineCutter(max) {
  if (!Number.isFinite(max)) return (chunk) => chunk;
  let length = 0;
  let cutting = false;
  const note = Buffer.from(` [line cut at ${max} bytes (ENOT_BUILD_LOG_LINE_MAX_BYTES)]`);
  return (chunk) => {
    const parts = [];
    for (let start = 0; start < chunk.length;) {
      const nl = chunk.indexOf(0x0a, start);
      const stop = nl === -1 ? chunk.length : nl;
      if (!cutting) {
        let room = max - length;
        if (stop - start <= room) {
          parts.push(chunk.subarray(start, nl === -1 ? stop : stop + 1));
          length += stop - start;
        } else {
          // Never split a UTF-8 sequence.
          while (room > 0 && (chunk[start + room] & 0xc0) === 0x80) room--;
          parts.push(chunk.subarray(start, start + room), note);
          cutting = true;
          if (nl !== -1) parts.push(Buffer.from('\n'));
        }
      } else if (nl !== -1) {
        parts.push(Buffer.from('\n'));
      }
      if (nl !== -1) {
        length = 0;
        cutting = false;
      }
      start = nl === -1 ? chunk.length : nl + 1;
    }
    return parts.length === 1 ? parts[0] : Buffer.concat(parts);
  };
}

/** The children started by run() that have not ended. */
const running = new Set();

/** Passes a stop signal on to the children still running (the runner may signal only this process). */
export function stopChildren(signal) {
  for (const child of running) child.kill(signal);
}

function errorText(err) {
  return err instanceof Error ? err.message : String(err);
}

/** The absolute path of an executable found on `searchPath`, or '' when there is none. */
export function which(program, searchPath) {
  for (const dir of searchPath.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, program);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return '';
}

/**
 * The environment every child gets: none of the builder's own (no credentials, no bucket, no job variables), a
 * HOME inside the work dir, and the selected OTP release first on PATH.
 */
export function childEnv(settings, state, extra = {}) {
  const pathValue = state.otpBin ? `${state.otpBin}${path.delimiter}${settings.basePath}` : settings.basePath;
  return {
    PATH: pathValue,
    HOME: settings.homeDir,
    LANG: 'C.UTF-8',
    TERM: 'dumb',
    TMPDIR: '/tmp',
    ...extra,
  };
}

/**
 * The most useful line of a failed tool's output: the first `file:line: error` (warnings skipped), else the last
 * line mentioning an error, else the last non-empty line. The first located error is the cause more often than the
 * last: later ones tend to follow from it.
 */
export function errorLine(lines) {
  const all = lines.map((l) => oneLine(l, 1000)).filter((l) => l !== '');
  // make's own "*** [all] Error 1" only repeats that something failed.
  const useful = all.filter((l) => !/^g?make(\[\d+\])?: \*\*\*/.test(l));
  const clean = useful.length ? useful : all;
  const located = clean.find((l) => /^[^\s:]+:\d+(:\d+)?: /.test(l) && !/: [Ww]arning: /.test(l));
  if (located) return oneLine(located);
  const mentioning = [...clean].reverse().find((l) => /error|failed|fatal|undefined|crash/i.test(l));
  if (mentioning) return oneLine(mentioning);
  return clean.length ? oneLine(clean[clean.length - 1]) : 'no output';
}

/** True when `child` is `parent` or lies under it (both absolute and already resolved). */
export function isInside(parent, child) {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** Compares dotted version strings numerically ("26.2.5" > "26.2"). */
export function compareVersions(a, b) {
  const pa = a.split('.').map((x) => Number.parseInt(x, 10) || 0);
  const pb = b.split('.').map((x) => Number.parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? -1) - (pb[i] ?? -1);
    if (d !== 0) return d;
  }
  return 0;
}

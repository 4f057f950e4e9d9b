#!/usr/bin/env node
// `node probe-sandbox.mjs`: tries the build sandbox the way a build's check step does, under ENOT_WORK_DIR, and prints
// {"mode","reason","uid"} as one JSON line: the local builder asks it at start, for its log line and GET /health.
import fs from 'node:fs';
import { readSettings } from './common.mjs';
import { probeSandbox } from './sandbox.mjs';

const settings = readSettings();
fs.mkdirSync(settings.stateDir, { recursive: true });
try {
  process.stdout.write(`${JSON.stringify(probeSandbox(settings))}\n`);
} finally {
  fs.rmSync(settings.workDir, { recursive: true, force: true });
}

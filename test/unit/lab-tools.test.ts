import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { LAB_TOOLS, missingTools, onPath } from '../lab/tools.js';

test('a missing lab tool is named with its Debian package and the set-up command', () => {
  const msg = missingTools({ ip: 'iproute2', 'surgery-edge-no-such-tool': 'no-such-package' });
  assert.ok(msg, 'a tool that does not exist must be reported');
  assert.match(msg, /surgery-edge-no-such-tool \(Debian package no-such-package\)/);
  assert.match(msg, /scripts\/setup-system as root \(or apt-get install no-such-package\)/);
  assert.doesNotMatch(msg, /\bip \(/, 'a tool that is present is not listed');
});

test('a tool is found only where PATH has it as an executable', () => {
  const dir = mkdtempSync(join(tmpdir(), 'se-tools-'));
  try {
    writeFileSync(join(dir, 'se-tool-x'), '#!/bin/sh\n', { mode: 0o755 });
    writeFileSync(join(dir, 'se-tool-plain'), 'not executable', { mode: 0o644 });
    assert.equal(onPath('se-tool-x', `/nonexistent:${dir}`), true);
    assert.equal(onPath('se-tool-x', '/nonexistent'), false);
    assert.equal(onPath('se-tool-plain', dir), false, 'a file without the x bit is not a command');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every lab tool maps to a package', () => {
  for (const [cmd, pkg] of Object.entries(LAB_TOOLS)) assert.match(pkg, /^[a-z0-9.+-]+$/, cmd);
});

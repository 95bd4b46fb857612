import { spawnSync } from 'child_process';
import { join } from 'path';

describe('soak, short form', () => {
  it('opens and closes 2,000 sessions across transports, leaves nothing behind, and holds its memory bounds', () => {
    const script = join(__dirname, '..', 'scripts', 'soak.js');
    const result = spawnSync(process.execPath, [script, '--sessions', '2000', '--max-seconds', '90'], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    const output = `${result.stdout}${result.stderr}`;
    for (const scenario of ['backpressure-ignoring writer', 'flood of tiny messages', 'stalled inbound pipe']) {
      expect(output).toMatch(new RegExp(`soak: ${scenario}: heap [+-][\\d.]+ MB \\(limit [^)]+\\): pass`));
    }
    expect(output).toContain('soak: 10 passed, 0 failed');
    expect(result.status).toBe(0);
  }, 130_000);
});

import { spawnSync } from 'child_process';
import { join } from 'path';

describe('soak, short form', () => {
  it('opens and closes 2,000 sessions across transports and leaves nothing behind', () => {
    const script = join(__dirname, '..', 'scripts', 'soak.js');
    const result = spawnSync(process.execPath, [script, '--sessions', '2000', '--max-seconds', '90'], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    const output = `${result.stdout}${result.stderr}`;
    expect(output).toContain('soak: 7 passed, 0 failed');
    expect(result.status).toBe(0);
  }, 130_000);
});

/**
 * The results table an end-to-end suite prints after its tests: a row per environment and
 * transport, a column per check. Jest lists failures one at a time; the table shows at a glance
 * which transports fail what, and where.
 */
export class Outcomes<C extends string> {
  // environment -> transport -> check -> outcome
  private readonly results = new Map<string, Map<string, Map<C, string>>>();

  /**
   * @param title the table's first line
   * @param checks its columns after environment and transport, in order
   * @param transports the order of an environment's rows, kept whatever order the tests ran in;
   *   without it, the order in which they were first recorded
   */
  constructor(
    private readonly title: string,
    private readonly checks: readonly C[],
    private readonly transports?: readonly string[],
  ) {}

  /** Sets one cell; a test records 'FAIL' first, so that one that throws leaves that. */
  record(environment: string, transport: string, check: C, outcome: string): void {
    let byTransport = this.results.get(environment);
    if (!byTransport) this.results.set(environment, (byTransport = new Map()));
    let byCheck = byTransport.get(transport);
    if (!byCheck) byTransport.set(transport, (byCheck = new Map()));
    byCheck.set(check, outcome);
  }

  /** The title and the table, columns padded to line up; '-' where a check did not run. */
  table(): string {
    const header = ['environment', 'transport', ...this.checks];
    const rows: string[][] = [];
    for (const [environment, byTransport] of this.results) {
      for (const transport of this.transports ?? byTransport.keys()) {
        const byCheck = byTransport.get(transport);
        if (byCheck) rows.push([environment, transport, ...this.checks.map((check) => byCheck.get(check) ?? '-')]);
      }
    }
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
    return [this.title, line(header), ...rows.map(line)].join('\n');
  }
}

// Reports depend on results/ only (DESIGN.md), so they cannot throw the CLI's InputError. They
// throw this instead; the report commands in harness/cli turn it into InputError (exit 2).

/** Bad input to a report: a missing run dir, unreadable results.json, runs that cannot be paired. */
export class ReportInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReportInputError';
  }
}

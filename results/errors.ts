// Error classes that carry an exit code (in results/ so every layer may import them).
// exit code (DESIGN.md "Errors": 0 ok, 1 regression/threshold failed, 2 usage or input error,
// 3 internal error).

/** Bad input from the user: a one-line message naming the thing, what was expected, and the fix. */
export class InputError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}

export function isInputError(error: unknown): error is InputError {
  return error instanceof InputError;
}

/**
 * Bad input from the user: a scenario file that cannot be read, parsed or validated.
 * The message is always one line, `file:line:col: path: what is wrong` where a position is known;
 * the CLI prints it as `asidlab: <message>` and exits with status 2.
 */
export class InputError extends Error {
  constructor(message: string) {
    super(message.replace(/\s*[\r\n]+\s*/g, " ").trim());
    this.name = "InputError";
  }
}

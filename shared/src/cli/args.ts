/** A small command-line reader: `--name value` options, `--flag` switches and positional arguments. */
export class UsageError extends Error {}

export interface ParsedArgs {
  options: Map<string, string[]>;
  flags: Set<string>;
  positional: string[];
}

/**
 * Reads `argv`. `valued` lists the options that take a value (repeatable); `switches` those that do
 * not. Anything else starting with `--` is a usage error.
 */
export function parseArgs(argv: string[], valued: string[], switches: string[] = []): ParsedArgs {
  const options = new Map<string, string[]>();
  const flags = new Set<string>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    if (switches.includes(name) && eq < 0) {
      flags.add(name);
    } else if (valued.includes(name)) {
      const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
      if (v === undefined || v === '') throw new UsageError(`--${name} needs a value`);
      options.set(name, [...(options.get(name) ?? []), v]);
    } else {
      throw new UsageError(`unknown option --${name}`);
    }
  }
  return { options, flags, positional };
}

/** The last value given for an option. */
export function option(p: ParsedArgs, name: string): string | undefined {
  const v = p.options.get(name);
  return v?.[v.length - 1];
}

/** Every value of a repeatable option, comma-separated values split. */
export function optionList(p: ParsedArgs, name: string): string[] {
  return (p.options.get(name) ?? [])
    .flatMap((v) => v.split(','))
    .map((s) => s.trim())
    .filter(Boolean);
}

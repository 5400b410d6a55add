// A command's words: node:util parseArgs with the house rules every command shares. A word
// parseArgs refuses is a usage error (exit 2, with the command's help); `--help` prints the
// help (exit 0). Either way the command is done, and gets the exit status instead.
import { parseArgs, type ParseArgsConfig } from 'node:util'
import type { Io } from './io.js'

type Options = NonNullable<ParseArgsConfig['options']>
export type Parsed<O extends Options> = ReturnType<typeof parseArgs<{ args: string[]; options: O & typeof HELP_OPTION; allowPositionals: true }>>

const HELP_OPTION = { help: { type: 'boolean', short: 'h' } } as const

/** The parsed words, or the exit status when usage or help already answered. */
export function parseCommand<const O extends Options>(io: Io, command: string, help: string, args: string[], options: O): Parsed<O> | number {
  let parsed: Parsed<O>
  try {
    parsed = parseArgs({ args, options: { ...options, ...HELP_OPTION }, allowPositionals: true }) as Parsed<O>
  } catch (e) {
    io.err(`tongban ${command}: ${(e as Error).message}\n\n${help}`)
    return 2
  }
  if ((parsed.values as { help?: boolean }).help) {
    io.out(help)
    return 0
  }
  return parsed
}

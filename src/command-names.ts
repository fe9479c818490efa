/** Every command, by the family whose module registers it (src/cli.ts loads one family per run). */
export const COMMAND_FAMILIES = {
  build: ['builder', 'bin'],
  image: ['image'],
  publish: ['publish', 'push', 'index'],
  release: ['release'],
  mirror: ['mirror'],
  sandboxConfig: ['sandbox-config'],
  clean: ['clean'],
} as const;

export const COMMANDS: ReadonlySet<string> = new Set(Object.values(COMMAND_FAMILIES).flat());

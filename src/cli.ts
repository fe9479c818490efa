/** Arguments → one task list. Each command family registers itself from src/commands/. */
import type { Command } from 'commander';
import type { Runtime } from './commands/common.ts';
import { COMMAND_FAMILIES } from './command-names.ts';
import { PauseBuildError, formatError } from './errors.ts';
import { annotateError, inActions, maskEnvSecrets, maskSecretSync } from './github.ts';
import { onSecret } from './registry/redact.ts';
import { packageVersion } from './project.ts';


const interrupt = new AbortController();
let debug = false;
let command: string | undefined;
const runtime: Runtime = { signal: interrupt.signal, debug: () => debug };

type Register = (cli: Command, runtime: Runtime) => void;

/** Command families in help order; each module is loaded only when its commands are needed. */
const FAMILIES: readonly { readonly commands: readonly string[]; readonly load: () => Promise<Register> }[] = [
  { commands: COMMAND_FAMILIES.build, load: async () => (await import('./commands/build.ts')).registerBuildCommands },
  { commands: COMMAND_FAMILIES.image, load: async () => (await import('./commands/image.ts')).registerImageCommands },
  { commands: COMMAND_FAMILIES.publish, load: async () => (await import('./commands/publish.ts')).registerPublishCommands },
  { commands: COMMAND_FAMILIES.release, load: async () => (await import('./commands/release.ts')).registerReleaseCommands },
  { commands: COMMAND_FAMILIES.mirror, load: async () => (await import('./commands/mirror.ts')).registerMirrorCommands },
  { commands: COMMAND_FAMILIES.sandboxConfig, load: async () => (await import('./commands/sandbox-config.ts')).registerSandboxConfigCommands },
  { commands: COMMAND_FAMILIES.clean, load: async () => (await import('./commands/clean.ts')).registerCleanCommands },
];

/**
 * The families to register for these arguments: the one that owns the command named, so
 * that `mirror` does not load the compile and image code; all for help or anything else.
 */
function familiesFor(args: readonly string[]): typeof FAMILIES {
  const name = args.find((a) => !a.startsWith('-'));
  const owner = FAMILIES.find((f) => name !== undefined && f.commands.includes(name));
  return owner ? [owner] : FAMILIES;
}

async function program(args: readonly string[]): Promise<Command> {
  const { Command } = await import('commander');
  const cli = new Command('pause-build')
    .description('Build, verify, publish and mirror the Kubernetes pause image')
    .version(packageVersion(), '-V, --tool-version', 'print the pause-build version')
    .option('--debug', 'full output from every step, and stack traces')
    .showHelpAfterError('(run pause-build --help for usage)')
    .hook('preAction', (cmd, action) => {
      debug = Boolean(cmd.opts().debug);
      command = action.name();
    });
  const registers = await Promise.all(familiesFor(args).map((f) => f.load()));
  for (const register of registers) register(cli, runtime);
  return cli;
}

/** `--tool-version` alone: answered before commander or any command family is loaded. */
const VERSION_ONLY = new Set(['-V', '--tool-version']);

async function main(argv: string[]): Promise<number> {
  if (argv.length === 3 && VERSION_ONLY.has(argv[2]!)) {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  // In GitHub Actions, secrets from the environment are masked before anything is printed,
  // and every credential read later (--password-stdin, docker config, helpers, tokens) as
  // soon as it is read, before it is sent anywhere.
  await maskEnvSecrets();
  if (inActions()) onSecret((secret) => maskSecretSync(secret));
  const stop = (signal: NodeJS.Signals) => {
    if (interrupt.signal.aborted) process.exit(130);
    process.stderr.write(`\n${signal}: stopping, cleaning up…\n`);
    interrupt.abort(new PauseBuildError(`interrupted by ${signal}`, { exitCode: 130 }));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    await (await program(argv.slice(2))).parseAsync(argv);
    return 0;
  } catch (err) {
    if (interrupt.signal.aborted) {
      process.stderr.write('error: interrupted\n');
      return 130;
    }
    process.stderr.write(`${formatError(err)}\n`);
    await annotateError(err, command);
    if (debug && err instanceof PauseBuildError && err.details) process.stderr.write(`${err.details.trimEnd()}\n`);
    if (debug && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    return err instanceof PauseBuildError ? err.exitCode : 1;
  }
}

// A command still waiting when nothing is left to wake it (a promise that can never settle)
// ends here: without this it would exit 0, as if everything had been done.
// ('beforeExit' comes only when the event loop runs dry, never after process.exit().)
let finished = false;
process.once('beforeExit', () => {
  if (finished) return;
  process.stderr.write('error: pause-build stopped before the command was done (internal error); nothing after its last step was carried out\n');
  process.exitCode = 70;
});

// No top-level await: the bundle is a CommonJS file (see scripts/bundle.mjs).
void main(process.argv).then((code) => {
  finished = true;
  process.exitCode = code;
});

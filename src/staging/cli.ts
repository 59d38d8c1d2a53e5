// `tapedeck stager`: the staging worker as its own process (external stager mode).
import type { Command } from 'commander';

export function registerStagerCommand(program: Command): void {
  void program;
}

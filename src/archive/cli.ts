// Operator commands of the tape tier (tape ls/label/export/import, archive, recall, jobs).
import type { Command } from 'commander';

export function registerTapeCommands(program: Command): void {
  void program;
}

// Prints the README's configuration reference table from the settings table.
import { SETTINGS, envVarOf } from '../src/config.js';

const rows = SETTINGS.map((s) => {
  const flag = s.type === 'bool' ? `\`--${s.flag}\` / \`--no-${s.flag}\`` : `\`--${s.flag} ${s.arg}\`${s.type === 'list' ? ' (repeatable)' : ''}`;
  return `| \`${s.key}\` | ${flag} | \`${envVarOf(s)}\` | ${s.default} | ${s.description} |`;
});
process.stdout.write(['| config key | flag | environment | default | meaning |', '|---|---|---|---|---|', ...rows].join('\n') + '\n');

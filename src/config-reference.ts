// The settings table (config.ts) rendered for people: systemd/tapedeck.conf, the commented
// default configuration that the installer puts at /etc/tapedeck/tapedeck.conf (so it can never
// drift from what the server accepts; test/systemd.test.ts checks the committed file against
// this output), and the configuration table of the README.
//
//   npm run -s gen-config               rewrite systemd/tapedeck.conf
//   npm run -s gen-config -- --check    exit 1 when it is out of date
//   npm run -s gen-config -- --stdout   print it
//   npm run -s gen-config -- --readme   print the README's configuration table

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_CONFIG_FILE, envVarOf, parseConfigText, SETTINGS, type Setting } from './config.js';
import { REPO_ROOT } from './util/paths.js';

export const CONFIG_PATH = join(REPO_ROOT, 'systemd', 'tapedeck.conf');

/**
 * Example values for settings whose documented default is prose rather than a
 * value (e.g. "every up interface"), chosen for the installed service.
 */
export const EXAMPLES: Record<string, string> = {
  media_dir: '/srv/media',
  data_dir: '/var/lib/tapedeck',
  friendly_name: 'Tapedeck on nas',
  interface: 'eth0',
  allow: '192.168.1.0/24',
  ffprobe: '/usr/bin/ffprobe',
  tape_dir: '/var/lib/tapedeck/vtl',
  cache_dir: '/var/cache/tapedeck',
  disk_high_watermark: '80%',
  disk_low_watermark: '70%',
  keep_on_disk: 'Music/**',
  policy_window: '01:00-06:00',
};

/** What a setting means for the installed service (systemd units), printed under its description. */
export const SERVICE_NOTES: Record<string, string> = {
  data_dir: 'Under systemd the default is /var/lib/tapedeck; another directory needs ReadWritePaths= in a drop-in (systemd/README.md).',
  tape_backend: 'scsi needs the external stager (tapedeck-stager.service and the stager setting below): the server itself has no access to devices.',
  cache_dir: 'Under systemd the default is /var/cache/tapedeck.',
  stager: 'With tapedeck-stager.service enabled: stager = /run/tapedeck/stager.sock',
};

/** True when `value` is accepted for the setting by the real config parser. */
function parses(s: Setting, value: string): boolean {
  try {
    parseConfigText(`${s.key} = ${value}`, 'example');
    return true;
  } catch {
    return false;
  }
}

/** The value shown on a setting's commented-out line: always one the parser accepts. */
export function exampleValue(s: Setting): string {
  const d = s.default.trim();
  const candidates: string[] = [];
  if (s.type === 'string' || s.type === 'list') {
    // A prose default ("(none)", "every ...") would parse as a string: only plain words count.
    if (EXAMPLES[s.key] !== undefined) candidates.push(EXAMPLES[s.key]);
    if (/^[A-Za-z0-9._\/:@+-]+$/.test(d)) candidates.push(d);
    const eg = /e\.g\. ([^\s,;]+)/.exec(s.description);
    if (eg) candidates.push(eg[1].replace(/[.)]+$/, ''));
  } else {
    candidates.push(d);
    if (EXAMPLES[s.key] !== undefined) candidates.push(EXAMPLES[s.key]);
    if (s.type === 'enum' && s.values?.length) candidates.push(s.values[0]);
    if (s.type === 'bool') candidates.push('true');
    if (s.min !== undefined) candidates.push(String(s.min));
    candidates.push('0', '1');
  }
  candidates.push(s.arg ?? 'VALUE');
  return candidates.find((c) => parses(s, c)) ?? candidates[0];
}

/** Wraps prose into "# "-prefixed lines of at most `width` characters. */
function comment(text: string, width = 78): string[] {
  const out: string[] = [];
  let line = '#';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line.length > 1 && line.length + 1 + word.length > width) {
      out.push(line);
      line = '#';
    }
    line += ' ' + word;
  }
  if (line.length > 1) out.push(line);
  return out;
}

const HEADER = `\
# ${DEFAULT_CONFIG_FILE}: Tapedeck configuration
#
# One "key = value" per line; lines starting with # are comments. Settings
# marked (list) may be given on several lines, one value each.
# Every setting is listed below, commented out, with its default: remove the
# leading "#" and edit the value to change it. Command-line flags and
# TAPEDECK_<KEY> environment variables override this file.
#
# The service runs as user "tapedeck": media directories must be readable by
# it (for example through a group it is in: see systemd/README.md).
# Check the effective settings:  tapedeck config --config ${DEFAULT_CONFIG_FILE}
# Apply them:                    systemctl restart tapedeck
#
# Generated from the settings table (src/config.ts) by src/config-reference.ts.
# The installer never overwrites a copy you have edited.
`;

export function renderDefaultConfig(settings: readonly Setting[] = SETTINGS): string {
  const blocks = settings.map((s) => {
    const lines = comment(s.description + (s.type === 'list' ? ' (list)' : ''));
    if (s.type === 'enum' && s.values?.length) lines.push(...comment(`One of: ${s.values.join(', ')}.`));
    else if ((s.type === 'int' || s.type === 'number') && (s.min !== undefined || s.max !== undefined)) {
      lines.push(`# Range: ${s.min ?? '-inf'}..${s.max ?? 'inf'}.`);
    }
    lines.push(...comment(`Default: ${s.default}`));
    if (SERVICE_NOTES[s.key]) lines.push(...comment(SERVICE_NOTES[s.key]));
    lines.push(`#${s.key} = ${exampleValue(s)}`);
    return lines.join('\n');
  });
  return HEADER + '\n' + blocks.join('\n\n') + '\n';
}

/** The README's configuration table: one row per setting (key, flag, environment, default, meaning). */
export function renderReadmeTable(settings: readonly Setting[] = SETTINGS): string {
  const rows = settings.map((s) => {
    const flag = s.type === 'bool' ? `\`--${s.flag}\` / \`--no-${s.flag}\`` : `\`--${s.flag} ${s.arg}\`${s.type === 'list' ? ' (repeatable)' : ''}`;
    return `| \`${s.key}\` | ${flag} | \`${envVarOf(s)}\` | ${s.default} | ${s.description} |`;
  });
  return ['| config key | flag | environment | default | meaning |', '|---|---|---|---|---|', ...rows].join('\n') + '\n';
}

function main(argv: string[]): number {
  if (argv.includes('--readme')) {
    process.stdout.write(renderReadmeTable());
    return 0;
  }
  const text = renderDefaultConfig();
  if (argv.includes('--stdout')) {
    process.stdout.write(text);
    return 0;
  }
  if (argv.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(CONFIG_PATH, 'utf8');
    } catch {
      /* missing counts as out of date */
    }
    if (current === text) return 0;
    process.stderr.write(`${CONFIG_PATH} is out of date: run npm run gen-config\n`);
    return 1;
  }
  writeFileSync(CONFIG_PATH, text);
  process.stdout.write(`wrote ${CONFIG_PATH}\n`);
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) process.exitCode = main(process.argv.slice(2));

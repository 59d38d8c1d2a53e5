// SubRip (.srt) → WebVTT, for `/subtitles/<id>.<n>.vtt` of a stored SRT (http/subtitles.ts).
//
// What changes (W3C WebVTT §4): a `WEBVTT` header line; timestamps `00:01:02,500` become
// `00:01:02.500` (hours at least two digits, milliseconds exactly three: `1:2:3,5` → `01:02:03.500`);
// SRT's cue numbers go (a cue identifier is optional in WebVTT and SRT numbers are often wrong);
// SRT's `X1:... Y2:...` coordinates after the times are dropped (WebVTT settings are different);
// `-->` inside a cue's text, which would end the cue in WebVTT, is escaped. Text, including the
// <b> <i> <u> tags both know, is kept.
//
// Input as found in the wild: CRLF, CR or LF line ends; a UTF-8 or UTF-16 byte order mark; no
// blank line between cues (a new timing line starts a new cue); blank lines and numbers where
// none should be; legacy 8-bit text. WebVTT is always UTF-8, so the bytes are decoded: UTF-16 by
// its BOM, UTF-8 when they are valid UTF-8, otherwise Windows-1252 (what an SRT that is not UTF-8
// nearly always is; the .srt URL still serves the bytes as they are, for clients that know
// better). Lines that are neither timing nor text of a cue are dropped. Memory: the input is at
// most MAX_SUBTITLE_BYTES (the caller refuses more); the output is a bounded multiple of it
// (each cue's timing line is rewritten to at most ~40 bytes, text is copied once).

const TIMING = /^\s*(\d{1,3}):(\d{1,2}):(\d{1,2})[,.](\d{1,3})\s*-->\s*(\d{1,3}):(\d{1,2}):(\d{1,2})[,.](\d{1,3})(?:\s.*)?$/;
const NUMBER = /^\s*\d+\s*$/;

function stamp(h: string, m: string, s: string, ms: string): string {
  return `${h.padStart(2, '0')}:${m.padStart(2, '0')}:${s.padStart(2, '0')}.${ms.padEnd(3, '0')}`;
}

/** Text of an SRT file's bytes (see the header: BOM, UTF-8, else Windows-1252). */
export function decodeSubtitleText(buf: Uint8Array): string {
  if (buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) return new TextDecoder('utf-8').decode(buf.subarray(3));
  if (buf.length >= 2 && buf[0] === 0xff && buf[1] === 0xfe) return new TextDecoder('utf-16le').decode(buf.subarray(2));
  if (buf.length >= 2 && buf[0] === 0xfe && buf[1] === 0xff) {
    const le = Buffer.from(buf.subarray(2, 2 + ((buf.length - 2) & ~1)));
    le.swap16();
    return new TextDecoder('utf-16le').decode(le);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch {
    return decodeWindows1252(buf);
  }
}

// 0x80-0x9F of Windows-1252 (Node's TextDecoder maps them to C1 controls, as Latin-1); 0 = unused
const CP1252_HIGH = [
  0x20ac, 0, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017d, 0,
  0, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0, 0x017e, 0x0178,
];

function decodeWindows1252(buf: Uint8Array): string {
  const parts: string[] = [];
  const CHUNK = 8192;
  for (let i = 0; i < buf.length; i += CHUNK) {
    const codes: number[] = [];
    for (const b of buf.subarray(i, i + CHUNK)) codes.push(b >= 0x80 && b <= 0x9f ? CP1252_HIGH[b - 0x80] || 0xfffd : b);
    parts.push(String.fromCharCode(...codes));
  }
  return parts.join('');
}

/** WebVTT text of an SRT file's text. */
export function srtToVtt(srt: string): string {
  const out: string[] = ['WEBVTT', ''];
  const lines = srt.split(/\r\n|\r|\n/);
  let inCue = false;
  let pendingNumber: string | undefined; // a number line: a cue number if a timing line follows
  for (const line of lines) {
    const m = TIMING.exec(line);
    if (m) {
      if (inCue) out.push(''); // no blank line before this cue in the SRT
      out.push(`${stamp(m[1]!, m[2]!, m[3]!, m[4]!)} --> ${stamp(m[5]!, m[6]!, m[7]!, m[8]!)}`);
      inCue = true;
      pendingNumber = undefined;
      continue;
    }
    if (pendingNumber !== undefined) {
      // the number was text of the cue after all
      if (inCue) out.push(pendingNumber);
      pendingNumber = undefined;
    }
    if (line.trim() === '') {
      if (inCue) out.push('');
      inCue = false;
      continue;
    }
    if (NUMBER.test(line)) {
      pendingNumber = line;
      continue;
    }
    if (inCue) out.push(line.replaceAll('-->', '--&gt;'));
    // text outside a cue (junk before the first timing line): dropped
  }
  if (pendingNumber !== undefined && inCue) out.push(pendingNumber);
  if (out[out.length - 1] !== '') out.push('');
  return out.join('\n');
}

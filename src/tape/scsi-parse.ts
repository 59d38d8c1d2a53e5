// Parsers for the text output of `mtx status` (mtx 1.3) and `mt status` / `mt tell` (mt-st).
// Formats follow the printf formats of those programs:
//
//   mtx:   "  Storage Changer /dev/sg3:2 Drives, 24 Slots ( 1 Import/Export )"
//          "Data Transfer Element 0:Full (Storage Element 3 Loaded):VolumeTag = TD0003L9"
//          "Data Transfer Element 1:Empty"
//          "      Storage Element 1:Full :VolumeTag=TD0001L9"
//          "      Storage Element 24 IMPORT/EXPORT:Empty"
//   mt-st: "SCSI 2 tape drive:"
//          "File number=0, block number=0, partition=0."
//          "Tape block size 262144 bytes. Density code 0x60 (LTO-9)."
//          "Soft error count since last status=0"
//          "General status bits on (41010000):"
//          " BOT ONLINE IM_REP_EN"
//          "At block 1234."                                  (mt tell)
//
// mtx numbers drives (Data Transfer Elements) from 0 and storage elements from 1;
// import/export elements are storage elements flagged IMPORT/EXPORT and are
// counted in "Slots".

import { TapeError } from './types.js';

export interface MtxElement {
  /** Storage element number (1-based). */
  slot: number;
  full: boolean;
  importExport: boolean;
  volumeTag?: string;
  alternateVolumeTag?: string;
}

export interface MtxDrive {
  /** Data Transfer Element number (0-based). */
  drive: number;
  full: boolean;
  /** Storage element the medium came from, when the changer knows it. */
  sourceSlot?: number;
  volumeTag?: string;
  alternateVolumeTag?: string;
}

export interface MtxStatus {
  device?: string;
  /** Counts announced in the header line (slots include import/export elements). */
  declared?: { drives: number; slots: number; importExport: number };
  drives: MtxDrive[];
  /** All storage elements, import/export ones included, in output order. */
  slots: MtxElement[];
}

const HEADER_RE = /^\s*Storage Changer\s+(.*?):(\d+)\s+Drives?,\s*(\d+)\s+Slots?\s*\(\s*(\d+)\s+Import\/Export\s*\)/i;
const DRIVE_RE = /^\s*Data Transfer Element\s+(\d+)\s*:\s*(Full|Empty)\b(.*)$/i;
const SLOT_RE = /^\s*Storage Element\s+(\d+)(\s+IMPORT\/EXPORT)?\s*:\s*(Full|Empty)\b(.*)$/i;

function tags(rest: string): { volumeTag?: string; alternateVolumeTag?: string } {
  const out: { volumeTag?: string; alternateVolumeTag?: string } = {};
  const alt = /:\s*AlternateVolumeTag\s*=\s*([^:]*)/i.exec(rest);
  const vol = /:\s*VolumeTag\s*=\s*([^:]*)/i.exec(rest);
  const v = vol?.[1]?.trim();
  const a = alt?.[1]?.trim();
  if (v) out.volumeTag = v;
  if (a) out.alternateVolumeTag = a;
  return out;
}

/** Parse `mtx status` output. Lines it does not recognise are ignored; no header and no elements → FORMAT. */
export function parseMtxStatus(text: string): MtxStatus {
  const st: MtxStatus = { drives: [], slots: [] };
  for (const line of text.split(/\r?\n/)) {
    let m = HEADER_RE.exec(line);
    if (m) {
      st.device = m[1]!.trim();
      st.declared = { drives: Number(m[2]), slots: Number(m[3]), importExport: Number(m[4]) };
      continue;
    }
    m = DRIVE_RE.exec(line);
    if (m) {
      const full = m[2]!.toLowerCase() === 'full';
      const d: MtxDrive = { drive: Number(m[1]), full };
      const rest = m[3] ?? '';
      if (full) {
        const src = /\(\s*Storage Element\s+(\d+)\s+Loaded\s*\)/i.exec(rest);
        if (src) d.sourceSlot = Number(src[1]);
        Object.assign(d, tags(rest));
      }
      st.drives.push(d);
      continue;
    }
    m = SLOT_RE.exec(line);
    if (m) {
      const full = m[3]!.toLowerCase() === 'full';
      const e: MtxElement = { slot: Number(m[1]), full, importExport: m[2] !== undefined };
      if (full) Object.assign(e, tags(m[4] ?? ''));
      st.slots.push(e);
    }
  }
  if (!st.declared && st.drives.length === 0 && st.slots.length === 0) {
    throw new TapeError('FORMAT', 'mtx status output not recognised', { details: { output: text.slice(0, 500) } });
  }
  return st;
}

/** General status bits of the Linux st driver (mt_gstat, include/uapi/linux/mtio.h). */
export const GMT = {
  EOF: 0x80000000,
  BOT: 0x40000000,
  EOT: 0x20000000,
  SM: 0x10000000,
  EOD: 0x08000000,
  WR_PROT: 0x04000000,
  ONLINE: 0x01000000,
  D_6250: 0x00800000,
  D_1600: 0x00400000,
  D_800: 0x00200000,
  DR_OPEN: 0x00040000,
  IM_REP_EN: 0x00010000,
  CLN: 0x00008000,
} as const;

export type GmtFlag = keyof typeof GMT;

export interface MtStatus {
  driveType?: string;
  /** st's file number; -1 when unknown (no tape, or after a fast EOD). */
  fileNumber: number;
  /** Block number within the current file; -1 when unknown. */
  blockNumber: number;
  partition?: number;
  /** 0 = variable block mode. */
  blockSize?: number;
  densityCode?: number;
  densityName?: string;
  softErrors?: number;
  gstat: number;
  flags: Set<GmtFlag>;
}

/** Parse `mt status` (mt-st) output. */
export function parseMtStatus(text: string): MtStatus {
  const st: MtStatus = { fileNumber: -1, blockNumber: -1, gstat: 0, flags: new Set() };
  const lines = text.split(/\r?\n/);
  let sawPosition = false;
  let sawBits = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    let m = /^(.*) tape drive:\s*$/.exec(line);
    if (m) {
      st.driveType = m[1]!.trim();
      continue;
    }
    m = /File number\s*=\s*(-?\d+),\s*block number\s*=\s*(-?\d+)(?:,\s*partition\s*=\s*(-?\d+))?/i.exec(line);
    if (m) {
      st.fileNumber = Number(m[1]);
      st.blockNumber = Number(m[2]);
      if (m[3] !== undefined) st.partition = Number(m[3]);
      sawPosition = true;
      continue;
    }
    m = /Tape block size\s+(\d+)\s+bytes\.\s*Density code\s+0x([0-9a-f]+)\s*(?:\((.*)\))?/i.exec(line);
    if (m) {
      st.blockSize = Number(m[1]);
      st.densityCode = parseInt(m[2]!, 16);
      if (m[3] !== undefined) st.densityName = m[3];
      continue;
    }
    m = /Soft error count since last status\s*=\s*(\d+)/i.exec(line);
    if (m) {
      st.softErrors = Number(m[1]);
      continue;
    }
    m = /General status bits on \(([0-9a-f]+)\)/i.exec(line);
    if (m) {
      sawBits = true;
      st.gstat = parseInt(m[1]!, 16) >>> 0;
      const words = (lines[i + 1] ?? '').trim().split(/\s+/).filter(Boolean);
      for (const w of words) if (w in GMT) st.flags.add(w as GmtFlag);
      // trust the bit mask too (in case the flags line is missing)
      for (const [k, bit] of Object.entries(GMT)) if ((st.gstat & bit) >>> 0 === bit) st.flags.add(k as GmtFlag);
      i++;
    }
  }
  if (!sawPosition && !sawBits) {
    throw new TapeError('FORMAT', 'mt status output not recognised', { details: { output: text.slice(0, 500) } });
  }
  return st;
}

/** Parse `mt tell` output: "At block 1234." */
export function parseMtTell(text: string): number {
  const m = /At block\s+(\d+)/i.exec(text);
  if (!m) throw new TapeError('FORMAT', `mt tell output not recognised: ${JSON.stringify(text.slice(0, 200))}`);
  return Number(m[1]);
}

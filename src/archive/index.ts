// Tape tier entry point (archive, recall, import jobs; head stubs; cartridges).

export { ArchiveService, MAX_ATTEMPTS, type ArchiveServiceOptions, type CartridgeInfo, type DriveInfo, type LabelResult, type TapeStatus } from './service.js';
export { openConfiguredLibrary, tapeLibraryConfig } from './library.js';
export { ArchiveError, EXIT_CODES, errorCode, exitCodeOf, type ArchiveErrorCode } from './errors.js';
export { isTerminal, type JobItem, type JobKind, type JobOptions, type JobProgress, type JobRecord, type JobState } from './jobs.js';
export {
  computeStubRanges,
  headBytes,
  mergeRanges,
  openStubRange,
  readStub,
  stubBytes,
  stubCoveredFrom,
  stubCovers,
  stubFileOk,
  stubMissing,
  stubOffset,
  stubPath,
  writeStub,
  type StubOptions,
} from './stubs.js';
export { FAULT_POINTS, faultPoint, type FaultPoint } from './faults.js';

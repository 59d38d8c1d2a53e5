/** Tapedeck's version, as the CLI, the device description, the status page and /metrics show it. */
export const VERSION = '0.1.0';

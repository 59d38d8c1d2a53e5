// Control socket: the operator CLI's way into a running server.

export { startControlServer, type ControlServer, type ControlServerOptions } from './server.js';
export { ControlClient } from './client.js';
export { PROTOCOL_VERSION, SOCKET_NAME } from './protocol.js';

export { ImClient } from './client.js';
export type { ClientEvents, ClientOptions, SocketFactory, SocketLike, Timers } from './client.js';
export { ImError } from './errors.js';
export { fetchRoute, routeGateways } from './route.js';
export type { FetchLike } from './route.js';
export { LocalStorageStore, MemoryStore } from './store.js';
export type { Position, PositionStore } from './store.js';
export { backoffDelay, closeAction } from './backoff.js';
export type { CloseAction } from './backoff.js';
export type {
  GroupInfo, ImMessage, LoginInfo, MemberPage, OutgoingMessage, SendReceipt, State,
} from './types.js';

/** A message of the user's inbox, as pushed or synced (docs/protocol.md section 8). */
export interface ImMessage {
  /** This user's inbox seq: each message is delivered once, in increasing seq order. */
  seq: number;
  /** The message id: a 64-bit decimal string (the same in every copy). */
  mid: string;
  from: string;
  /** The receiver of a 1:1 message. */
  to?: string;
  /** The group of a group message or group event. */
  group?: string;
  type: string;
  body: string;
  extra?: Record<string, unknown>;
  ts: number;
}

export type State = 'disconnected' | 'connecting' | 'syncing' | 'ready';

export interface SendReceipt {
  mid: string;
  /** The seq of the message in the sender's own inbox. */
  seq: number;
  ts: number;
}

export interface OutgoingMessage {
  /** A user id; give exactly one of `to` and `group`. */
  to?: string;
  group?: string;
  body: string;
  /** Default "text". */
  type?: string;
  extra?: Record<string, unknown>;
  /** Default: a fresh random one. A cid names one message for the server's dedup window. */
  cid?: string;
}

export interface GroupInfo {
  gid: string;
  name: string;
  owner: string;
  member_count: number;
  created_ms: number;
}

export interface MemberPage {
  members: { user: string; role: 'owner' | 'member'; joined_ms: number }[];
  more: boolean;
}

export interface LoginInfo {
  user: string;
  tenant: string;
  session: string;
  node: string;
  epoch: string;
  last_seq: number;
  acked_seq: number;
  heartbeat_s: number;
  server_ms: number;
}

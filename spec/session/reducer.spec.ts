import type { IncomingMessage } from 'http';
import fc from 'fast-check';
import type { Receiver } from '../../lib/session/receiver';
import {
  type Effect,
  INITIAL,
  messageCost,
  type SessionConfig,
  type SessionEvent,
  type SessionState,
  step,
} from '../../lib/session/reducer';

/** The request a receiver came with: the reducer only hands it on, to the 'open' effect. */
const REQUEST = {} as IncomingMessage;
const config: SessionConfig = { heartbeatDelay: 25_000, disconnectDelay: 5_000 };
const noSink = { write: () => undefined, end: () => undefined };

function receiver(id: number, kind: 'poll' | 'stream' | 'websocket'): Receiver {
  return {
    id,
    protocol: kind,
    framing: 'sockjs',
    wrap: (frame) => (kind === 'websocket' ? frame : frame + '\n'),
    limit: kind === 'poll' ? 1 : kind === 'stream' ? 4096 : Infinity,
    delayDisconnect: kind !== 'websocket',
    pings: kind === 'websocket',
    sink: noSink,
  };
}

/** What a test asks of the session, before ids and acknowledgements are filled in. */
type Command =
  | { readonly kind: 'attach'; readonly transport: 'poll' | 'stream' | 'websocket' }
  | { readonly kind: 'detach' }
  | { readonly kind: 'send'; readonly size: number }
  | { readonly kind: 'receive'; readonly text: string }
  | { readonly kind: 'close' }
  | { readonly kind: 'heartbeat' }
  | { readonly kind: 'pong' }
  | { readonly kind: 'expire' };

const transport = fc.constantFrom('poll' as const, 'stream' as const, 'websocket' as const);

const command: fc.Arbitrary<Command> = fc.oneof(
  fc.record({ kind: fc.constant('attach' as const), transport }),
  fc.constant({ kind: 'detach' as const }),
  fc.record({ kind: fc.constant('send' as const), size: fc.integer({ min: 0, max: 6000 }) }),
  fc.record({ kind: fc.constant('receive' as const), text: fc.string() }),
  fc.constant({ kind: 'close' as const }),
  fc.constant({ kind: 'heartbeat' as const }),
  fc.constant({ kind: 'pong' as const }),
  fc.constant({ kind: 'expire' as const }),
);

interface Run {
  readonly effects: Effect[];
  readonly state: SessionState;
  /** Messages the application sent while the session was open, in order. */
  readonly sent: string[];
  /** Acknowledgements handed to the session and how often each was released. */
  readonly acks: Map<number, number>;
}

/** Messages carried by a frame written to a receiver (`a[...]` with any wrapping). */
function messagesOf(chunk: string): string[] {
  const frame = chunk.trimEnd();
  return frame.startsWith('a[') ? (JSON.parse(frame.slice(1)) as string[]) : [];
}

/** Sequences of commands for an opened session: a first receiver, then anything. */
const session = fc
  .tuple(transport, fc.array(command, { maxLength: 60 }))
  .map(([first, rest]): Command[] => [{ kind: 'attach', transport: first }, ...rest]);

/** Feeds the commands to the reducer, as the session table would, until the session ends. */
function run(commands: readonly Command[]): Run {
  let state = INITIAL;
  let now = 0;
  let receivers = 0;
  let messages = 0;
  const effects: Effect[] = [];
  const sent: string[] = [];
  const acks = new Map<number, number>();
  const attachedId = () => state.attached?.receiver.id ?? -1;
  for (const c of commands) {
    if (state.phase === 'ended') break;
    now += 1000;
    let event: SessionEvent;
    switch (c.kind) {
      case 'attach':
        event = { type: 'attach', key: 's', receiver: receiver(++receivers, c.transport), request: REQUEST };
        break;
      case 'detach':
        event = { type: 'detach', key: 's', receiverId: attachedId(), why: { code: 1002, reason: 'Connection interrupted' } };
        break;
      case 'send': {
        const id = ++messages;
        const text = `m${id}:` + 'x'.repeat(c.size);
        if (state.phase === 'open') sent.push(text);
        acks.set(id, 0);
        event = { type: 'outgoing', key: 's', messages: [text], ack: () => acks.set(id, acks.get(id)! + 1) };
        break;
      }
      case 'receive':
        event = { type: 'incoming', key: 's', messages: [c.text] };
        break;
      case 'close':
        event = { type: 'close', key: 's', why: { code: 3000, reason: 'Go away!' } };
        break;
      case 'heartbeat':
        // The timer fires only when the state asks for it, at the time it asks for.
        if (state.heartbeatAt === null) continue;
        now = Math.max(now, state.heartbeatAt);
        event = { type: 'heartbeat', key: 's' };
        break;
      case 'pong':
        event = { type: 'pong', key: 's' };
        break;
      case 'expire':
        if (state.expireAt === null) continue;
        now = Math.max(now, state.expireAt);
        event = { type: 'expire', key: 's' };
        break;
    }
    const next = step(state, event, now, config);
    state = next.state;
    effects.push(...next.effects);
  }
  return { effects, state, sent, acks };
}

/** Releases acknowledgements as the edge does: `ack` effects at once, write acks on flush. */
function releaseAcks(effects: readonly Effect[]): void {
  for (const e of effects) {
    if (e.type === 'ack') e.ack();
    if (e.type === 'write') e.acks.forEach((ack) => ack());
  }
}

describe('the session reducer, for any sequence of events', () => {
  it('delivers every message the application sent at most once, in order', () => {
    fc.assert(
      fc.property(session, (commands) => {
        const { effects, sent } = run(commands);
        const written = effects.flatMap((e) => (e.type === 'write' ? messagesOf(e.chunk) : []));
        expect(written).toEqual(sent.slice(0, written.length));
      }),
    );
  });

  it('tells the application of the close at most once, and never after the end', () => {
    fc.assert(
      fc.property(session, (commands) => {
        const { effects } = run(commands);
        const closed = effects.filter((e) => e.type === 'closed').length;
        const ends = effects.filter((e) => e.type === 'end').length;
        expect(closed).toBeLessThanOrEqual(1);
        expect(ends).toBeLessThanOrEqual(1);
        const endAt = effects.findIndex((e) => e.type === 'end');
        if (endAt !== -1) expect(effects.slice(endAt + 1)).toEqual([]);
      }),
    );
  });

  it('opens with o before anything else is written, and only once', () => {
    fc.assert(
      fc.property(session, (commands) => {
        const { effects } = run(commands);
        const opens = effects.filter((e) => e.type === 'open');
        expect(opens.length).toBeLessThanOrEqual(1);
        const firstWrite = effects.find((e) => e.type === 'write' && !e.chunk.startsWith('c[2010'));
        if (firstWrite && firstWrite.type === 'write') expect(firstWrite.chunk.trimEnd()).toBe('o');
      }),
    );
  });

  it('always ends once the client is gone: a detach and the expiry end every session', () => {
    fc.assert(
      fc.property(session, (commands) => {
        const { state, effects } = run([...commands, { kind: 'detach' }, { kind: 'expire' }]);
        expect(state.phase).toBe('ended');
        expect(effects.filter((e) => e.type === 'end')).toHaveLength(1);
      }),
    );
  });

  it('releases every write acknowledgement exactly once by the end of the session', () => {
    fc.assert(
      fc.property(session, (commands) => {
        const { effects, acks } = run([...commands, { kind: 'detach' }, { kind: 'expire' }]);
        releaseAcks(effects);
        for (const count of acks.values()) expect(count).toBe(1);
      }),
    );
  });

  it('never keeps a receiver and a pending expiry at the same time', () => {
    fc.assert(
      fc.property(session, (commands) => {
        const { state } = run(commands);
        expect(state.attached !== null && state.expireAt !== null).toBe(false);
        if (state.attached === null) expect(state.heartbeatAt).toBeNull();
      }),
    );
  });
});

describe('the queue of an absent receiver', () => {
  it('appends without copying what was queued before, and hands a poll every message in order', () => {
    let state = step(INITIAL, { type: 'attach', key: 's', receiver: receiver(1, 'poll'), request: REQUEST }, 0, config).state;
    const n = 10_000;
    const queues: Array<SessionState['queue']> = [];
    for (let i = 0; i < n; i++) {
      state = step(state, { type: 'outgoing', key: 's', messages: [`m${i}`] }, 1, config).state;
      queues.push(state.queue);
    }
    // Each step's queue holds only its own batch and points at the one before it.
    for (let i = 1; i < n; i++) expect(queues[i]!.earlier).toBe(queues[i - 1]);
    const { effects } = step(state, { type: 'attach', key: 's', receiver: receiver(2, 'poll'), request: REQUEST }, 2, config);
    const write = effects.find((e): e is Extract<Effect, { type: 'write' }> => e.type === 'write');
    expect(write?.chunk).toBe(`a${JSON.stringify(Array.from({ length: n }, (_, i) => `m${i}`))}\n`);
  });
});

describe('messageCost', () => {
  it('is the UTF-8 bytes plus 64, for short, kept and overlong messages, repeated or not', () => {
    const texts = ['', 'é', 'e'.repeat(300), 'é'.repeat(300), 'e'.repeat(300), '€'.repeat(16 * 1024), '€'.repeat(16 * 1024 + 1)];
    for (const text of [...texts, ...texts]) expect(messageCost(text)).toBe(Buffer.byteLength(text) + 64);
    expect(messageCost(new Uint8Array(10))).toBe(74);
  });
});

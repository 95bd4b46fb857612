import type { IncomingMessage } from 'http';
import { filter, map, type Observable } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import type { Receiver } from '../../lib/session/receiver';
import type { Reply, SessionEvent, SessionKey } from '../../lib/session/reducer';
import { type Performed, sessionTable } from '../../lib/session/session';

/** The request a receiver came with: the reducer only hands it on, to the 'open' effect. */
const REQUEST = {} as IncomingMessage;
const HEARTBEAT = 25_000;
const DISCONNECT = 5_000;
const config = { heartbeatDelay: HEARTBEAT, disconnectDelay: DISCONNECT };

let receivers = 0;
const noSink = { write: () => undefined, end: () => undefined };

function receiver(kind: 'poll' | 'stream' | 'websocket', limit = 4096): Receiver {
  return {
    id: ++receivers,
    protocol: kind,
    framing: 'sockjs',
    wrap: kind === 'websocket' ? (frame) => frame : (frame) => frame + '\n',
    limit: kind === 'poll' ? 1 : kind === 'stream' ? limit : Infinity,
    delayDisconnect: kind !== 'websocket',
    pings: false,
    sink: noSink,
  };
}

const attach = (r: Receiver, key: SessionKey = 's'): SessionEvent => ({ type: 'attach', key, receiver: r, request: REQUEST });
const send = (text: string, key: SessionKey = 's', ack?: () => void): SessionEvent => ({ type: 'outgoing', key, messages: [text], ack });
const reply: Reply = { accept: () => undefined, unknownSession: () => undefined, unavailable: () => undefined, refused: () => undefined };

/** Each effect as a short text, so that marbles can name them. */
function describe_(p: Performed<unknown>): string {
  const e = p.effect;
  switch (e.type) {
    case 'write':
      return `write ${e.chunk}`;
    case 'finish':
      return `finish ${e.why.code}`;
    case 'open':
      return 'open';
    case 'deliver':
      return `deliver ${e.messages.join(',')}`;
    case 'dropped':
      return `dropped ${e.count}`;
    case 'reply':
      return e.accepted ? 'reply ok' : 'reply 404';
    case 'ack':
      return 'ack';
    case 'closed':
      return `closed ${e.why.code} ${e.why.reason}`;
    case 'end':
      return 'end';
    case 'ping':
      return 'ping';
    case 'heartbeat':
      return 'heartbeat';
  }
}

const V = {
  o: 'write o\n',
  O: 'open',
  h: 'write h\n',
  f: 'finish 1000',
  e: 'end',
  t: 'closed 1006 Session timed out',
  x: 'write a["x"]\n',
};

let testScheduler: TestScheduler;

beforeEach(() => {
  testScheduler = new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
});

/**
 * The table's effects as text, less the `heartbeat` effect that goes with each heartbeat frame
 * (for the metrics): these marbles are about the frames. `withHeartbeats` keeps it.
 */
function table(events$: Observable<SessionEvent>, withHeartbeats = false): Observable<string> {
  return sessionTable<unknown>(events$, { scheduler: testScheduler, config, log: () => undefined }).pipe(
    filter((p) => withHeartbeats || p.effect.type !== 'heartbeat'),
    map(describe_),
  );
}

describe('heartbeats', () => {
  it('sends h after heartbeat_delay with no traffic, and again every heartbeat_delay', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const events = hot<SessionEvent>('a', { a: attach(receiver('stream')) });
      expectObservable(table(events), '^ 60s !').toBe('(oO) 24996ms h 24999ms h', V);
    });
  });

  it('tells of each heartbeat frame it sends by a heartbeat effect, for the metrics', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const events = hot<SessionEvent>('a', { a: attach(receiver('stream')) });
      expectObservable(table(events, true), '^ 60s !').toBe('(oO) 24996ms (Hh) 24996ms (Hh)', { ...V, H: 'heartbeat' });
    });
  });

  it('postpones the heartbeat while messages flow', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const events = hot<SessionEvent>('a 9999ms b', { a: attach(receiver('stream')), b: send('x') });
      // Armed at 0, the timer finds traffic at 10 s and waits until 10 s + heartbeat_delay.
      expectObservable(table(events), '^ 40s !').toBe('(oO) 9996ms x 24999ms h', V);
    });
  });

  it('answers a pending poll with h after heartbeat_delay', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const events = hot<SessionEvent>('a 999ms b', { a: attach(receiver('poll')), b: attach(receiver('poll')) });
      // The second poll is held open; its heartbeat ends it and the session then waits
      // disconnect_delay for the next poll before it times out.
      expectObservable(table(events), '^ 40s !').toBe('(ofO) 25995ms (hf) 4996ms (te)', V);
    });
  });

  it('sends h on websockets too', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const events = hot<SessionEvent>('a', { a: attach(receiver('websocket'), 1) });
      expectObservable(table(events), '^ 30s !').toBe('(oO) 24996ms h', { ...V, o: 'write o', h: 'write h' });
    });
  });
});

describe('disconnect_delay', () => {
  it('ends a session whose client has not come back within disconnect_delay', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const events = hot<SessionEvent>('a', { a: attach(receiver('poll')) });
      expectObservable(table(events), '^ 10s !').toBe('(ofO) 4995ms (te)', V);
    });
  });

  it('keeps a session whose client polls again in time, and re-arms after each poll', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const events = hot<SessionEvent>('a 3999ms b 99ms c', {
        a: attach(receiver('poll')),
        b: send('x'),
        c: attach(receiver('poll')),
      });
      expectObservable(table(events), '^ 20s !').toBe('(ofO) 4095ms (xf) 4996ms (te)', V);
    });
  });

  it('forgets an ended session: the same id then opens a new one', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const events = hot<SessionEvent>('a 5999ms b', { a: attach(receiver('poll')), b: attach(receiver('poll')) });
      expectObservable(table(events), '^ 7s !').toBe('(ofO) 4995ms (te) 996ms (ofO)', V);
    });
  });
});

describe('one receiver at a time', () => {
  it('tells a second receiver 2010 and ends it, while the first stays attached', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const events = hot<SessionEvent>('a 249ms b 749ms c', {
        a: attach(receiver('stream')),
        b: attach(receiver('stream')),
        c: send('x'),
      });
      expectObservable(table(events), '^ 2s !').toBe('(oO) 246ms (rF) 746ms x', {
        ...V,
        r: 'write c[2010,"Another connection still open"]\n',
        F: 'finish 2010',
      });
    });
  });
});

describe('closing', () => {
  it('repeats the close frame to every later receiver until the session expires', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const events = hot<SessionEvent>('a 999ms b 999ms c 999ms d 5999ms g', {
        a: attach(receiver('poll')),
        b: { type: 'close', key: 's', why: { code: 3000, reason: 'Go away!' } },
        c: attach(receiver('poll')),
        d: attach(receiver('poll')),
        g: attach(receiver('poll')),
      });
      expectObservable(table(events), '^ 12s !').toBe('(ofO) 995ms C 999ms (cf) 996ms (cf) 4996ms e 999ms (ofO)', {
        ...V,
        C: 'closed 3000 Go away!',
        c: 'write c[3000,"Go away!"]\n',
      });
    });
  });

  it('writes the close frame on an attached stream and ends it', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const events = hot<SessionEvent>('a 999ms b', {
        a: attach(receiver('stream')),
        b: { type: 'close', key: 's', why: { code: 3000, reason: 'Go away!' } },
      });
      expectObservable(table(events), '^ 10s !').toBe('(oO) 996ms (Ccf) 4995ms e', {
        ...V,
        C: 'closed 3000 Go away!',
        c: 'write c[3000,"Go away!"]\n',
      });
    });
  });

  it('ends a websocket session as soon as it is closed', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const events = hot<SessionEvent>('a 999ms b', {
        a: attach(receiver('websocket'), 7),
        b: { type: 'close', key: 7, why: { code: 3000, reason: 'Go away!' } },
      });
      expectObservable(table(events), '^ 10s !').toBe('(oO) 996ms (Ccfe)', {
        ...V,
        o: 'write o',
        C: 'closed 3000 Go away!',
        c: 'write c[3000,"Go away!"]',
      });
    });
  });
});

describe('messages', () => {
  it('delivers messages queued while no receiver is attached together in one frame, in order', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const events = hot<SessionEvent>('a 999ms b 999ms c 999ms d', {
        a: attach(receiver('poll')),
        b: send('a', 's', () => undefined),
        c: send('b', 's', () => undefined),
        d: attach(receiver('poll')),
      });
      expectObservable(table(events), '^ 4s !').toBe('(ofO) 995ms k 999ms k 999ms (qf)', {
        ...V,
        k: 'ack',
        q: 'write a["a","b"]\n',
      });
    });
  });

  it('says what the client sent to a closing session, which no one will read', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const events = hot<SessionEvent>('a 9ms b 9ms c', {
        a: attach(receiver('stream')),
        b: { type: 'close', key: 's', why: { code: 3000, reason: 'Go away!' } },
        c: { type: 'incoming', key: 's', messages: ['m1', 'm2'], reply },
      });
      expectObservable(table(events), '^ 1s !').toBe('(oO) 6ms (cwf) 5ms (dr)', {
        ...V,
        c: 'closed 3000 Go away!',
        w: 'write c[3000,"Go away!"]\n',
        d: 'dropped 2',
        r: 'reply ok',
      });
    });
  });

  it('delivers what the client sends and answers its send request', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const events = hot<SessionEvent>('a 9ms b', {
        a: attach(receiver('stream')),
        b: { type: 'incoming', key: 's', messages: ['m1', 'm2'], reply },
      });
      expectObservable(table(events), '^ 1s !').toBe('(oO) 6ms (dr)', { ...V, d: 'deliver m1,m2', r: 'reply ok' });
    });
  });

  it('answers a send to an unknown session with 404 and keeps nothing', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const events = hot<SessionEvent>('b 9ms a', {
        b: { type: 'incoming', key: 's', messages: ['m'], reply },
        a: attach(receiver('stream')),
      });
      expectObservable(table(events), '^ 1s !').toBe('(re) 6ms (oO)', { ...V, r: 'reply 404' });
    });
  });

  it('ends a stream once response_limit bytes are written', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      // With the limit at 4096, o\n and 30 frames of 134 bytes (4022 bytes) keep the stream open;
      // the 31st frame passes the limit and ends it.
      const message = 'x'.repeat(128);
      const sends = Object.fromEntries([...'ABCDEFGHIJKLMNOPQRSTUVWXYZbcdeg'].map((letter) => [letter, send(message)]));
      const marble = 'a 9ms ' + Object.keys(sends).join(' 9ms ');
      const events = hot<SessionEvent>(marble, { a: attach(receiver('stream', 4096)), ...sends });
      const frame = `write a["${message}"]\n`;
      const expected = '(oO) 6ms ' + 'y 9ms '.repeat(30) + '(yf)';
      expectObservable(table(events), '^ 1s !').toBe(expected, { ...V, y: frame });
    });
  });
});

describe('client abort', () => {
  it('ends the session when the client drops its stream', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const r = receiver('stream');
      const events = hot<SessionEvent>('a 999ms b 999ms c', {
        a: attach(r),
        b: { type: 'detach', key: 's', receiverId: r.id, why: { code: 1002, reason: 'Connection interrupted' } },
        c: attach(receiver('stream')),
      });
      expectObservable(table(events), '^ 3s !').toBe('(oO) 996ms (ie) 996ms (oO)', {
        ...V,
        i: 'closed 1002 Connection interrupted',
      });
    });
  });
});

describe('faults', () => {
  it('ends only the session whose step throws, closed with 1011, and logs the fault', () => {
    const logged: string[] = [];
    testScheduler.run(({ hot, expectObservable }) => {
      const broken: Receiver = {
        ...receiver('stream'),
        wrap: () => {
          throw new Error('wrap failed');
        },
      };
      const events = hot<SessionEvent>('a 9ms b 9ms c', {
        a: attach(receiver('stream'), 'good'),
        b: attach(broken, 'bad'),
        c: send('x', 'good'),
      });
      const result$ = sessionTable<unknown>(events, {
        scheduler: testScheduler,
        config,
        log: (severity, message) => logged.push(`${severity} ${message.split('\n')[0]}`),
      }).pipe(map(describe_));
      // The receiver that met the fault is finished with 1011 (its framing failed, so without a
      // close frame); the other session goes on.
      expectObservable(result$, '^ 1s !').toBe('(oO) 6ms (Fe) 6ms x', { ...V, F: 'finish 1011' });
    });
    expect(logged).toEqual(['error session bad: Error: wrap failed']);
  });
});

describe('teardown', () => {
  it('unsubscribes from its source when unsubscribed, even with sessions alive', () => {
    testScheduler.run(({ hot, expectObservable, expectSubscriptions }) => {
      const events = hot<SessionEvent>('a 9ms b', { a: attach(receiver('stream')), b: attach(receiver('stream'), 'other') });
      expectObservable(table(events), '^ 4ms !').toBe('(oO)', V);
      expectSubscriptions(events.subscriptions).toBe('^ 4ms !');
    });
  });
});

describe('backpressure', () => {
  it('takes messages at once below the queue high-water mark and holds the writer above it until a poll takes them', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      // Each message costs its bytes plus 64: 16 of these cost 16 KiB exactly.
      const kilo = 'k'.repeat(1024 - 64);
      const many = Array.from({ length: 16 }, () => kilo);
      const events = hot<SessionEvent>('a 9ms b 9ms c 9ms d', {
        a: attach(receiver('poll')),
        b: { type: 'outgoing', key: 's', messages: many, ack: () => undefined },
        c: { type: 'outgoing', key: 's', messages: ['over'], ack: () => undefined },
        d: attach(receiver('poll')),
      });
      // 16 KiB are taken (acknowledged) at once; the next write waits for the poll at 30 ms,
      // whose single write carries its acknowledgement.
      expectObservable(table(events), '^ 1s !').toBe('(ofO) 5ms k 9ms - 9ms (wf)', {
        ...V,
        k: 'ack',
        w: `write a[${[...many, 'over'].map((m) => JSON.stringify(m)).join(',')}]\n`,
      });
    });
  });

  it('counts an empty message as more than nothing, so that a flood of them reaches the mark', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const empties = Array.from({ length: 256 }, () => '');
      const events = hot<SessionEvent>('a 9ms b 9ms c', {
        a: attach(receiver('poll')),
        b: { type: 'outgoing', key: 's', messages: empties, ack: () => undefined },
        c: { type: 'outgoing', key: 's', messages: [''], ack: () => undefined },
      });
      // 256 empty messages cost 16 KiB: taken; one more is over the mark, and its writer waits.
      expectObservable(table(events), '^ 1s !').toBe('(ofO) 5ms k 9ms -', { ...V, k: 'ack' });
    });
  });

  it('hands the acknowledgements of queued messages to the write that flushes them', () => {
    const acks: string[] = [];
    testScheduler.run(({ hot }) => {
      const big = 'b'.repeat(20 * 1024);
      const events = hot<SessionEvent>('a 9ms b 9ms c', {
        a: attach(receiver('poll')),
        b: { type: 'outgoing', key: 's', messages: [big], ack: () => acks.push('big') },
        c: attach(receiver('poll')),
      });
      sessionTable<unknown>(events, { scheduler: testScheduler, config, log: () => undefined }).subscribe(({ effect }) => {
        if (effect.type === 'write' && effect.acks.length > 0) {
          acks.push(`flush at ${testScheduler.now()}`);
          effect.acks.forEach((ack) => ack());
        }
      });
    });
    expect(acks).toEqual(['flush at 20', 'big']);
  });
});

describe('dead peers', () => {
  const pinging = (): Receiver => ({ ...receiver('websocket'), pings: true });
  const W = { ...V, o: 'write o', h: 'write h', p: 'ping', d: 'closed 3000 No response from heartbeat', F: 'finish 3000' };

  it('pings with every heartbeat and closes a websocket whose peer did not answer the last ping', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const events = hot<SessionEvent>('a', { a: attach(pinging(), 1) });
      expectObservable(table(events), '^ 60s !').toBe('(oO) 24996ms (ph) 24996ms (dFe)', W);
    });
  });

  it('keeps a websocket whose peer answers each ping', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const events = hot<SessionEvent>('a 25s b 24999ms c', {
        a: attach(pinging(), 1),
        b: { type: 'pong', key: 1 },
        c: { type: 'pong', key: 1 },
      });
      expectObservable(table(events), '^ 60s !').toBe('(oO) 24996ms (ph) 24996ms (ph)', W);
    });
  });

  it('keeps a websocket that is not read while the application does not read, pong or no pong', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const events = hot<SessionEvent>('a', { a: attach({ ...pinging(), paused: true }, 1) });
      expectObservable(table(events), '^ 60s !').toBe('(oO) 24996ms (ph) 24996ms (ph)', W);
    });
  });
});

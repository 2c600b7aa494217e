package link

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/isthmus-xmpp/isthmus/link/dgram"
)

// TransportDatagram carries the session in authenticated datagrams (package
// link/dgram) over Config.PacketConn: no connection, no handshake after an
// outage.
const TransportDatagram = "datagram"

// DatagramMTU is the default largest datagram (UDP payload) of the datagram
// transport: the size every IPv4 path carries without fragmentation in
// practice, as QUIC assumes.
const DatagramMTU = 1200

// Carrier carries datagrams between the two gateways. net.PacketConn (UDP)
// is one; a STANAG 5066 SIS client or a serial modem framing can be another.
// The reliability and crypto layers (package link/dgram) only see bytes.
type Carrier interface {
	ReadFrom(p []byte) (n int, addr net.Addr, err error)
	WriteTo(p []byte, addr net.Addr) (n int, err error)
	Close() error
}

// LinkStater is a Carrier that knows whether its link is up: a serial
// modem's carrier detect, a STANAG 5066 SIS link-up, the emulator's
// outages (link/emu). LinkState returns the state and a channel closed at
// its next change. When the link returns, the datagram transport probes at
// once with the oldest unacknowledged data instead of waiting for its next
// probe (Config.DatagramMaxProbe apart): the first queued stanza arrives
// its serialization time and one delay after the link's return. Carriers
// without it (UDP) rely on the probes alone.
type LinkStater interface {
	LinkState() (up bool, changed <-chan struct{})
}

// DatagramMinWire is the default of Config.DatagramMinWire: four times a
// datagram's fixed cost (49 bytes with IPv4 and UDP headers), so that
// while frames queue, that cost stays under a fifth of the wire. The hold
// it makes is capped at half the smallest round trip measured: 653 ms on
// iridium-2400 (RTT 1.5 s), but only about 75 ms on vhf-9600, less than
// most datagrams take anyway.
const DatagramMinWire = 4 * 49

// DatagramStats count the datagram transport's work (all sessions).
type DatagramStats struct {
	Handshakes      uint64 // Noise handshakes completed (either role)
	HandshakeBytes  uint64 // handshake datagrams sent, UDP payload
	Rekeys          uint64 // send key changes
	PeerRekeys      uint64 // receive key changes
	Replayed        uint64 // datagrams rejected as replays or too old (by the current session)
	Forged          uint64 // datagrams failing authentication under every key, and bad handshake messages
	Truncated       uint64 // datagrams too short or with a bad header
	Retransmits     uint64 // fragments sent again
	Joined          uint64 // frames that joined a datagram waiting for the pacer (no datagram of their own)
	AckOnly         uint64 // datagrams carrying only an ack
	Probes          uint64 // probes without data (outages)
	AddressChanges  uint64 // the peer's address changed (authenticated)
	LinkUps         uint64 // the carrier reported its link back (LinkStater)
	Undecryptable   uint64 // transport datagrams no current key opens (the peer restarted, or forged)
	PendingReplaced uint64 // answered handshakes never confirmed (replays, or lost)
	StaleInits      uint64 // MsgInits refused: their stamp is not above the last accepted (replays)
}

type hsOut struct {
	b  []byte
	to net.Addr
}

// datagramTransport runs Noise sessions over a Carrier and drives the Link's
// session through the current one.
type datagramTransport struct {
	l       *Link
	c       Carrier
	keys    dgram.Keys
	chcfg   dgram.ChannelConfig
	mtu     int
	minWire int // wire bytes a datagram with data is paced as, at least
	ctx     context.Context

	mu        sync.Mutex
	state     *dgram.State // handshake stamps (Config.DatagramState)
	known     bool         // state.Accepted is the largest stamp ever accepted (persisted, or confirmed since start)
	peer      net.Addr     // where transport datagrams go (the latest authentic source)
	cur       *dgSess
	pending   *dgSess // answered a MsgInit it could not vouch for; becomes cur on its first authentic datagram
	pendMsg   []byte  // that MsgInit, and our answer, for a repeated MsgInit
	pendResp  []byte
	curMsg    []byte // the MsgInit cur answered, and our answer (sent again until cur hears the peer)
	curResp   []byte
	init      *dgram.Initiation
	initTo    net.Addr
	initDue   time.Time
	initTries int
	initOK    time.Time     // undecryptable datagrams start no handshake before this
	junkWait  time.Duration // ...and then not before this long after (doubling to ReconnectMax, for the process's life)
	out       []hsOut
	pace      time.Time
	kick      chan struct{}
	sent      chan struct{} // closed and replaced after each send
	stats     DatagramStats
	old       dgram.ChannelStats // of ended sessions
	oldARQ    dgram.ARQStats
}

// dgSess is one Noise session: its channel, its ARQ and the byte stream the
// Link's read and write loops see (it implements stream).
type dgSess struct {
	t        *datagramTransport
	ch       *dgram.Channel
	arq      *dgram.ARQ
	lastAuth time.Time
	rbuf     []byte
	rwake    chan struct{} // closed and replaced when rbuf grows
	done     chan struct{} // closed when the session ends or a past deadline is set
	ended    bool
	written  uint64 // estimated wire bytes of the stream's writes (for the write loop's pacing)
	wrote    bool   // the Link wrote (its HELLO): reads may begin
	stamp    uint64 // the MsgInit's stamp (responder)
}

func (l *Link) newDatagram() (*datagramTransport, error) {
	priv := l.cfg.Key
	if priv == nil && l.cfg.TLS != nil && len(l.cfg.TLS.Certificates) > 0 {
		priv, _ = l.cfg.TLS.Certificates[0].PrivateKey.(ed25519.PrivateKey)
	}
	if priv == nil {
		return nil, errors.New("link: datagram transport: no Ed25519 link key (Config.Key or the TLS certificate's)")
	}
	if len(l.cfg.PeerKey) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("link: datagram transport: peer key of %d bytes, want %d", len(l.cfg.PeerKey), ed25519.PublicKeySize)
	}
	keys, err := dgram.KeysFromEd25519(priv, l.cfg.PeerKey)
	if err != nil {
		return nil, fmt.Errorf("link: datagram transport: %w", err)
	}
	mtu := datagramMTU(l.cfg)
	st, err := dgram.LoadState(l.cfg.DatagramState, keys.Peer)
	// A record is complete only if it holds a stamp: a missing file (a
	// first start, or a lost state_dir) or one of another peer holds none,
	// and any recorded MsgInit would pass as fresh against it.
	known := err == nil && st.Path != "" && st.Accepted > 0
	if err != nil {
		// Start anyway, as without a record: handshakes the peer starts
		// wait for its first datagram until one is confirmed, which
		// rewrites the file.
		l.log.Error("link: datagram state unreadable: replays are refused by confirmation until the next handshake", "err", err)
		st = &dgram.State{Path: l.cfg.DatagramState, Peer: keys.Peer}
	}
	minWire := l.cfg.DatagramMinWire
	if minWire == 0 {
		minWire = DatagramMinWire
	}
	return &datagramTransport{l: l, c: l.cfg.PacketConn, keys: keys, mtu: mtu, state: st, known: known, minWire: minWire,
		chcfg: dgram.ChannelConfig{RekeyInterval: l.cfg.RekeyInterval},
		kick:  make(chan struct{}, 1), sent: make(chan struct{})}, nil
}

func datagramMTU(cfg Config) int {
	if cfg.DatagramMTU > 0 {
		return cfg.DatagramMTU
	}
	return DatagramMTU
}

// runDatagram serves the datagram transport until ctx ends.
func (l *Link) runDatagram(ctx context.Context) error {
	t := l.dg
	t.ctx = ctx
	defer t.c.Close()
	dl, _ := t.c.(interface{ SetReadDeadline(time.Time) error })
	if dl != nil {
		dl.SetReadDeadline(time.Time{})
	}
	if l.cfg.PeerAddr != nil {
		t.mu.Lock()
		t.startInit(time.Now(), l.cfg.PeerAddr)
		t.mu.Unlock()
	}
	go func() {
		<-ctx.Done()
		t.c.Close()
		if dl != nil {
			dl.SetReadDeadline(time.Now()) // a carrier whose Close does not end reads
		}
		t.mu.Lock()
		if t.cur != nil {
			t.cur.end()
		}
		t.mu.Unlock()
	}()
	go t.sendLoop(ctx)
	if ls, ok := t.c.(LinkStater); ok {
		go t.watchLink(ctx, ls)
	}
	buf := make([]byte, 64<<10)
	for {
		n, addr, err := t.c.ReadFrom(buf)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("link: datagram read: %w", err)
		}
		l.mu.Lock()
		l.wireIn.TLSBytes += uint64(n)
		l.wireIn.Datagrams++
		l.mu.Unlock()
		t.handle(time.Now(), buf[:n], addr)
	}
}

// watchLink tells the current session's ARQ when the carrier reports its
// link back after an outage.
func (t *datagramTransport) watchLink(ctx context.Context, ls LinkStater) {
	wasUp := true
	for {
		up, changed := ls.LinkState()
		if up && !wasUp {
			t.mu.Lock()
			t.stats.LinkUps++
			if t.cur != nil {
				t.cur.arq.LinkUp()
			}
			t.mu.Unlock()
			t.poke()
		}
		wasUp = up
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

func (t *datagramTransport) poke() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// initInterval is how long a MsgInit waits for its answer before it goes
// again: a round trip guessed from the link rate, doubled per try up to
// ReconnectMax.
func (t *datagramTransport) initInterval() time.Duration {
	d := 2*time.Second + txTime(uint64(dgram.InitSize+dgram.RespSize+2*UDPHeaderBytes), t.l.rate.Load())
	return min(d<<min(t.initTries, 10), max(t.l.cfg.ReconnectMax, d))
}

// startInit begins a handshake towards to; t.mu is held.
func (t *datagramTransport) startInit(now time.Time, to net.Addr) {
	if t.newInit() {
		t.initTo, t.initDue, t.initTries = to, now, 0
		t.poke()
	}
}

// newInit makes a MsgInit with a new stamp, recorded in the state first;
// t.mu is held.
func (t *datagramTransport) newInit() bool {
	stamp := dgram.Stamp(time.Now(), t.state.Sent)
	t.state.Sent = stamp
	if err := t.state.Save(); err != nil {
		// The stamp still serves while the clock does not go back.
		t.l.log.Error("link: datagram state", "err", err)
	}
	in, err := dgram.Initiate(t.keys, stamp)
	if err != nil {
		t.l.log.Error("link: datagram handshake", "err", err)
		return false
	}
	t.init = in
	return true
}

func (t *datagramTransport) handle(now time.Time, d []byte, addr net.Addr) {
	if len(d) == 0 {
		t.mu.Lock()
		t.stats.Truncated++
		t.mu.Unlock()
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch d[0] {
	case dgram.MsgInit:
		t.onInit(now, d, addr)
	case dgram.MsgResp:
		t.onResp(now, d, addr)
	default:
		t.onTransport(now, d, addr)
	}
}

func (t *datagramTransport) onInit(now time.Time, d []byte, addr net.Addr) {
	if t.init != nil && bytes.Compare(t.keys.Static.Public, t.keys.Peer) > 0 &&
		(sameAddr(addr, t.initTo) || t.initTries < 2) {
		// Both sides initiate: the larger key's handshake goes on. Only a
		// real crossing defers (the peer's MsgInit comes from where ours
		// goes, or ours is young): a handshake towards an address that
		// never answers (a forged source, the peer's old address) must
		// not make us ignore the peer for good. The ignored MsgInit's
		// stamp is still recorded, or a copy replayed later would pass as
		// fresh and replace the session.
		if _, _, stamp, err := dgram.Respond(now, t.keys, d, t.state.Accepted, t.chcfg); err == nil {
			t.state.Accepted = stamp
			if err := t.state.Save(); err != nil {
				t.l.log.Error("link: datagram state", "err", err)
			}
		}
		return
	}
	switch {
	case t.pending != nil && bytes.Equal(d, t.pendMsg):
		t.out = append(t.out, hsOut{t.pendResp, addr}) // our answer was lost
		t.poke()
		return
	case t.cur != nil && bytes.Equal(d, t.curMsg):
		if _, heard := t.cur.ch.Largest(); !heard && t.curResp != nil {
			t.out = append(t.out, hsOut{t.curResp, addr}) // our answer was lost
			t.poke()
		}
		return // else a late copy of the handshake in use
	}
	ch, resp, stamp, err := dgram.Respond(now, t.keys, d, t.state.Accepted, t.chcfg)
	switch {
	case errors.Is(err, dgram.ErrStale):
		t.stats.StaleInits++
		t.l.log.Warn("link: datagram handshake refused: stale stamp (a replayed MsgInit)", "from", addr.String(),
			"stamp", stamp, "accepted", t.state.Accepted)
		return
	case err != nil:
		t.l.mu.Lock()
		t.l.hsFails++
		t.l.mu.Unlock()
		t.stats.Forged++
		return
	}
	// The stamp is above every one accepted before: the MsgInit is fresh
	// if that record is complete (kept in the state file, or confirmed
	// since this process started); it is durable before we answer.
	fresh := t.known
	if fresh {
		prev := t.state.Accepted
		t.state.Accepted = stamp
		if err := t.state.Save(); err != nil {
			t.l.log.Error("link: datagram state", "err", err)
			t.state.Accepted, fresh = prev, false
		}
	}
	s := t.newSess(ch)
	s.stamp = stamp
	t.out = append(t.out, hsOut{resp, addr})
	t.poke()
	if t.pending != nil {
		t.stats.PendingReplaced++
		t.pending.end()
		t.pending, t.pendMsg, t.pendResp = nil, nil, nil
	}
	if fresh {
		t.init = nil
		t.curMsg, t.curResp = bytes.Clone(d), resp
		t.activate(now, s, addr)
		return
	}
	// Not vouched for: it may be a replay. Our own handshake, if any,
	// goes on; the session becomes current when the initiator's first
	// transport datagram opens under it.
	t.pending, t.pendMsg, t.pendResp = s, bytes.Clone(d), resp
}

// sameAddr reports whether a and b are the same address (nil: none).
func sameAddr(a, b net.Addr) bool {
	return a != nil && b != nil && a.Network() == b.Network() && a.String() == b.String()
}

func (t *datagramTransport) onResp(now time.Time, d []byte, addr net.Addr) {
	if t.init == nil {
		return // not waiting for one (a late copy)
	}
	ch, err := t.init.Complete(now, d, t.chcfg)
	if err != nil {
		t.l.mu.Lock()
		t.l.hsFails++
		t.l.mu.Unlock()
		t.stats.Forged++
		return
	}
	t.init = nil
	t.curMsg, t.curResp = nil, nil
	t.activate(now, t.newSess(ch), addr)
}

func (t *datagramTransport) onTransport(now time.Time, d []byte, addr net.Addr) {
	var first error
	for _, s := range []*dgSess{t.cur, t.pending} {
		if s == nil {
			continue
		}
		pn, flags, p, err := s.ch.Open(now, d)
		if err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		if s == t.pending {
			// Confirmed: the initiator holds the session's keys, so its
			// MsgInit was fresh; its stamp is now the largest accepted.
			t.curMsg, t.curResp = t.pendMsg, nil
			t.pending, t.pendMsg, t.pendResp = nil, nil, nil
			t.init = nil
			if s.stamp > t.state.Accepted {
				t.state.Accepted = s.stamp
				if err := t.state.Save(); err != nil {
					t.l.log.Error("link: datagram state", "err", err)
				}
			}
			t.known = true
			t.activate(now, s, addr)
		}
		s.lastAuth = now
		if largest, _ := s.ch.Largest(); largest == pn && (t.peer == nil || addr.String() != t.peer.String()) {
			t.stats.AddressChanges++
			t.l.log.Info("link: peer address changed", "from", fmt.Sprint(t.peer), "to", addr.String())
			t.peer = addr
		}
		data, err := s.arq.Receive(now, pn, flags, p)
		if err != nil {
			t.l.log.Warn("link: datagram", "err", err)
		}
		if a, ok := s.arq.LargestAcked(); ok {
			s.ch.Acked(a)
		}
		if len(data) > 0 {
			s.rbuf = append(s.rbuf, data...)
			close(s.rwake)
			s.rwake = make(chan struct{})
		}
		t.poke()
		return
	}
	// No key opens it: forged, replayed, or from a session we no longer
	// have (the peer did not see our restart). Without an answering
	// session, start a handshake towards its sender, not more often than
	// the handshake's retry interval.
	switch {
	case errors.Is(first, dgram.ErrReplay):
		t.stats.Replayed++
		return // a copy of an authentic datagram: no reason to handshake
	case errors.Is(first, dgram.ErrShort):
		t.stats.Truncated++
		return
	case first != nil:
		t.stats.Forged++
	}
	t.stats.Undecryptable++
	silent := t.cur == nil || now.Sub(t.cur.lastAuth) > max(10*time.Second, 4*t.cur.arq.SRTT())
	// A pending session does not hold it back: it may be a replay's.
	if silent && t.init == nil && !now.Before(t.initOK) {
		t.junkWait = min(max(2*t.junkWait, t.l.cfg.ReconnectMin), t.l.cfg.ReconnectMax)
		t.initOK = now.Add(t.junkWait)
		t.startInit(now, addr)
	}
}

func (t *datagramTransport) newSess(ch *dgram.Channel) *dgSess {
	return &dgSess{t: t, ch: ch, rwake: make(chan struct{}), done: make(chan struct{}),
		arq: dgram.NewARQ(dgram.ARQConfig{MTU: t.mtu, RateBPS: t.l.rate.Load(), HeaderBytes: UDPHeaderBytes,
			MaxProbe: t.l.cfg.DatagramMaxProbe})}
}

// activate makes s the session the Link runs on; t.mu is held.
func (t *datagramTransport) activate(now time.Time, s *dgSess, addr net.Addr) {
	t.stats.Handshakes++
	if old := t.cur; old != nil {
		old.end()
	}
	t.cur, t.peer, s.lastAuth = s, addr, now
	t.l.log.Info("link: datagram session", "peer", addr.String())
	go func() {
		err := t.l.run(t.ctx, s, s.wireOut)
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.ctx.Err() != nil {
			return
		}
		t.l.log.Warn("link: datagram session ended", "err", err)
		if t.cur == s {
			// The Link gave up on it (the peer was silent for DeadAfter):
			// start afresh with a handshake once the peer answers again.
			s.end()
			t.cur = nil
			if t.peer != nil && t.init == nil {
				t.startInit(time.Now(), t.peer)
			}
		}
	}()
	t.poke()
}

// end stops the session's stream; t.mu is held.
func (s *dgSess) end() {
	if s.ended {
		return
	}
	s.ended = true
	t := s.t
	cs := s.ch.Stats
	t.old.Rekeys += cs.Rekeys
	t.old.PeerRekeys += cs.PeerRekeys
	as := s.arq.Stats
	t.oldARQ.Retransmits += as.Retransmits
	t.oldARQ.AckOnly += as.AckOnly
	t.oldARQ.Probes += as.Probes
	t.oldARQ.Joined += as.Joined
	select {
	case <-s.done:
	default:
		close(s.done)
	}
}

func (t *datagramTransport) sendLoop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		t.mu.Lock()
		var pkt []byte
		var to net.Addr
		hs, data := false, false
		var hold time.Duration
		wait := time.Hour
		if now.Before(t.pace) {
			wait = t.pace.Sub(now)
		} else {
			var next time.Time
			pkt, to, hs, data, next = t.nextDatagram(now)
			if data {
				hold = t.hold()
			}
			if pkt == nil && !next.IsZero() {
				wait = max(next.Sub(now), time.Millisecond)
			}
		}
		t.mu.Unlock()
		if pkt != nil {
			_, err := t.c.WriteTo(pkt, to)
			t.mu.Lock()
			if err == nil {
				if hs {
					t.stats.HandshakeBytes += uint64(len(pkt))
				}
				if rate := t.l.rate.Load(); rate > 0 {
					// A datagram with data holds the pacer at least hold:
					// what comes meanwhile joins the next one.
					t.pace = maxTime(now, t.pace).Add(max(hold, txTime(uint64(len(pkt)+UDPHeaderBytes), rate)))
				}
			}
			close(t.sent)
			t.sent = make(chan struct{})
			t.mu.Unlock()
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				t.l.log.Warn("link: datagram write", "to", to.String(), "err", err)
				continue
			}
			t.l.mu.Lock()
			t.l.wireOut.TLSBytes += uint64(len(pkt))
			t.l.wireOut.Datagrams++
			t.l.mu.Unlock()
			continue
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-t.kick:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// hold is how long a datagram with data holds the pacer at least: the
// serialization time of DatagramMinWire bytes, but not more than half the
// smallest round trip measured (nothing before a sample), so that the wait
// it may add stays small beside the path's own delay; t.mu is held.
func (t *datagramTransport) hold() time.Duration {
	rate := t.l.rate.Load()
	if t.cur == nil || t.minWire <= 0 || rate <= 0 {
		return 0
	}
	return min(txTime(uint64(t.minWire), rate), t.cur.arq.MinRTT()/2)
}

// nextDatagram returns the datagram to send now (handshake messages first),
// or when to look again; t.mu is held.
func (t *datagramTransport) nextDatagram(now time.Time) (pkt []byte, to net.Addr, hs, data bool, next time.Time) {
	if len(t.out) > 0 {
		o := t.out[0]
		t.out = t.out[1:]
		return o.b, o.to, true, false, time.Time{}
	}
	if t.init != nil && t.initTo != nil {
		if !now.Before(t.initDue) {
			if t.initTries > 0 && t.initTries%3 == 0 {
				// Unanswered three times: perhaps the responder accepted
				// this stamp and restarted before answering, and would now
				// refuse it as stale. The next tries carry a new one.
				t.newInit()
			}
			t.initTries++
			t.initDue = now.Add(t.initInterval())
			return t.init.Msg, t.initTo, true, false, time.Time{}
		}
		next = t.initDue
	}
	if s := t.cur; s != nil && t.peer != nil {
		if o, ok := s.arq.Poll(now); ok {
			return s.ch.Seal(now, o.Flags, o.PN, o.PNLen, o.Plain), t.peer, false, o.Flags&dgram.FlagData != 0, time.Time{}
		}
		if n := s.arq.Next(); !n.IsZero() && (next.IsZero() || n.Before(next)) {
			next = n
		}
	}
	return nil, nil, false, false, next
}

// stats returns the counters; t.mu is not held.
func (t *datagramTransport) snapshot() DatagramStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.stats
	cs, as := t.old, t.oldARQ
	for _, s := range []*dgSess{t.cur, t.pending} {
		if s != nil && !s.ended {
			cs.Rekeys += s.ch.Stats.Rekeys
			cs.PeerRekeys += s.ch.Stats.PeerRekeys
			as.Retransmits += s.arq.Stats.Retransmits
			as.AckOnly += s.arq.Stats.AckOnly
			as.Probes += s.arq.Stats.Probes
			as.Joined += s.arq.Stats.Joined
		}
	}
	st.Rekeys, st.PeerRekeys = cs.Rekeys, cs.PeerRekeys
	st.Retransmits, st.AckOnly, st.Probes, st.Joined = as.Retransmits, as.AckOnly, as.Probes, as.Joined
	return st
}

// Read returns the peer's stream bytes, in order.
func (s *dgSess) Read(p []byte) (int, error) {
	t := s.t
	t.mu.Lock()
	// Nothing is read before the Link's first write, its HELLO: the peer's
	// HELLO, often already here when the session starts, must not be
	// handled before ours has gone (it may change our epoch, which our
	// HELLO would then name, and the EPOCH frame after it again).
	if err := s.waitLocked(func() bool { return len(s.rbuf) > 0 && s.wrote }, func() chan struct{} { return s.rwake }); err != nil {
		t.mu.Unlock()
		return 0, err
	}
	n := copy(p, s.rbuf)
	s.rbuf = s.rbuf[n:]
	if len(s.rbuf) == 0 {
		s.rbuf = nil
	}
	t.mu.Unlock()
	return n, nil
}

// waitLocked waits until ready holds, with t.mu held on entry and on
// return; wake returns the channel closed when what ready looks at changes.
// It fails once the session has ended.
func (s *dgSess) waitLocked(ready func() bool, wake func() chan struct{}) error {
	for !ready() {
		if s.ended || isDone(s.done) {
			return os.ErrDeadlineExceeded
		}
		w := wake()
		s.t.mu.Unlock()
		select {
		case <-w:
		case <-s.done:
		}
		s.t.mu.Lock()
	}
	return nil
}

// Write queues p for the peer once everything written before has been sent
// at least once (so the Link's batches grow while the link is busy, as over
// TCP), or at once when p fits in the datagram still waiting for the pacer:
// it joins it, and costs no datagram of its own. It never times out: the
// session has no connection to lose.
func (s *dgSess) Write(p []byte) (int, error) {
	t := s.t
	t.mu.Lock()
	if err := s.waitLocked(func() bool { return s.arq.Unsent() == 0 || s.arq.CanJoin(len(p)) }, func() chan struct{} { return t.sent }); err != nil {
		t.mu.Unlock()
		return 0, err
	}
	if s.ended || isDone(s.done) {
		t.mu.Unlock()
		return 0, os.ErrDeadlineExceeded
	}
	joins := s.arq.CanJoin(len(p))
	s.arq.Write(p)
	if !s.wrote {
		s.wrote = true
		close(s.rwake)
		s.rwake = make(chan struct{})
	}
	frags := (len(p) + s.arq.MaxFragment() - 1) / s.arq.MaxFragment()
	if joins {
		frags = 0
	}
	s.written += uint64(len(p) + frags*(dgram.Overhead+1+UDPHeaderBytes))
	t.mu.Unlock()
	t.poke()
	return len(p), nil
}

func (s *dgSess) wireOut() uint64 {
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	return s.written
}

// SetDeadline ends the stream's reads and writes when d is not in the
// future (the Link does that to stop a session); later deadlines are
// ignored: the session outlives outages.
func (s *dgSess) SetDeadline(d time.Time) error {
	if !d.IsZero() && !d.After(time.Now()) {
		s.t.mu.Lock()
		if !isDone(s.done) {
			close(s.done)
		}
		s.t.mu.Unlock()
	}
	return nil
}

// SetWriteDeadline: see SetDeadline.
func (s *dgSess) SetWriteDeadline(d time.Time) error { return s.SetDeadline(d) }

func isDone(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

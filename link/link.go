package link

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/isthmus-xmpp/isthmus/compress"
	"golang.org/x/sync/errgroup"
)

// Transports.
const (
	TransportTCP  = "tcp"
	TransportQUIC = "quic"
)

// Config configures a Link. Over TCP, Dial, Listener or both must be set;
// over QUIC, PacketConn and PeerAddr, QUICAccept or both.
type Config struct {
	TLS       *tls.Config                                 // from TLSConfig: pinned keys both ways
	Transport string                                      // TransportTCP (default) or TransportQUIC
	Dial      func(ctx context.Context) (net.Conn, error) // TCP: reaches the peer; nil on a listening-only side
	Listener  net.Listener                                // TCP: accepts the peer; nil on a dialling-only side

	PacketConn net.PacketConn // QUIC: the local UDP socket (both sides)
	PeerAddr   net.Addr       // QUIC: where to dial the peer; nil on an accepting-only side
	QUICAccept bool           // QUIC: accept the peer on PacketConn

	// Datagram transport (TransportDatagram): PacketConn carries it, to
	// PeerAddr when set (else to whoever authenticates first).
	PeerKey       ed25519.PublicKey  // the peer's pinned link key (required)
	Key           ed25519.PrivateKey // this gateway's link key (default: the TLS certificate's)
	DatagramMTU   int                // largest datagram, UDP payload (default DatagramMTU)
	RekeyInterval time.Duration      // send keys change this often (default 1h)
	// DatagramState is the file that keeps the handshake stamps across
	// restarts (package link/dgram, State), so that a replayed handshake
	// message is refused after a restart too; "" keeps them in memory, and
	// a handshake the peer starts then waits for its first datagram before
	// it replaces the session (one round trip more).
	DatagramState string
	// DatagramMaxProbe caps the interval of the probes sent into an outage
	// (default 10s): shorter finds the returning link sooner, at ~47 wire
	// bytes per probe. A Carrier that reports link state (LinkNotifier)
	// makes it matter less.
	DatagramMaxProbe time.Duration
	// DatagramMinWire is the least wire bytes a datagram with data holds
	// the pacer for, up to half the smallest round trip measured (default
	// DatagramMinWire; negative: none). A frame that comes meanwhile joins
	// the next datagram, so when frames queue they share datagrams instead
	// of each paying 49 bytes; a lone frame on an idle link goes at once.
	DatagramMinWire int

	// Journal, when set, is the disk spool (package link/spool): Send
	// returns once the item is written to it, and the link resumes from
	// it after a restart.
	Journal Journal
	// Expired receives iqs and messages given up after their Expires (see
	// SessionConfig.MaxAge), so the gateway can bounce them. It is called
	// without locks held, from the link's goroutines.
	Expired func([]Item)
	// Rejected receives iqs and messages the codec could not carry to the
	// peer (beyond its limits or the peer's announced decoded-size bound:
	// compress.ErrUnencodable), so the gateway can bounce them as such; when
	// nil, they go to Expired. Called like Expired.
	Rejected func([]Item)

	RateBPS          int64         // pace writes to this many bit/s of estimated wire bytes (0: unpaced)
	MSS              int           // TCP segment payload used for the header estimate (default 1448)
	ReconnectMin     time.Duration // first redial delay (default 1s)
	ReconnectMax     time.Duration // redial delay cap (default 60s)
	HandshakeTimeout time.Duration // TCP+TLS or QUIC handshake (default 60s: slow links)
	Session          SessionConfig

	// Learner, when set, learns this link's traffic and supplies the
	// dictionaries an epoch may start with (compress.Learner; see
	// "Learned dictionaries" in the package doc).
	Learner Learner

	// Deliver receives the stanzas of each DATA frame, in order, from the
	// connection's read loop. It must not block for long.
	Deliver func(stanzas [][]byte)
	Logger  *slog.Logger
}

// Learner learns what crosses the link (implemented by compress.Learner):
// Sent gets the stanzas the peer acknowledged, Received those delivered,
// each in link order; Dicts returns the learned dictionaries, newest first,
// for the encoder (send) and the decoder (recv). Sent is called with the
// link's lock held, Received from the read loop before Deliver: both must
// only queue.
type Learner interface {
	Sent(stanzas [][]byte)
	Received(stanzas [][]byte)
	Dicts() (send, recv []compress.Dict)
}

// TCP/IP overhead model; see the package doc.
const (
	HeaderBytes = 52 // IPv4 20 + TCP 20 + timestamp option 12
	synBytes    = 60 // SYN and SYN-ACK carry more options
)

// UDPHeaderBytes is the IPv4 and UDP header of each QUIC datagram.
const UDPHeaderBytes = 28

// Wire counts what one direction put on the wire (see the package doc).
type Wire struct {
	TLSBytes  uint64 // bytes written to (or read from) the socket: TLS records over TCP, QUIC packets over UDP
	Segments  uint64 // estimated TCP data segments
	Acks      uint64 // estimated pure ACK segments
	Setup     uint64 // SYN/SYN-ACK/ACK/FIN bytes
	Datagrams uint64 // UDP datagrams (QUIC)
}

// Bytes is the estimated total on the wire.
func (w Wire) Bytes() uint64 {
	return w.TLSBytes + HeaderBytes*(w.Segments+w.Acks) + w.Setup + UDPHeaderBytes*w.Datagrams
}

// Journal is the durable store behind a Link (implemented by
// link/spool.Spool): Add records an accepted item and returns its id, Apply
// records the session's operations, Sync makes both durable (it may run
// concurrently with the others), Restored returns the state to resume from.
type Journal interface {
	Add(Item) (uint64, error)
	Apply([]Op) error
	Sync() error
	Restored() Restored
}

// Stats is a snapshot of a link.
type Stats struct {
	Up                    bool
	Connects              uint64 // connections that completed the handshake
	Resumes, EpochChanges uint64
	Epoch                 uint32
	Waiting, Unacked      int // stanzas queued / in flight
	HeldBytes             int // their bytes
	Drops                 Drops
	Out, In               Counters
	WireOut, WireIn       Wire
	Datagram              DatagramStats // the datagram transport's counters
	HandshakeFailures     uint64
	QueuedBytes           int           // stanza bytes queued and unacknowledged
	Oldest                time.Time     // when the oldest of them was queued (zero: none or unknown)
	RTT                   time.Duration // smoothed DATA-to-ack time (see Session.RTT); 0: no sample yet
	SpoolBytes            int64         // stanza bytes in the journal (when it has Len() (int, int64))
	TLSResumes            uint64        // connections whose TLS (or QUIC) handshake resumed a session ticket
	WaitingHigh           int           // of Waiting: iq and message
	WaitingLow            int           // of Waiting: presence
	// HelloWait is, for the latest connection, the time from the end of the
	// transport handshake to the peer's HELLO: the session's own part of a
	// (re)connection (one round trip for the dialling side).
	HelloWait time.Duration
	// ProtocolErrors counts frames from the peer refused as protocol
	// errors (each dropped its connection); see Session.ProtocolErrors.
	ProtocolErrors uint64
	// Dict and PeerDict name the dictionaries the current epochs are
	// primed with, ours and the peer's (zero: the built-in one);
	// DictErrors counts epochs whose learned dictionary could not be used
	// (see Session.DictErrors).
	Dict, PeerDict compress.DictHash
	DictErrors     uint64
	// HandshakeOut and HandshakeIn are the wire bytes (of WireOut and
	// WireIn) counted while no connection ran the session: over TCP the
	// SYNs and TLS handshakes (with their TCP/IP headers and ACKs), over
	// QUIC the packets before the session's stream started, for the first
	// connection and every reconnection. The datagram transport counts its
	// handshakes in Datagram.HandshakeBytes instead (its session outlives
	// outages).
	HandshakeOut, HandshakeIn uint64
	// ModemBacklog is, over TCP with a rate, how long the modem needs to
	// send the estimated wire bytes already handed to it (the pacer waits
	// for it to be zero before the next write).
	ModemBacklog time.Duration
	// QUICDrops counts QUIC datagrams dropped before the air because the
	// pacing queue already held a full-size packet's airtime (see
	// countPacketConn.WriteTo); quic-go retransmits what they carried.
	QUICDrops uint64
}

// Link runs the session with the peer over successive connections.
type Link struct {
	cfg  Config
	log  *slog.Logger
	wake chan struct{}
	rate atomic.Int64 // pacing rate in bit/s (Config.RateBPS; SetRate)

	mu         sync.Mutex // guards the following fields
	sess       *Session
	nextID     uint64 // item ids when there is no journal
	tlsResumes uint64 // connections whose TLS handshake resumed a session
	wireOut    Wire
	wireIn     Wire
	connects   uint64
	hsFails    uint64
	activeEnd  func()        // cancels the connection being served
	activeWG   chan struct{} // closed when it has finished
	upAt       time.Time     // when the current connection's transport handshake ended
	dg         *datagramTransport
	helloWait  time.Duration // see Stats.HelloWait
	// TCP pacing: the estimated wire out (wireOut.Bytes()) is fed, as it
	// is counted, to a model of the modem's serializer at the link rate;
	// modemFree is when it will have sent all of it, charged how much of
	// the estimate it has been fed.
	modemFree time.Time
	charged   uint64
	// Transport handshakes: wire bytes counted while no connection ran the
	// session (Stats.HandshakeOut/In); wireMark is the wire count both
	// ways when the last connection ended (or at the start).
	hsOut, hsIn uint64
	wireMark    [2]uint64
	quicDrops   uint64 // see Stats.QUICDrops
}

// New returns a link; Run starts it.
func New(cfg Config) (*Link, error) {
	if cfg.TLS == nil {
		return nil, errors.New("link: no TLS configuration")
	}
	switch cfg.Transport {
	case "", TransportTCP:
		cfg.Transport = TransportTCP
		if cfg.Dial == nil && cfg.Listener == nil {
			return nil, errors.New("link: neither dial nor listen configured")
		}
	case TransportQUIC:
		if cfg.PacketConn == nil || (cfg.PeerAddr == nil && !cfg.QUICAccept) {
			return nil, errors.New("link: QUIC needs a PacketConn and a PeerAddr, QUICAccept or both")
		}
	case TransportDatagram:
		if cfg.PacketConn == nil {
			return nil, errors.New("link: the datagram transport needs a PacketConn")
		}
	default:
		return nil, fmt.Errorf("link: unknown transport %q", cfg.Transport)
	}
	if cfg.Deliver == nil {
		return nil, errors.New("link: no Deliver function")
	}
	if cfg.MSS <= 0 {
		cfg.MSS = 1448
	}
	if cfg.ReconnectMin <= 0 {
		cfg.ReconnectMin = time.Second
	}
	if cfg.ReconnectMax < cfg.ReconnectMin {
		cfg.ReconnectMax = max(60*time.Second, cfg.ReconnectMin)
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 60 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	sess, err := NewSession(cfg.Session, randomID)
	if err != nil {
		return nil, err
	}
	if cfg.Expired != nil {
		sess.CollectExpired()
	}
	if cfg.Learner != nil {
		sess.CollectAcked()
		sess.SetDicts(cfg.Learner.Dicts())
	}
	if cfg.Journal != nil {
		r := cfg.Journal.Restored()
		sess.Restore(r, time.Now())
		cfg.Logger.Info("link: resuming from the spool", "items", len(r.Items), "epoch", r.Epoch, "acked", r.Acked,
			"frames", len(r.Frames), "peer_epoch", r.PeerEpoch, "h", r.H)
	}
	l := &Link{cfg: cfg, log: cfg.Logger, sess: sess, wake: make(chan struct{}, 1)}
	l.rate.Store(cfg.RateBPS)
	if cfg.Transport == TransportDatagram {
		if l.dg, err = l.newDatagram(); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// txTime is how long n wire bytes take to leave at rate bit/s.
func txTime(n uint64, rate int64) time.Duration {
	return time.Duration(float64(n*8) / float64(rate) * float64(time.Second))
}

// SetRate changes the pacing rate (bit/s; 0: unpaced) from the next write
// on, e.g. when the configuration is reloaded.
func (l *Link) SetRate(bps int64) { l.rate.Store(max(0, bps)) }

func randomID() uint32 {
	var b [4]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}

// Send queues an item for the peer; with a Journal it returns once the item
// is written to the spool. It does not wait for the link. ErrQueueFull (the
// spool is full of iqs and messages) or a journal error means the caller
// must refuse (bounce) the stanza.
func (l *Link) Send(it Item) error {
	now := time.Now()
	if it.Expires.IsZero() {
		it.Expires = now.Add(l.sess.cfg.MaxAge)
	}
	l.mu.Lock()
	var err error
	if l.cfg.Journal == nil {
		l.nextID++
		err = l.sess.Enqueue(now, l.nextID, it)
		l.sess.TakeOps()
	} else if err = l.sess.Enqueue(now, 0, it); err == nil {
		// Enqueue is done first so a refused item is not written; the id
		// is fixed up below once the journal has assigned it.
		var id uint64
		id, err = l.cfg.Journal.Add(it)
		if err != nil {
			l.sess.Unenqueue(0)
		} else {
			l.sess.SetID(0, id)
			err = l.cfg.Journal.Apply(l.sess.TakeOps())
		}
	}
	l.mu.Unlock()
	if err == nil {
		l.poke()
	}
	return err
}

// housekeeping fsyncs the journal every batch window (SyncBatch) and hands
// back expired items while the link is down (Poll does it while it is up).
func (l *Link) housekeeping(ctx context.Context) error {
	t := time.NewTicker(max(l.sess.cfg.BatchWindow, 10*time.Millisecond))
	defer t.Stop()
	lastExpire := time.Now()
	for {
		select {
		case <-ctx.Done():
			if l.cfg.Journal != nil {
				return l.cfg.Journal.Sync()
			}
			return nil
		case now := <-t.C:
			if l.cfg.Journal != nil {
				if err := l.cfg.Journal.Sync(); err != nil {
					l.log.Error("link: spool", "err", err)
				}
			}
			if now.Sub(lastExpire) >= time.Second {
				lastExpire = now
				l.mu.Lock()
				l.sess.Expire(now)
				l.applyOps()
				l.mu.Unlock()
				l.handBack()
			}
		}
	}
}

// applyOps writes the session's operations to the journal; l.mu is held.
func (l *Link) applyOps() {
	if l.cfg.Learner != nil {
		l.cfg.Learner.Sent(l.sess.TakeAcked())
	}
	ops := l.sess.TakeOps()
	if l.cfg.Journal == nil || len(ops) == 0 {
		return
	}
	if err := l.cfg.Journal.Apply(ops); err != nil {
		l.log.Error("link: spool", "err", err)
	}
}

// handBack passes expired items, and the iqs and messages the codec could
// not carry (logged with the reason), to Config.Expired; l.mu is not held.
func (l *Link) handBack() {
	l.mu.Lock()
	ex := l.sess.TakeExpired()
	rej := l.sess.TakeRejected()
	l.mu.Unlock()
	var back []Item
	for _, r := range rej {
		l.log.Warn("link: stanza the codec cannot carry to the peer: dropped", "class", r.Class, "bytes", len(r.Data), "err", r.Err)
		if r.Class != ClassPresence {
			back = append(back, r.Item)
		}
	}
	if len(back) > 0 && l.cfg.Rejected != nil {
		l.cfg.Rejected(back)
	} else {
		ex = append(ex, back...)
	}
	if len(ex) > 0 && l.cfg.Expired != nil {
		l.cfg.Expired(ex)
	}
}

func (l *Link) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Stats returns a snapshot of the counters.
func (l *Link) Stats() Stats {
	var dg DatagramStats
	if l.dg != nil {
		dg = l.dg.snapshot() // its lock is taken before l.mu, never inside it
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	w, u := l.sess.Queued()
	var spooled int64
	if j, ok := l.cfg.Journal.(interface{ Len() (int, int64) }); ok {
		_, spooled = j.Len() // under l.mu, as the journal requires
	}
	hi, lo := l.sess.WaitingByPriority()
	dict, peerDict := l.sess.Dicts()
	hsOut, hsIn := l.hsOut, l.hsIn
	if l.activeEnd == nil && l.cfg.Transport != TransportDatagram {
		hsOut += l.wireOut.Bytes() - l.wireMark[0]
		hsIn += l.wireIn.Bytes() - l.wireMark[1]
	}
	return Stats{Dict: dict, PeerDict: peerDict, DictErrors: l.sess.DictErrors, Datagram: dg,
		QUICDrops: l.quicDrops, HandshakeOut: hsOut, HandshakeIn: hsIn, ModemBacklog: max(0, time.Until(l.modemFree)),
		WaitingHigh: hi, WaitingLow: lo, TLSResumes: l.tlsResumes,
		Up: l.sess.Ready(), Connects: l.connects, Resumes: l.sess.Resumes,
		EpochChanges: l.sess.EpochChanges, Epoch: l.sess.Epoch(),
		Waiting: w, Unacked: u, HeldBytes: l.sess.HeldBytes(), Drops: l.sess.Drops,
		Out: l.sess.Out, In: l.sess.In,
		WireOut: l.wireOut, WireIn: l.wireIn, HandshakeFailures: l.hsFails,
		QueuedBytes: l.sess.HeldBytes(), Oldest: l.sess.Oldest(), RTT: l.sess.RTT(), SpoolBytes: spooled,
		HelloWait: l.helloWait, ProtocolErrors: l.sess.ProtocolErrors,
	}
}

func (l *Link) noteResumed(did bool) {
	if did {
		l.mu.Lock()
		l.tlsResumes++
		l.mu.Unlock()
	}
}

// Run dials and/or accepts the peer until ctx ends.
func (l *Link) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return l.housekeeping(ctx) })
	if l.cfg.Transport == TransportQUIC || l.cfg.Transport == TransportDatagram {
		run := l.runQUIC
		if l.cfg.Transport == TransportDatagram {
			run = l.runDatagram
		}
		g.Go(func() error { return run(ctx) })
		err := g.Wait()
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if l.cfg.Dial != nil {
		g.Go(func() error { return l.dialLoop(ctx) })
	}
	if l.cfg.Listener != nil {
		g.Go(func() error { return l.acceptLoop(ctx) })
		g.Go(func() error {
			<-ctx.Done()
			return l.cfg.Listener.Close()
		})
	}
	err := g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (l *Link) dialLoop(ctx context.Context) error {
	delay := l.cfg.ReconnectMin
	for ctx.Err() == nil {
		c, err := l.cfg.Dial(ctx)
		if err != nil {
			l.log.Warn("link: dial failed", "err", err, "retry_in", delay)
		} else {
			start := time.Now()
			err = l.serve(ctx, c, true)
			if ctx.Err() != nil {
				return nil
			}
			l.log.Warn("link: connection ended", "err", err, "lasted", time.Since(start).Round(time.Millisecond))
			if time.Since(start) > 4*delay {
				delay = l.cfg.ReconnectMin
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		delay = min(2*delay, l.cfg.ReconnectMax)
	}
	return nil
}

func (l *Link) acceptLoop(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := l.cfg.Listener.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("link: accept: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := l.serve(ctx, c, false)
			if ctx.Err() == nil {
				l.log.Warn("link: connection ended", "peer", c.RemoteAddr().String(), "err", err)
			}
		}()
	}
}

// serve runs one connection: TLS handshake, then the session's read and
// write loops. A newer connection replaces an older one.
func (l *Link) serve(ctx context.Context, raw net.Conn, client bool) error {
	cc := &countConn{Conn: raw, l: l, mss: l.cfg.MSS}
	l.mu.Lock()
	if client {
		l.wireOut.Setup += synBytes + HeaderBytes // SYN, final ACK
		l.wireIn.Setup += synBytes                // SYN-ACK
	} else {
		l.wireOut.Setup += synBytes
		l.wireIn.Setup += synBytes + HeaderBytes
	}
	l.chargeLocked()
	l.mu.Unlock()
	var tc *tls.Conn
	if client {
		tc = tls.Client(cc, l.cfg.TLS)
	} else {
		tc = tls.Server(cc, l.cfg.TLS)
	}
	defer tc.Close()
	hctx, cancel := context.WithTimeout(ctx, l.cfg.HandshakeTimeout)
	err := tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		l.mu.Lock()
		l.hsFails++
		l.mu.Unlock()
		return fmt.Errorf("link: TLS handshake with %s: %w", raw.RemoteAddr(), err)
	}
	l.log.Info("link: connected", "transport", "tcp", "peer", raw.RemoteAddr().String(), "resumed_tls", tc.ConnectionState().DidResume)
	l.noteResumed(tc.ConnectionState().DidResume)
	return l.run(ctx, tc, cc.wireOut)
}

// stream is one connection's byte stream: a TLS conn or a QUIC stream.
type stream interface {
	io.ReadWriter
	SetDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// run takes the session for a connection and runs its read and write loops.
// wireOut returns the wire bytes written so far (for pacing); nil means
// estimate them (QUIC).
func (l *Link) run(ctx context.Context, tc stream, wireOut func() uint64) error {
	// Take the session: end whatever connection had it.
	ctx, end := context.WithCancel(ctx)
	defer end()
	done := make(chan struct{})
	for {
		l.mu.Lock()
		prevEnd, prevDone := l.activeEnd, l.activeWG
		if prevEnd == nil {
			if l.cfg.Transport != TransportDatagram {
				l.hsOut += l.wireOut.Bytes() - l.wireMark[0]
				l.hsIn += l.wireIn.Bytes() - l.wireMark[1]
			}
			l.activeEnd, l.activeWG = end, done
			l.upAt = time.Now()
			if l.cfg.Learner != nil {
				// What the learner built meanwhile: named in our HELLO,
				// and used by the epochs this connection starts.
				l.sess.SetDicts(l.cfg.Learner.Dicts())
			}
			l.sess.Connected(l.upAt)
			l.connects++
			l.mu.Unlock()
			break
		}
		l.mu.Unlock()
		prevEnd()
		select {
		case <-prevDone:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	defer func() {
		l.mu.Lock()
		l.sess.Disconnected()
		l.activeEnd, l.activeWG = nil, nil
		l.wireMark = [2]uint64{l.wireOut.Bytes(), l.wireIn.Bytes()}
		l.mu.Unlock()
		close(done)
	}()
	l.poke()

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return l.readLoop(ctx, tc) })
	g.Go(func() error { return l.writeLoop(ctx, tc, wireOut) })
	g.Go(func() error {
		<-ctx.Done()
		tc.SetDeadline(time.Now()) // unblock both loops
		return nil
	})
	return g.Wait()
}

func (l *Link) readLoop(ctx context.Context, tc stream) error {
	br := bufio.NewReader(tc)
	for {
		f, err := ReadFrame(br)
		if err != nil {
			return fmt.Errorf("link: read: %w", err)
		}
		l.mu.Lock()
		var before [2]uint64
		if f.Type == FrameHello {
			before = [2]uint64{l.sess.Resumes, l.sess.EpochChanges}
		}
		dictErrs := l.sess.DictErrors
		batch, err := l.sess.Receive(time.Now(), f)
		l.applyOps() // the received count is on disk before the stanzas leave
		if l.sess.DictErrors > dictErrs {
			_, dec := l.sess.Dicts()
			l.log.Warn("link: the peer's epoch is primed with a dictionary we cannot use: asking for a new epoch", "dict", dec.String(), "frame", f.Type)
		}
		if f.Type == FrameHello && err == nil {
			l.helloWait = time.Since(l.upAt)
			h, _ := ParseHello(f.Payload)
			w, u := l.sess.Queued()
			enc, dec := l.sess.Dicts()
			l.log.Info("link: peer hello", "dict", enc.String(), "peer_dict", dec.String(), "peer_dicts", len(h.Dicts), "peer_epoch", h.Epoch, "our_epoch_seen", h.PeerEpoch, "h", h.H, "decoder_lost", h.Flags&HelloDecoderLost != 0,
				"resumed", l.sess.Resumes > before[0], "new_epoch", l.sess.EpochChanges > before[1], "epoch", l.sess.Epoch(), "waiting", w, "unacked", u)
		}
		l.mu.Unlock()
		if err != nil {
			return err
		}
		if len(batch) > 0 {
			if l.cfg.Learner != nil {
				l.cfg.Learner.Received(batch)
			}
			l.cfg.Deliver(batch)
		}
		l.poke()
	}
}

func (l *Link) writeLoop(ctx context.Context, tc stream, wireOut func() uint64) error {
	// Over TCP the pacer waits until the modem model (chargeLocked) has
	// sent everything counted: handshakes, earlier writes and the pure
	// ACKs this side returned for the peer's data, which share the link's
	// rate. Over the other transports, paceAt: each write is charged with
	// everything wireOut grew by since the last one (datagram), or with an
	// estimate (QUIC, whose datagrams are also paced one by one below it).
	tcp := l.cfg.Transport == TransportTCP
	var paceAt time.Time
	var charged uint64
	if wireOut != nil && !tcp {
		charged = wireOut()
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		var buf []byte
		var next time.Time
		l.mu.Lock()
		if l.sess.Dead(now) {
			l.mu.Unlock()
			return errors.New("link: peer silent: connection presumed dead")
		}
		if tcp {
			paceAt = l.modemFree
		}
		if !now.Before(paceAt) {
			buf = l.sess.Poll(now)
			l.applyOps() // frames and acks are on disk before they are on the wire
		}
		next = l.sess.Next()
		l.mu.Unlock()
		l.handBack()

		if buf != nil {
			tc.SetWriteDeadline(now.Add(l.cfg.HandshakeTimeout + time.Duration(len(buf))*time.Second))
			if _, err := tc.Write(buf); err != nil {
				return fmt.Errorf("link: write: %w", err)
			}
			if tcp {
				continue // countConn.Write charged the modem model
			}
			var wire uint64
			if wireOut != nil {
				w := wireOut()
				wire, charged = w-charged, w
			} else {
				wire = quicEstimate(len(buf))
			}
			if rate := l.rate.Load(); rate > 0 {
				paceAt = maxTime(now, paceAt).Add(txTime(wire, rate))
			}
			continue
		}
		wait := time.Hour
		if now.Before(paceAt) {
			wait = paceAt.Sub(now)
		} else if !next.IsZero() {
			wait = max(next.Sub(now), time.Millisecond)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-l.wake:
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

// countConn counts the bytes TLS moves through the socket and estimates
// segments (see the package doc).
type countConn struct {
	net.Conn
	l   *Link
	mss int
}

func (c *countConn) segs(n int) uint64 { return uint64((n + c.mss - 1) / c.mss) }

func (c *countConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.l.mu.Lock()
		c.l.wireOut.TLSBytes += uint64(n)
		c.l.wireOut.Segments += c.segs(n)
		c.l.wireIn.Acks = (c.l.wireOut.Segments + 1) / 2 // the peer's delayed ACKs
		c.l.chargeLocked()
		c.l.mu.Unlock()
	}
	return n, err
}

func (c *countConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.l.mu.Lock()
		c.l.wireIn.TLSBytes += uint64(n)
		c.l.wireIn.Segments += c.segs(n)
		c.l.wireOut.Acks = (c.l.wireIn.Segments + 1) / 2 // our delayed ACKs
		c.l.chargeLocked()
		c.l.mu.Unlock()
	}
	return n, err
}

// chargeLocked feeds what the estimated wire out grew by since the last
// call to the modem model: a serializer at the link rate that starts on
// bytes when they are counted, or when it has sent the earlier ones. The
// TCP pacer writes only when it is idle, so the modem's queue never holds
// more than one write (and the ACKs returned meanwhile), and over any span
// the estimated wire stays within the rate plus that one write. l.mu is
// held.
func (l *Link) chargeLocked() {
	w := l.wireOut.Bytes()
	n := w - l.charged
	l.charged = w
	if rate := l.rate.Load(); rate > 0 && n > 0 {
		l.modemFree = maxTime(time.Now(), l.modemFree).Add(txTime(n, rate))
	}
}

func (c *countConn) wireOut() uint64 {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	return c.l.wireOut.Bytes()
}

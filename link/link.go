package link

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// Config configures a Link. Dial, Listener or both must be set.
type Config struct {
	TLS      *tls.Config                                 // from TLSConfig: pinned keys both ways
	Dial     func(ctx context.Context) (net.Conn, error) // reaches the peer; nil on a listening-only side
	Listener net.Listener                                // accepts the peer; nil on a dialling-only side

	RateBPS          int64         // pace writes to this many bit/s of estimated wire bytes (0: unpaced)
	MSS              int           // TCP segment payload used for the header estimate (default 1448)
	ReconnectMin     time.Duration // first redial delay (default 1s)
	ReconnectMax     time.Duration // redial delay cap (default 60s)
	HandshakeTimeout time.Duration // TCP+TLS+HELLO (default 60s: slow links)
	Session          SessionConfig

	// Deliver receives the stanzas of each DATA frame, in order, from the
	// connection's read loop. It must not block for long.
	Deliver func(stanzas [][]byte)
	Logger  *slog.Logger
}

// TCP/IP overhead model; see the package doc.
const (
	HeaderBytes = 52 // IPv4 20 + TCP 20 + timestamp option 12
	synBytes    = 60 // SYN and SYN-ACK carry more options
)

// Wire counts what one direction put on the wire (see the package doc).
type Wire struct {
	TLSBytes uint64 // bytes written to (or read from) the TCP socket
	Segments uint64 // estimated data segments
	Acks     uint64 // estimated pure ACK segments
	Setup    uint64 // SYN/SYN-ACK/ACK/FIN bytes
}

// Bytes is the estimated total on the wire.
func (w Wire) Bytes() uint64 {
	return w.TLSBytes + HeaderBytes*(w.Segments+w.Acks) + w.Setup
}

// Stats is a snapshot of a link.
type Stats struct {
	Up                    bool
	Connects              uint64 // connections that completed the handshake
	Resumes, EpochChanges uint64
	Epoch                 uint32
	Waiting, Unacked      int // stanzas queued / in flight
	Out, In               Counters
	WireOut, WireIn       Wire
	HandshakeFailures     uint64
	QueuedBytes           int           // stanza bytes queued and unacknowledged
	Oldest                time.Time     // when the oldest of them was queued (zero: none or unknown)
	RTT                   time.Duration // smoothed DATA-to-ack time (see Session.SRTT); 0: no sample yet
}

// Link runs the session with the peer over successive connections.
type Link struct {
	cfg  Config
	log  *slog.Logger
	wake chan struct{}

	mu        sync.Mutex // guards the following fields
	sess      *Session
	wireOut   Wire
	wireIn    Wire
	connects  uint64
	hsFails   uint64
	activeEnd func()        // cancels the connection being served
	activeWG  chan struct{} // closed when it has finished
}

// New returns a link; Run starts it.
func New(cfg Config) (*Link, error) {
	if cfg.TLS == nil {
		return nil, errors.New("link: no TLS configuration")
	}
	if cfg.Dial == nil && cfg.Listener == nil {
		return nil, errors.New("link: neither dial nor listen configured")
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
	return &Link{cfg: cfg, log: cfg.Logger, sess: sess, wake: make(chan struct{}, 1)}, nil
}

func randomID() uint32 {
	var b [4]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}

// Send queues a stanza for the peer. It never blocks; ErrQueueFull means
// the caller must refuse (bounce) the stanza.
func (l *Link) Send(st []byte) error {
	l.mu.Lock()
	err := l.sess.Enqueue(time.Now(), st)
	l.mu.Unlock()
	if err == nil {
		l.poke()
	}
	return err
}

func (l *Link) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Stats returns a snapshot of the counters.
func (l *Link) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	w, u := l.sess.Queued()
	return Stats{
		Up: l.sess.Ready(), Connects: l.connects, Resumes: l.sess.Resumes,
		EpochChanges: l.sess.EpochChanges, Epoch: l.sess.Epoch(),
		Waiting: w, Unacked: u, Out: l.sess.Out, In: l.sess.In,
		WireOut: l.wireOut, WireIn: l.wireIn, HandshakeFailures: l.hsFails,
		QueuedBytes: l.sess.HeldBytes(), Oldest: l.sess.Oldest(), RTT: l.sess.SRTT,
	}
}

// Run dials and/or accepts the peer until ctx ends.
func (l *Link) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
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

	// Take the session: end whatever connection had it.
	ctx, end := context.WithCancel(ctx)
	defer end()
	done := make(chan struct{})
	for {
		l.mu.Lock()
		prevEnd, prevDone := l.activeEnd, l.activeWG
		if prevEnd == nil {
			l.activeEnd, l.activeWG = end, done
			l.sess.Connected(time.Now())
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
		l.mu.Unlock()
		close(done)
	}()
	l.log.Info("link: connected", "peer", raw.RemoteAddr().String(), "resumed_tls", tc.ConnectionState().DidResume)
	l.poke()

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return l.readLoop(ctx, tc) })
	g.Go(func() error { return l.writeLoop(ctx, tc, cc) })
	g.Go(func() error {
		<-ctx.Done()
		tc.SetDeadline(time.Now()) // unblock both loops
		return nil
	})
	err = g.Wait()
	return err
}

func (l *Link) readLoop(ctx context.Context, tc *tls.Conn) error {
	br := bufio.NewReader(tc)
	for {
		f, err := ReadFrame(br)
		if err != nil {
			return fmt.Errorf("link: read: %w", err)
		}
		l.mu.Lock()
		batch, err := l.sess.Receive(time.Now(), f)
		l.mu.Unlock()
		if err != nil {
			return err
		}
		if len(batch) > 0 {
			l.cfg.Deliver(batch)
		}
		l.poke()
	}
}

func (l *Link) writeLoop(ctx context.Context, tc *tls.Conn, cc *countConn) error {
	var paceAt time.Time
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
		if !now.Before(paceAt) {
			buf = l.sess.Poll(now)
		}
		next = l.sess.Next()
		l.mu.Unlock()

		if buf != nil {
			before := cc.wireOut()
			tc.SetWriteDeadline(now.Add(l.cfg.HandshakeTimeout + time.Duration(len(buf))*time.Second))
			if _, err := tc.Write(buf); err != nil {
				return fmt.Errorf("link: write: %w", err)
			}
			if l.cfg.RateBPS > 0 {
				wire := cc.wireOut() - before
				paceAt = maxTime(now, paceAt).Add(time.Duration(float64(wire*8) / float64(l.cfg.RateBPS) * float64(time.Second)))
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
		c.l.mu.Unlock()
	}
	return n, err
}

func (c *countConn) wireOut() uint64 {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	return c.l.wireOut.Bytes()
}

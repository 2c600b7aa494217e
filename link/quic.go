package link

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"golang.org/x/sync/errgroup"
)

// quicPacketSize is the largest QUIC packet we let quic-go send: the
// minimum every path must carry, and no path MTU probing (probes cost bytes
// on slow links).
const quicPacketSize = 1200

// quicOverhead estimates the QUIC bytes around each packet's stream data:
// short header (1 + 8 connection id + up to 4 packet number), STREAM frame
// header (about 8), AEAD tag 16, and one ACK packet of about 40 bytes from the
// peer for every two packets, counted here for simplicity.
const quicOverhead = 1 + 8 + 4 + 8 + 16

// quicEstimate returns the estimated wire bytes for writing n bytes on a
// QUIC stream, for pacing: the packets' payload, QUIC and UDP/IP headers.
func quicEstimate(n int) uint64 {
	pkts := (n + quicPacketSize - quicOverhead - 1) / (quicPacketSize - quicOverhead)
	return uint64(n + pkts*(quicOverhead+UDPHeaderBytes))
}

// QUICConfig returns the quic-go configuration the link uses: timeouts for
// slow links (the handshake may take many seconds at 2400 bit/s), no QUIC
// keep-alive (the session's ACKREQ does that job, only as often as
// SessionConfig.Keepalive), an idle timeout above DeadAfter, the smallest
// initial packet, no path MTU discovery, and an address-validation token
// store so a reconnect skips the server's amplification limit. quic-go has
// no option to seed the RTT of a first connection; resumed connections start
// from the RTT stored in the session ticket. Datagrams are paced to the link
// rate below quic-go (countPacketConn.WriteTo).
func (l *Link) QUICConfig() *quic.Config {
	return &quic.Config{
		HandshakeIdleTimeout:    l.cfg.HandshakeTimeout,
		MaxIdleTimeout:          l.sess.cfg.DeadAfter + time.Minute,
		KeepAlivePeriod:         0,
		InitialPacketSize:       quicPacketSize,
		DisablePathMTUDiscovery: true,
		MaxIncomingStreams:      4,
		MaxIncomingUniStreams:   -1,
		TokenStore:              quic.NewLRUTokenStore(4, 4),
	}
}

// runQUIC dials and/or accepts the peer over QUIC on PacketConn. Each QUIC
// connection carries the session on one bidirectional stream that the
// dialling side opens.
func (l *Link) runQUIC(ctx context.Context) error {
	pc := &countPacketConn{PacketConn: l.cfg.PacketConn, l: l}
	tr := &quic.Transport{Conn: pc, StatelessResetKey: l.resetKey()}
	defer tr.Close()
	qc := l.QUICConfig()
	g, ctx := errgroup.WithContext(ctx)
	if l.cfg.QUICAccept {
		ln, err := tr.Listen(l.cfg.TLS, qc)
		if err != nil {
			return fmt.Errorf("link: QUIC listen: %w", err)
		}
		g.Go(func() error {
			<-ctx.Done()
			return ln.Close()
		})
		g.Go(func() error { return l.acceptQUIC(ctx, ln) })
	}
	if l.cfg.PeerAddr != nil {
		g.Go(func() error { return l.dialQUIC(ctx, tr, qc) })
	}
	return g.Wait()
}

func (l *Link) dialQUIC(ctx context.Context, tr *quic.Transport, qc *quic.Config) error {
	delay := l.cfg.ReconnectMin
	for ctx.Err() == nil {
		start := time.Now()

		conn, err := tr.Dial(ctx, l.cfg.PeerAddr, l.cfg.TLS, qc)
		if err != nil {
			l.mu.Lock()
			l.hsFails++
			l.mu.Unlock()
			l.log.Warn("link: QUIC dial failed", "err", err, "retry_in", delay)
		} else {
			err = l.serveQUIC(ctx, conn, true)
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

func (l *Link) acceptQUIC(ctx context.Context, ln *quic.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := ln.Accept(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, quic.ErrServerClosed) {
				return nil
			}
			return fmt.Errorf("link: QUIC accept: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := l.serveQUIC(ctx, conn, false)
			if ctx.Err() == nil {
				l.log.Warn("link: connection ended", "peer", conn.RemoteAddr().String(), "err", err)
			}
		}()
	}
}

func (l *Link) serveQUIC(ctx context.Context, conn *quic.Conn, client bool) error {
	defer conn.CloseWithError(0, "")
	var st *quic.Stream
	var err error
	if client {
		st, err = conn.OpenStream()
	} else {
		actx, cancel := context.WithTimeout(ctx, l.cfg.HandshakeTimeout)
		st, err = conn.AcceptStream(actx)
		cancel()
	}
	if err != nil {
		return fmt.Errorf("link: QUIC stream with %s: %w", conn.RemoteAddr(), err)
	}
	defer st.Close()
	go func() {
		// A closed connection unblocks the stream's reads and writes.
		select {
		case <-conn.Context().Done():
		case <-ctx.Done():
		}
		st.CancelRead(0)
		st.CancelWrite(0)
	}()
	l.log.Info("link: connected", "transport", "quic", "peer", conn.RemoteAddr().String(), "resumed_tls", conn.ConnectionState().TLS.DidResume)
	l.noteResumed(conn.ConnectionState().TLS.DidResume)
	return l.run(ctx, st, nil)
}

// resetKey derives the QUIC stateless reset key from this gateway's private
// key, so that a restarted gateway resets the peer's connection to its
// previous process at once (instead of the peer waiting for the idle
// timeout).
func (l *Link) resetKey() *quic.StatelessResetKey {
	if l.cfg.TLS == nil || len(l.cfg.TLS.Certificates) == 0 {
		return nil
	}
	priv, ok := l.cfg.TLS.Certificates[0].PrivateKey.(ed25519.PrivateKey)
	if !ok {
		return nil
	}
	k := quic.StatelessResetKey(sha256.Sum256(append([]byte("isthmus quic stateless reset\x00"), priv.Seed()...)))
	return &k
}

// countPacketConn counts the datagrams QUIC sends and receives, and paces
// the ones it sends to the link rate (see WriteTo).
type countPacketConn struct {
	net.PacketConn
	l *Link

	mu   sync.Mutex // guards next
	next time.Time  // when the link has room for the next datagram
}

// quicQueueMin is the shortest airtime of datagrams that WriteTo lets wait
// for the link; on slow links the limit is one full-size packet's airtime.
const quicQueueMin = time.Second

// WriteTo sends one datagram once the previous ones have left at the link
// rate (Link.SetRate; UDP/IP header included), without blocking quic-go:
// it returns at once and a timer sends the datagram when its turn comes.
// quic-go paces by its own congestion window, which knows nothing of a 2400
// bit/s modem, and its first flight's probe timer is 200 ms whatever the
// path (it cannot be configured, and an RTT restored from a token does not
// change it): on iridium-2400, where one 1200-byte Initial takes 4 s to
// send, it kept queueing probes. So the queue is bounded: a datagram that
// would wait longer than one full-size packet's airtime (at least
// quicQueueMin) is dropped before the air and counted (Stats.QUICDrops),
// as a modem with a small buffer would drop it; quic-go sees a loss and
// backs off. Blocking in WriteTo instead (as before) stalled quic-go's send
// queue and made things worse: the first connection over iridium-2400 took
// 166 s and 40 KB both ways (two attempts); with the bounded queue 49 s and
// 8.7 KB (docs/measurements.md).
func (c *countPacketConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	rate := c.l.rate.Load()
	if rate <= 0 {
		return c.send(p, addr)
	}
	c.mu.Lock()
	now := time.Now()
	start := maxTime(now, c.next)
	if start.Sub(now) > max(quicQueueMin, txTime(quicPacketSize+UDPHeaderBytes, rate)) {
		c.mu.Unlock()
		c.l.mu.Lock()
		c.l.quicDrops++
		c.l.mu.Unlock()
		return len(p), nil
	}
	c.next = start.Add(txTime(uint64(len(p)+UDPHeaderBytes), rate))
	c.mu.Unlock()
	d := start.Sub(now)
	if d <= 0 {
		return c.send(p, addr)
	}
	b := append([]byte(nil), p...)
	time.AfterFunc(d, func() { c.send(b, addr) })
	return len(p), nil
}

// send writes one datagram and counts it.
func (c *countPacketConn) send(p []byte, addr net.Addr) (int, error) {
	n, err := c.PacketConn.WriteTo(p, addr)
	if err == nil {
		c.l.mu.Lock()
		c.l.wireOut.TLSBytes += uint64(len(p))
		c.l.wireOut.Datagrams++
		c.l.mu.Unlock()
	}
	return n, err
}

func (c *countPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(p)
	if err == nil {
		c.l.mu.Lock()
		c.l.wireIn.TLSBytes += uint64(n)
		c.l.wireIn.Datagrams++
		c.l.mu.Unlock()
	}
	return n, addr, err
}

// DialTCP returns a Config.Dial function for addr with the kernel's TCP
// keepalive off: on an idle link its probes would cost far more than the
// session's own keepalive (see SessionConfig.Keepalive).
func DialTCP(addr string) func(ctx context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		d := net.Dialer{KeepAlive: -1}
		return d.DialContext(ctx, "tcp", addr)
	}
}

// ListenTCP listens on addr with the kernel's TCP keepalive off (see DialTCP).
func ListenTCP(addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	return lc.Listen(context.Background(), "tcp", addr)
}

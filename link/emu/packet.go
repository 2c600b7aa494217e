package emu

import (
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// packetQueueLen bounds the datagrams waiting to be read at a PacketPipe
// end; more are dropped and counted.
const packetQueueLen = 256

type datagram struct {
	data []byte
}

// packetEnd is one end of a PacketPipe. Its queue and flags are guarded by
// Link.mu.
type packetEnd struct {
	l      *Link
	side   int // sends on direction side
	peer   *packetEnd
	local  Addr
	rq     []datagram
	closed bool
	notify chan struct{}
	rd, wd deadline
}

var _ net.PacketConn = (*packetEnd)(nil)

// PacketPipe returns a connected pair of datagram conns through the link,
// with fake addresses: a sends on A→B, b on B→A. WriteTo ignores its
// address. Each write is one datagram: it waits for the serializer, then
// arrives after Delay unless lost (per Loss and BurstLen), dropped (larger
// than the MTU or the transmit queue full) or caught by an outage.
func (l *Link) PacketPipe() (a, b net.PacketConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	pipeIDs.mu.Lock()
	pipeIDs.n++
	id := pipeIDs.n
	pipeIDs.mu.Unlock()
	ea := &packetEnd{l: l, side: 0, local: Addr(fmt.Sprintf("pa:%d", id)), notify: make(chan struct{}), rd: makeDeadline(), wd: makeDeadline()}
	eb := &packetEnd{l: l, side: 1, local: Addr(fmt.Sprintf("pb:%d", id)), notify: make(chan struct{}), rd: makeDeadline(), wd: makeDeadline()}
	ea.peer, eb.peer = eb, ea
	if l.closed {
		ea.closed, eb.closed = true, true
	} else {
		l.pends[ea] = struct{}{}
		l.pends[eb] = struct{}{}
	}
	return ea, eb
}

// LinkState is the link's (Link.LinkState): the emulated radio's carrier
// detect, for link.LinkStater.
func (e *packetEnd) LinkState() (up bool, changed <-chan struct{}) { return e.l.LinkState() }

func (e *packetEnd) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "emu", Source: e.local, Addr: e.peer.local, Err: err}
}

func (e *packetEnd) broadcastLocked() {
	close(e.notify)
	e.notify = make(chan struct{})
}

func (e *packetEnd) closeLocked() {
	if e.closed {
		return
	}
	e.closed = true
	e.rq = nil
	delete(e.l.pends, e)
	e.broadcastLocked()
}

func (e *packetEnd) WriteTo(p []byte, _ net.Addr) (int, error) {
	l := e.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.closed {
		return 0, e.opErr("write", net.ErrClosed)
	}
	if e.wd.expired() {
		return 0, e.opErr("write", os.ErrDeadlineExceeded)
	}
	data := append([]byte(nil), p...)
	peer := e.peer
	dir := &l.dirs[e.side]
	l.sendPacketLocked(e.side, time.Now(), len(data), func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if peer.closed {
			return
		}
		if len(peer.rq) >= packetQueueLen {
			dir.st.DroppedBytes += int64(len(data))
			dir.st.DroppedUnits++
			dir.st.DeliveredBytes -= int64(len(data))
			dir.st.DeliveredUnits--
			return
		}
		peer.rq = append(peer.rq, datagram{data: data})
		peer.broadcastLocked()
	})
	return len(p), nil
}

func (e *packetEnd) ReadFrom(p []byte) (int, net.Addr, error) {
	l := e.l
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		if e.closed {
			return 0, nil, e.opErr("read", net.ErrClosed)
		}
		if e.rd.expired() {
			return 0, nil, e.opErr("read", os.ErrDeadlineExceeded)
		}
		if len(e.rq) > 0 {
			d := e.rq[0]
			e.rq[0] = datagram{}
			e.rq = e.rq[1:]
			return copy(p, d.data), e.peer.local, nil
		}
		ch := e.notify
		l.mu.Unlock()
		select {
		case <-ch:
		case <-e.rd.wait():
		case <-l.stop:
		}
		l.mu.Lock()
	}
}

func (e *packetEnd) Close() error {
	e.l.mu.Lock()
	defer e.l.mu.Unlock()
	if e.closed {
		return e.opErr("close", net.ErrClosed)
	}
	e.closeLocked()
	return nil
}

func (e *packetEnd) LocalAddr() net.Addr { return e.local }

// SetReadBuffer does nothing: the receive queue holds packetQueueLen
// datagrams. It exists so that quic-go finds it and stays quiet.
func (e *packetEnd) SetReadBuffer(int) error { return nil }

// SetWriteBuffer does nothing: see SetPacketQueue.
func (e *packetEnd) SetWriteBuffer(int) error { return nil }

func (e *packetEnd) SetDeadline(t time.Time) error {
	e.rd.set(t)
	e.wd.set(t)
	return nil
}
func (e *packetEnd) SetReadDeadline(t time.Time) error  { e.rd.set(t); return nil }
func (e *packetEnd) SetWriteDeadline(t time.Time) error { e.wd.set(t); return nil }

// wrappedConn delays and drops the datagrams written to a real PacketConn.
type wrappedConn struct {
	net.PacketConn
	l   *Link
	dir int

	mu     sync.Mutex // guards closed
	closed bool
}

// WrapPacketConn returns pc with the link applied to what is written to it:
// each WriteTo is one datagram that waits for the serializer, then goes to
// pc after Delay unless lost, dropped or caught by an outage. Reads pass
// through untouched, so each side's wrapper emulates its sending direction:
// the first PacketConn wrapped on a link sends on A→B, the second on B→A
// (wrap both ends of an in-process pair on one Link, or one end per process
// on a Link each). WriteTo returns at once; errors of the delayed write to
// pc are not reported.
func (l *Link) WrapPacketConn(pc net.PacketConn) net.PacketConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := &wrappedConn{PacketConn: pc, l: l, dir: l.wraps % 2}
	l.wraps++
	return w
}

func (w *wrappedConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	w.mu.Lock()
	closed := w.closed
	w.mu.Unlock()
	if closed {
		return 0, &net.OpError{Op: "write", Net: "emu", Source: w.LocalAddr(), Addr: addr, Err: net.ErrClosed}
	}
	data := append([]byte(nil), p...)
	l := w.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, &net.OpError{Op: "write", Net: "emu", Source: w.LocalAddr(), Addr: addr, Err: errLinkClosed}
	}
	l.sendPacketLocked(w.dir, time.Now(), len(data), func() {
		w.mu.Lock()
		closed := w.closed
		w.mu.Unlock()
		if !closed {
			w.PacketConn.WriteTo(data, addr)
		}
	})
	return len(p), nil
}

func (w *wrappedConn) Close() error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	return w.PacketConn.Close()
}

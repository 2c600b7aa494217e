package emu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// Addr is the address of an emulated endpoint.
type Addr string

func (Addr) Network() string  { return "emu" }
func (a Addr) String() string { return string(a) }

// errPeerClosed is the cause of a Write to a conn whose peer has closed.
var errPeerClosed = fmt.Errorf("emu: peer closed: %w", io.ErrClosedPipe)

// pipe is one stream connection: two ends and two halves. h[0] carries a→b
// on direction 0, h[1] carries b→a on direction 1.
type pipe struct {
	l    *Link
	id   uint64
	h    [2]half
	ends [2]*conn
	err  error // set when the pipe is reset; guarded by l.mu
}

// half is one direction of a pipe; all fields are guarded by Link.mu.
type half struct {
	dir          int
	rbuf         []byte    // arrived, not yet read
	inflight     int       // written, not yet read
	lastAt       time.Time // arrival of the last scheduled segment (keeps order)
	segs         int       // segments delivered (SetHeaders: a pure ACK every second one)
	finSent      bool      // the writer closed its write side
	eof          bool      // the FIN arrived
	readerClosed bool      // the reading end closed
	notify       chan struct{}
}

func (h *half) broadcast() {
	close(h.notify)
	h.notify = make(chan struct{})
}

// conn is one end of a pipe.
type conn struct {
	p      *pipe
	side   int // 0: a-end, 1: b-end
	rd, wd deadline
	closed bool // guarded by Link.mu
}

var pipeIDs struct {
	mu sync.Mutex // guards n
	n  uint64
}

// Pipe returns a connected pair of stream conns through the link: a writes
// on A→B, b on B→A. In Reset mode during an outage the pair comes back
// already reset; Dial is the way to be refused instead.
func (l *Link) Pipe() (a, b net.Conn) {
	a, b, _ = l.newPipe()
	return a, b
}

// newPipe is Pipe that also says why the pair is already reset.
func (l *Link) newPipe() (a, b net.Conn, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.newPipeLocked()
	switch {
	case l.closed:
		p.err = errLinkClosed
	case l.mode == Reset && time.Now().Before(l.downUntil):
		p.err = ErrLinkDown
	default:
		l.pipes[p] = struct{}{}
	}
	return p.ends[0], p.ends[1], p.err
}

func (l *Link) newPipeLocked() *pipe {
	pipeIDs.mu.Lock()
	pipeIDs.n++
	id := pipeIDs.n
	pipeIDs.mu.Unlock()
	p := &pipe{l: l, id: id}
	for i := range p.h {
		p.h[i].dir = i
		p.h[i].notify = make(chan struct{})
		p.ends[i] = &conn{p: p, side: i, rd: makeDeadline(), wd: makeDeadline()}
	}
	return p
}

// resetPipesLocked fails every open pipe with err.
func (l *Link) resetPipesLocked(err error) {
	for p := range l.pipes {
		p.err = err
		p.h[0].rbuf, p.h[1].rbuf = nil, nil
		p.h[0].broadcast()
		p.h[1].broadcast()
	}
	clear(l.pipes)
}

// sendSegmentLocked schedules one segment of h.
func (l *Link) sendSegmentLocked(p *pipe, h *half, now time.Time, data []byte) {
	d := &l.dirs[h.dir]
	n := len(data)
	d.st.OfferedBytes += int64(n)
	d.st.OfferedUnits++
	air := n
	if l.headers {
		air += TCPHeaderBytes
	}
	end := l.startLocked(d, now).Add(l.serTime(air))
	d.st.AirBytes += int64(air)
	at := end.Add(l.p.Delay)
	// A lost segment is retransmitted after a retransmission timeout and
	// occupies the serializer again; the retransmission may be lost too.
	for tries := 0; tries < 16 && l.lose(d); tries++ {
		d.st.RetransmittedBytes += int64(n)
		d.st.RetransmittedUnits++
		d.st.AirBytes += int64(air)
		end = end.Add(l.serTime(air))
		at = at.Add(l.rto + l.serTime(air))
	}
	d.busyUntil = end
	if at.Before(h.lastAt) {
		at = h.lastAt
	}
	h.lastAt = at
	l.pushLocked(d, &item{at: at, size: n, deliver: func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if p.err != nil || h.readerClosed {
			return
		}
		h.rbuf = append(h.rbuf, data...)
		h.broadcast()
		if h.segs++; l.headers && h.segs%2 == 0 {
			l.occupyLocked(1-h.dir, TCPHeaderBytes) // the receiver's delayed ACK
		}
	}})
}

// sendFinLocked schedules the end of stream after h's data.
func (l *Link) sendFinLocked(p *pipe, h *half, now time.Time) {
	h.finSent = true
	d := &l.dirs[h.dir]
	at := l.startLocked(d, now).Add(l.p.Delay)
	if at.Before(h.lastAt) {
		at = h.lastAt
	}
	h.lastAt = at
	l.pushLocked(d, &item{at: at, deliver: func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if p.err != nil {
			return
		}
		h.eof = true
		h.broadcast()
	}})
}

func (c *conn) names() (local, remote Addr) {
	ends := [2]Addr{Addr(fmt.Sprintf("a:%d", c.p.id)), Addr(fmt.Sprintf("b:%d", c.p.id))}
	return ends[c.side], ends[1-c.side]
}

func (c *conn) LocalAddr() net.Addr  { a, _ := c.names(); return a }
func (c *conn) RemoteAddr() net.Addr { _, b := c.names(); return b }

func (c *conn) opErr(op string, err error) error {
	local, remote := c.names()
	return &net.OpError{Op: op, Net: "emu", Source: local, Addr: remote, Err: err}
}

// stateErrLocked is the error for any operation on c, if any.
func (c *conn) stateErrLocked() error {
	if c.closed {
		return net.ErrClosed
	}
	return c.p.err
}

func (c *conn) Read(b []byte) (int, error) {
	l := c.p.l
	h := &c.p.h[1-c.side]
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		if err := c.stateErrLocked(); err != nil {
			return 0, c.opErr("read", err)
		}
		if c.rd.expired() {
			return 0, c.opErr("read", os.ErrDeadlineExceeded)
		}
		if len(h.rbuf) > 0 {
			n := copy(b, h.rbuf)
			h.rbuf = h.rbuf[n:]
			if len(h.rbuf) == 0 {
				h.rbuf = nil
			}
			h.inflight -= n
			h.broadcast()
			return n, nil
		}
		if h.eof {
			return 0, io.EOF
		}
		if len(b) == 0 {
			return 0, nil
		}
		ch := h.notify
		l.mu.Unlock()
		select {
		case <-ch:
		case <-c.rd.wait():
		case <-l.stop:
		}
		l.mu.Lock()
	}
}

func (c *conn) Write(b []byte) (int, error) {
	l := c.p.l
	h := &c.p.h[c.side]
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for {
		if err := c.stateErrLocked(); err != nil {
			return n, c.opErr("write", err)
		}
		if h.finSent {
			return n, c.opErr("write", errors.New("emu: write after CloseWrite"))
		}
		if h.readerClosed {
			return n, c.opErr("write", errPeerClosed)
		}
		if c.wd.expired() {
			return n, c.opErr("write", os.ErrDeadlineExceeded)
		}
		if n == len(b) {
			return n, nil
		}
		if space := StreamWindow - h.inflight; space > 0 {
			chunk := b[n : n+min(space, len(b)-n)]
			now := time.Now()
			for len(chunk) > 0 {
				seg := chunk[:min(l.mtu, len(chunk))]
				chunk = chunk[len(seg):]
				l.sendSegmentLocked(c.p, h, now, append([]byte(nil), seg...))
				h.inflight += len(seg)
				n += len(seg)
			}
			continue
		}
		ch := h.notify
		l.mu.Unlock()
		select {
		case <-ch:
		case <-c.wd.wait():
		case <-l.stop:
		}
		l.mu.Lock()
	}
}

// CloseWrite ends c's sending direction: the peer reads EOF after the data
// already written; c can still read.
func (c *conn) CloseWrite() error {
	l := c.p.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := c.stateErrLocked(); err != nil {
		return c.opErr("close", err)
	}
	if h := &c.p.h[c.side]; !h.finSent {
		l.sendFinLocked(c.p, h, time.Now())
	}
	return nil
}

// Close closes c; the peer reads EOF after the data already written.
func (c *conn) Close() error {
	l := c.p.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.closed {
		return c.opErr("close", net.ErrClosed)
	}
	c.closed = true
	p := c.p
	if h := &p.h[c.side]; !h.finSent && p.err == nil {
		l.sendFinLocked(p, h, time.Now())
	}
	rh := &p.h[1-c.side]
	rh.readerClosed = true
	rh.rbuf = nil
	rh.broadcast()
	p.h[c.side].broadcast()
	if p.ends[1-c.side].closed {
		delete(l.pipes, p)
	}
	return nil
}

func (c *conn) SetDeadline(t time.Time) error {
	c.rd.set(t)
	c.wd.set(t)
	return nil
}

func (c *conn) SetReadDeadline(t time.Time) error  { c.rd.set(t); return nil }
func (c *conn) SetWriteDeadline(t time.Time) error { c.wd.set(t); return nil }

// deadline is a settable deadline whose channel closes when it passes (the
// scheme of net.Pipe).
type deadline struct {
	mu     *sync.Mutex // guards timer and cancel
	timer  *time.Timer
	cancel chan struct{} // closed when the deadline passes
}

func makeDeadline() deadline {
	return deadline{mu: new(sync.Mutex), cancel: make(chan struct{})}
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired: wait for it to close cancel
	}
	d.timer = nil
	closed := isClosed(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		cancel := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(cancel) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

func (d *deadline) expired() bool { return isClosed(d.wait()) }

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// listener hands the b-ends of dialed pipes to Accept.
type listener struct {
	l      *Link
	accept chan net.Conn
	done   chan struct{}
	once   sync.Once
}

// Listen returns the link's listener: each Dial on the link gives the
// dialer the a-end of a new pipe and Accept the b-end. A link has one
// listener at a time; Listen returns the open one if there is one.
func (l *Link) Listen() net.Listener {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln != nil {
		return l.ln
	}
	ln := &listener{l: l, accept: make(chan net.Conn, 16), done: make(chan struct{})}
	if l.closed {
		close(ln.done)
		return ln
	}
	l.ln = ln
	return ln
}

func (ln *listener) Accept() (net.Conn, error) {
	select {
	case c := <-ln.accept:
		return c, nil
	case <-ln.done:
		return nil, &net.OpError{Op: "accept", Net: "emu", Addr: ln.Addr(), Err: net.ErrClosed}
	}
}

func (ln *listener) Close() error {
	ln.once.Do(func() {
		ln.l.mu.Lock()
		if ln.l.ln == ln {
			ln.l.ln = nil
		}
		ln.l.mu.Unlock()
		close(ln.done)
		for {
			select {
			case c := <-ln.accept:
				c.Close()
			default:
				return
			}
		}
	})
	return nil
}

func (ln *listener) Addr() net.Addr { return Addr("listener") }

// Dial connects to the link's listener. It takes one round trip (2×Delay)
// for the handshake. In Reset mode it fails with ErrLinkDown during an
// outage; in Stall mode it waits for the outage to end.
func (l *Link) Dial(ctx context.Context) (net.Conn, error) {
	ready := func() (*listener, error) {
		for {
			l.mu.Lock()
			switch {
			case l.closed:
				l.mu.Unlock()
				return nil, fmt.Errorf("emu: dial: %w", errLinkClosed)
			case l.ln == nil:
				l.mu.Unlock()
				return nil, fmt.Errorf("emu: dial: connection refused (no listener)")
			}
			now := time.Now()
			if !now.Before(l.downUntil) {
				ln := l.ln
				l.mu.Unlock()
				return ln, nil
			}
			if l.mode == Reset {
				l.mu.Unlock()
				return nil, fmt.Errorf("emu: dial: %w", ErrLinkDown)
			}
			ch, wait := l.stateCh, l.downUntil.Sub(now)
			l.mu.Unlock()
			t := time.NewTimer(wait)
			select {
			case <-ch:
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil, fmt.Errorf("emu: dial: %w", ctx.Err())
			}
			t.Stop()
		}
	}
	if _, err := ready(); err != nil {
		return nil, err
	}
	if rtt := 2 * l.p.Delay; rtt > 0 {
		t := time.NewTimer(rtt)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("emu: dial: %w", ctx.Err())
		}
	}
	ln, err := ready()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	if l.headers {
		l.occupyLocked(0, SYNBytes+TCPHeaderBytes) // SYN, then the final ACK
		l.occupyLocked(1, SYNBytes)                // SYN/ACK
	}
	l.mu.Unlock()
	a, b := l.Pipe()
	select {
	case ln.accept <- b:
		return a, nil
	case <-ln.done:
		a.Close()
		b.Close()
		return nil, errors.New("emu: dial: connection refused (listener closed)")
	case <-ctx.Done():
		a.Close()
		b.Close()
		return nil, fmt.Errorf("emu: dial: %w", ctx.Err())
	}
}

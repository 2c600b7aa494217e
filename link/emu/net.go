package emu

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Net is an in-memory network of listeners by address over one Link, for
// running servers that listen and dial by address (XMPP servers, a gateway
// pair) entirely in process, in virtual time under testing/synctest, where
// real sockets are not durably blocking. Every connection is a stream pipe
// of the link (its rate, delay, window and outages); the dialling end
// writes on A→B. Both ends carry TCP addresses, so code that checks source
// addresses (allow lists, limits per address) sees what it would over TCP.
type Net struct {
	l *Link

	mu   sync.Mutex
	lns  map[netip.AddrPort]*netListener
	port uint16 // last port handed out (listeners on port 0, dialling ends)
}

// NewNet returns a network whose connections go through l. Closing l
// resets them and refuses new dials.
func NewNet(l *Link) *Net {
	return &Net{l: l, lns: map[netip.AddrPort]*netListener{}, port: 40000}
}

// nextPortLocked is a port not handed out before.
func (n *Net) nextPortLocked() uint16 {
	n.port++
	return n.port
}

// Listen listens on addr, an IP and port ("127.0.0.1:5269"); port 0 picks
// a free one, which Addr reports.
func (n *Net) Listen(addr string) (net.Listener, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("emu: listen %q: %w", addr, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if ap.Port() == 0 {
		ap = netip.AddrPortFrom(ap.Addr(), n.nextPortLocked())
	}
	if n.lns[ap] != nil {
		return nil, fmt.Errorf("emu: listen %s: address already in use", ap)
	}
	ln := &netListener{n: n, addr: ap, accept: make(chan net.Conn, 128), done: make(chan struct{})}
	n.lns[ap] = ln
	return ln, nil
}

// Dial connects from 127.0.0.1 to addr. It has the signature of
// net.Dialer.DialContext (network is not looked at).
func (n *Net) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return n.DialFrom(ctx, "127.0.0.1", addr)
}

// DialFrom connects from the IP from to addr, like Link.Dial: one round
// trip, refused when nothing listens on addr, and in Reset mode during an
// outage.
func (n *Net) DialFrom(ctx context.Context, from, addr string) (net.Conn, error) {
	ip, err := netip.ParseAddr(from)
	if err != nil {
		return nil, fmt.Errorf("emu: dial from %q: %w", from, err)
	}
	to, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("emu: dial %q: %w", addr, err)
	}
	refused := &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(to), Err: fmt.Errorf("connection refused (emu: nothing listens on %s)", to)}
	if rtt := 2 * n.l.p.Delay; rtt > 0 {
		if err := sleepCtx(ctx, rtt); err != nil {
			return nil, fmt.Errorf("emu: dial %s: %w", to, err)
		}
	}
	n.mu.Lock()
	ln := n.lns[to]
	local := netip.AddrPortFrom(ip, n.nextPortLocked())
	n.mu.Unlock()
	if ln == nil {
		return nil, refused
	}
	a, b, err := n.l.newPipe()
	if err != nil {
		return nil, fmt.Errorf("emu: dial %s: %w", to, err)
	}
	la, ra := net.TCPAddrFromAddrPort(local), net.TCPAddrFromAddrPort(to)
	ca, cb := &netConn{Conn: a, local: la, remote: ra}, &netConn{Conn: b, local: ra, remote: la}
	select {
	case ln.accept <- cb:
		return ca, nil
	case <-ln.done:
		a.Close()
		b.Close()
		return nil, refused
	case <-ctx.Done():
		a.Close()
		b.Close()
		return nil, fmt.Errorf("emu: dial %s: %w", to, ctx.Err())
	}
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// netConn is a pipe end with TCP addresses.
type netConn struct {
	net.Conn
	local, remote net.Addr
}

func (c *netConn) LocalAddr() net.Addr  { return c.local }
func (c *netConn) RemoteAddr() net.Addr { return c.remote }

// CloseWrite half-closes, as on a TCP conn.
func (c *netConn) CloseWrite() error { return c.Conn.(*conn).CloseWrite() }

// netListener hands the accepting ends of dialled pipes to Accept.
type netListener struct {
	n      *Net
	addr   netip.AddrPort
	accept chan net.Conn
	done   chan struct{}
	once   sync.Once
}

func (ln *netListener) Accept() (net.Conn, error) {
	select {
	case c := <-ln.accept:
		return c, nil
	case <-ln.done:
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: ln.Addr(), Err: net.ErrClosed}
	}
}

// Close stops listening: the address is free again, connections not yet
// accepted are closed, and dials to it are refused.
func (ln *netListener) Close() error {
	ln.once.Do(func() {
		ln.n.mu.Lock()
		if ln.n.lns[ln.addr] == ln {
			delete(ln.n.lns, ln.addr)
		}
		ln.n.mu.Unlock()
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

func (ln *netListener) Addr() net.Addr { return net.TCPAddrFromAddrPort(ln.addr) }

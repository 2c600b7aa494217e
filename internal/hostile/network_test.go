package hostile

import (
	"context"
	"net"
	"testing/synctest"
	"time"

	"github.com/isthmus-xmpp/isthmus/gateway/s2s"
	"github.com/isthmus-xmpp/isthmus/link"
	"github.com/isthmus-xmpp/isthmus/link/emu"
)

// network is how the rig's servers, gateways and attackers connect: real
// TCP on loopback (mem nil), or in memory over an emu.Net, for running the
// suite inside a testing/synctest bubble, where real sockets are not
// durably blocking. The in-memory connections carry TCP addresses, so
// allow_from and the limits per address see attackers' source IPs as they
// would over TCP.
type network struct {
	mem *emu.Net // nil: TCP on loopback
}

// listen listens for S2S on addr ("127.0.0.1:0").
func (nw network) listen(addr string) (net.Listener, error) {
	if nw.mem != nil {
		return nw.mem.Listen(addr)
	}
	return net.Listen("tcp", addr)
}

// linkListen listens for the gateways' link on addr.
func (nw network) linkListen(addr string) (net.Listener, error) {
	if nw.mem != nil {
		return nw.mem.Listen(addr)
	}
	return link.ListenTCP(addr)
}

// linkDial dials the gateways' link at addr.
func (nw network) linkDial(addr string) func(context.Context) (net.Conn, error) {
	if nw.mem != nil {
		return func(ctx context.Context) (net.Conn, error) { return nw.mem.Dial(ctx, "tcp", addr) }
	}
	return link.DialTCP(addr)
}

// dialer is how servers and gateways reach each other (nil: TCP).
func (nw network) dialer() s2s.Dialer {
	if nw.mem != nil {
		return nw.mem.Dial
	}
	return nil
}

// dialFrom connects from the address ip to addr.
func (nw network) dialFrom(ip, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if nw.mem != nil {
		return nw.mem.DialFrom(ctx, ip, addr)
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return d.DialContext(ctx, "tcp", addr)
}

// settle lets d pass while the system runs. In a bubble d is virtual and
// settle then waits until every goroutine is blocked: whatever d's events
// lead to has happened, so what has not arrived will not.
func (nw network) settle(d time.Duration) {
	time.Sleep(d)
	if nw.mem != nil {
		synctest.Wait()
	}
}

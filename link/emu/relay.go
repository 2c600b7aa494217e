package emu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
)

// maxUDPSessions bounds the client addresses a UDP relay serves at once;
// datagrams from further clients are dropped.
const maxUDPSessions = 256

// Relay forwards real sockets to a target through one emulated Link: all
// connections or sessions share its two serializers, as they would share
// one radio. Direction A→B carries client→target. Set the fields before
// serving; one Relay serves once.
type Relay struct {
	Profile Profile
	Seed    int64
	Mode    OutageMode                       // what outages do to TCP connections
	Logf    func(format string, args ...any) // one line per connection; nil: silent
	UDPIdle time.Duration                    // a UDP session without traffic ends after this; default 2 min

	mu   sync.Mutex // guards link
	link *Link
}

// RelayTCP accepts TCP connections on listen and forwards each to target
// through profile p, until ctx is canceled (then it returns nil).
func RelayTCP(ctx context.Context, p Profile, seed int64, listen net.Listener, target string) error {
	r := &Relay{Profile: p, Seed: seed}
	return r.ServeTCP(ctx, listen, target)
}

// RelayUDP forwards the datagrams received on listen to target through
// profile p, one upstream socket per client address, until ctx is canceled
// (then it returns nil).
func RelayUDP(ctx context.Context, p Profile, seed int64, listen net.PacketConn, target string) error {
	r := &Relay{Profile: p, Seed: seed}
	return r.ServeUDP(ctx, listen, target)
}

// Stats returns the counters of the relay's link (zero before serving).
func (r *Relay) Stats() Stats {
	r.mu.Lock()
	l := r.link
	r.mu.Unlock()
	if l == nil {
		return Stats{}
	}
	return l.Stats()
}

func (r *Relay) logf(format string, args ...any) {
	if r.Logf != nil {
		r.Logf(format, args...)
	}
}

func (r *Relay) start() (*Link, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.link != nil {
		return nil, errors.New("emu: relay already served")
	}
	r.link = NewLink(r.Profile, r.Seed)
	r.link.SetOutageMode(r.Mode)
	return r.link, nil
}

// ServeTCP is RelayTCP with the relay's settings. It closes listen.
func (r *Relay) ServeTCP(ctx context.Context, listen net.Listener, target string) error {
	link, err := r.start()
	if err != nil {
		return err
	}
	defer link.Close()
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		<-ctx.Done()
		listen.Close()
		return nil
	})
	g.Go(func() error {
		for id := 1; ; id++ {
			c, err := listen.Accept()
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("emu: relay accept: %w", err)
			}
			g.Go(func() error {
				r.relayConn(ctx, link, id, c, target)
				return nil
			})
		}
	})
	return g.Wait()
}

type closeWriter interface{ CloseWrite() error }

// relayConn forwards one client connection until both directions end.
func (r *Relay) relayConn(ctx context.Context, link *Link, id int, c net.Conn, target string) {
	defer c.Close()
	a, b, err := link.newPipe()
	if err != nil {
		r.logf("conn %d from %s refused: %v", id, c.RemoteAddr(), err)
		return
	}
	defer a.Close()
	defer b.Close()
	var d net.Dialer
	up, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		r.logf("conn %d from %s: %v", id, c.RemoteAddr(), err)
		return
	}
	defer up.Close()
	r.logf("conn %d: %s -> %s", id, c.RemoteAddr(), target)
	start := time.Now()
	var once sync.Once
	closeAll := func() {
		once.Do(func() {
			c.Close()
			up.Close()
			a.Close()
			b.Close()
		})
	}
	stop := context.AfterFunc(ctx, closeAll)
	defer stop()
	var wg sync.WaitGroup
	var sent, recv int64
	pump := func(dst, src net.Conn, n *int64) {
		defer wg.Done()
		var err error
		*n, err = io.Copy(dst, src)
		if err == nil {
			if cw, ok := dst.(closeWriter); ok && cw.CloseWrite() == nil {
				return
			}
		}
		closeAll()
	}
	var n1, n2 int64
	wg.Add(4)
	go pump(a, c, &sent)
	go pump(up, b, &n1)
	go pump(b, up, &recv)
	go pump(c, a, &n2)
	wg.Wait()
	r.logf("conn %d closed after %v: %d bytes to target, %d from target", id, time.Since(start).Round(time.Millisecond), sent, recv)
}

// udpSession is one client address of a UDP relay.
type udpSession struct {
	client net.Addr
	up     *net.UDPConn

	mu   sync.Mutex // guards last
	last time.Time  // last datagram from the client
}

// ServeUDP is RelayUDP with the relay's settings. It closes listen.
func (r *Relay) ServeUDP(ctx context.Context, listen net.PacketConn, target string) error {
	raddr, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		return fmt.Errorf("emu: relay target: %w", err)
	}
	link, err := r.start()
	if err != nil {
		return err
	}
	defer link.Close()
	idle := r.UDPIdle
	if idle <= 0 {
		idle = 2 * time.Minute
	}
	var mu sync.Mutex // guards sessions
	sessions := make(map[string]*udpSession)
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		<-ctx.Done()
		listen.Close()
		mu.Lock()
		for _, s := range sessions {
			s.up.Close()
		}
		mu.Unlock()
		return nil
	})
	g.Go(func() error {
		buf := make([]byte, 64<<10)
		for {
			n, from, err := listen.ReadFrom(buf)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("emu: relay read: %w", err)
			}
			key := from.String()
			mu.Lock()
			s := sessions[key]
			if s == nil && len(sessions) < maxUDPSessions && ctx.Err() == nil {
				up, err := net.DialUDP("udp", nil, raddr)
				if err != nil {
					mu.Unlock()
					r.logf("udp session %s: %v", key, err)
					continue
				}
				s = &udpSession{client: from, up: up}
				sessions[key] = s
				r.logf("udp session %s -> %s", key, target)
				g.Go(func() error {
					r.udpBack(link, listen, s, idle)
					mu.Lock()
					delete(sessions, key)
					mu.Unlock()
					s.up.Close()
					r.logf("udp session %s ended", key)
					return nil
				})
			}
			mu.Unlock()
			if s == nil {
				continue
			}
			now := time.Now()
			s.mu.Lock()
			s.last = now
			s.mu.Unlock()
			data := append([]byte(nil), buf[:n]...)
			link.mu.Lock()
			link.sendPacketLocked(0, now, n, func() { s.up.Write(data) })
			link.mu.Unlock()
		}
	})
	return g.Wait()
}

// udpBack forwards the target's replies to s's client until s has been
// idle for idle or its socket closes.
func (r *Relay) udpBack(link *Link, listen net.PacketConn, s *udpSession, idle time.Duration) {
	buf := make([]byte, 64<<10)
	for {
		s.up.SetReadDeadline(time.Now().Add(idle))
		n, err := s.up.Read(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			s.mu.Lock()
			quiet := time.Since(s.last)
			s.mu.Unlock()
			if quiet >= idle {
				return
			}
			continue
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			continue // the target is not listening (yet)
		}
		if err != nil {
			return
		}
		data := append([]byte(nil), buf[:n]...)
		link.mu.Lock()
		link.sendPacketLocked(1, time.Now(), n, func() { listen.WriteTo(data, s.client) })
		link.mu.Unlock()
	}
}

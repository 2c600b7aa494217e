package compare

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/isthmus-xmpp/isthmus/link/emu"
)

// TCP/IP header sizes counted on the emulated link, the same way in both
// runs: every data segment (retransmissions too) carries 52 bytes (IPv4 20,
// TCP 20, timestamps 12); the receiver sends one pure ACK per two segments
// (delayed ACK); each connection opens with SYN (60 B) and ACK (52 B) from
// the side that connects and SYN/ACK (60 B) from the other.
const (
	hdrSegment = 52
	hdrSYN     = 60
)

// radio is the one emulated link of a run. In the direct run it carries
// every S2S connection between the two servers (both directions share its
// two serializers, as they would share one radio); in the pair run it
// carries the gateways' link connection. Side A is Prosody's side.
type radio struct {
	link *emu.Link
	// dialsFromA and dialsFromB count the connections opened over the
	// radio by each side, for the handshake headers.
	dialsFromA, dialsFromB atomic.Int64
}

func newRadio(p emu.Profile, seed int64) *radio {
	return &radio{link: emu.NewLink(p, seed)}
}

// air is what crossed the radio in one direction.
type air struct {
	Payload  int64 // TCP payload bytes delivered (TLS records, XMPP or link frames)
	Segments int64 // data segments delivered
	Retrans  int64 // bytes of segments sent again after a loss
	Bytes    int64 // all of it with TCP/IP headers, ACKs and handshakes: the measure
}

// counts returns what crossed A→B and B→A so far.
func (r *radio) counts() (ab, ba air) {
	st := r.link.Stats()
	fa, fb := r.dialsFromA.Load(), r.dialsFromB.Load()
	one := func(d, other emu.DirStats, synAck, syn int64) air {
		segs := d.DeliveredUnits + d.RetransmittedUnits
		acks := (other.DeliveredUnits + 1) / 2
		return air{
			Payload:  d.DeliveredBytes,
			Segments: d.DeliveredUnits,
			Retrans:  d.RetransmittedBytes,
			Bytes: d.DeliveredBytes + d.RetransmittedBytes + hdrSegment*(segs+acks) +
				syn*(hdrSYN+hdrSegment) + synAck*hdrSYN,
		}
	}
	return one(st.AB, st.BA, fb, fa), one(st.BA, st.AB, fa, fb)
}

// idle reports whether nothing is queued or in flight on the radio.
func (r *radio) idle() bool {
	st := r.link.Stats()
	return st.AB.QueuedBytes == 0 && st.BA.QueuedBytes == 0 && st.AB.InFlight == 0 && st.BA.InFlight == 0
}

// dial is the pair run's LinkDial: gateway A connects to gateway B over the
// radio (one round trip, see emu.Link.Dial).
func (r *radio) dial(ctx context.Context) (net.Conn, error) {
	c, err := r.link.Dial(ctx)
	if err == nil {
		r.dialsFromA.Add(1)
	}
	return c, err
}

// relay accepts the connections a server opens to ln and forwards each to
// target over the radio: the direct run's S2S path. fromA says which side
// the connecting server is on. Each connection waits one round trip before
// its first byte, as a TCP handshake over the radio would.
func (r *radio) relay(ctx context.Context, wg *sync.WaitGroup, ln net.Listener, target string, fromA bool) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		stop := context.AfterFunc(ctx, func() { ln.Close() })
		defer stop()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.relayConn(ctx, c, target, fromA)
			}()
		}
	}()
}

func (r *radio) relayConn(ctx context.Context, c net.Conn, target string, fromA bool) {
	defer c.Close()
	if fromA {
		r.dialsFromA.Add(1)
	} else {
		r.dialsFromB.Add(1)
	}
	if rtt := 2 * r.link.Profile().Delay; rtt > 0 {
		select {
		case <-time.After(rtt):
		case <-ctx.Done():
			return
		}
	}
	var d net.Dialer
	up, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return
	}
	defer up.Close()
	a, b := r.link.Pipe() // a writes A→B
	near, far := a, b
	if !fromA {
		near, far = b, a
	}
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
	pump := func(dst, src net.Conn) {
		defer wg.Done()
		_, err := io.Copy(dst, src)
		if err == nil {
			if cw, ok := dst.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
				return
			}
		}
		closeAll()
	}
	wg.Add(4)
	go pump(near, c)
	go pump(up, far)
	go pump(far, up)
	go pump(c, near)
	wg.Wait()
}

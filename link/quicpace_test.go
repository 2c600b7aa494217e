package link

import (
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// recPacketConn records when each datagram was written.
type recPacketConn struct {
	net.PacketConn
	mu  sync.Mutex
	at  []time.Duration
	t0  time.Time
	len []int
}

func (r *recPacketConn) WriteTo(p []byte, _ net.Addr) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.at = append(r.at, time.Since(r.t0))
	r.len = append(r.len, len(p))
	return len(p), nil
}

// TestQUICPacingQueue: below quic-go, datagrams leave at the link rate
// (UDP/IP header counted) without WriteTo blocking, and one that would
// wait longer than a full-size packet's airtime is dropped and counted:
// at 2400 bit/s a burst of four 1200-byte packets (quic-go's first flight
// and a probe) puts two on the air, 4.09 s apart, and drops two.
func TestQUICPacingQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &Link{}
		l.rate.Store(2400)
		rec := &recPacketConn{t0: time.Now()}
		c := &countPacketConn{PacketConn: rec, l: l}
		for range 4 {
			start := time.Now()
			if n, err := c.WriteTo(make([]byte, quicPacketSize), nil); n != quicPacketSize || err != nil {
				t.Fatalf("WriteTo: %d, %v", n, err)
			}
			if d := time.Since(start); d != 0 {
				t.Errorf("WriteTo blocked for %v", d)
			}
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		per := txTime(quicPacketSize+UDPHeaderBytes, 2400)
		if len(rec.at) != 2 || rec.at[0] != 0 || rec.at[1] != per {
			t.Errorf("sent at %v, want [0s %v]", rec.at, per)
		}
		if l.quicDrops != 2 {
			t.Errorf("%d drops counted, want 2", l.quicDrops)
		}
		if want := uint64(2 * quicPacketSize); l.wireOut.TLSBytes != want || l.wireOut.Datagrams != 2 {
			t.Errorf("counted %d bytes in %d datagrams, want %d in 2 (drops are not on the wire)", l.wireOut.TLSBytes, l.wireOut.Datagrams, want)
		}
		// Once the queue has drained, small packets go at once.
		rec.t0 = time.Now()
		c.WriteTo(make([]byte, 50), nil)
		synctest.Wait()
		if len(rec.at) != 3 || rec.at[2] != 0 {
			t.Errorf("a packet on an idle link waited: sent at %v", rec.at)
		}
	})
}

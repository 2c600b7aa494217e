package demo_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/isthmus-xmpp/isthmus/internal/demo"
	"github.com/isthmus-xmpp/isthmus/internal/sim"
	"github.com/isthmus-xmpp/isthmus/link/emu"
)

// TestVirtualPhases runs the demo in virtual time with its idle and outage
// phases, and checks the counts the transport table is made of: the
// transport handshakes are counted for tcp and quic as for datagram (and a
// TCP reconnect after the outage), the emulated link's air bytes cover the
// gateway's wire estimate (headers, ACKs and TCP's retransmissions are on
// the air too), the idle phase is measured, and the outage's backlog is
// delivered.
func TestVirtualPhases(t *testing.T) {
	p, err := emu.ParseProfile("vhf-9600")
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range []string{"tcp", "quic", "datagram"} {
		t.Run(tr, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r, err := demo.Run(context.Background(), demo.Options{Profile: p, Duration: 20 * time.Second, Seed: 3, Transport: tr,
					Virtual: true, Idle: 10 * time.Minute, Outage: time.Minute, Drain: 5 * time.Minute})
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%s: handshake %v, air %v, idle air %v, outage: offered %d, first %v, drained %v, handshake %d B (%d connections)",
					tr, r.HandshakeBytes, r.Air, r.IdleAir, r.OutageOffered, r.OutageFirst, r.OutageDrained, r.OutageHandshake, r.OutageConn)
				if r.HandshakeBytes[sim.A2B] == 0 || r.HandshakeBytes[sim.B2A] == 0 {
					t.Errorf("handshake bytes %v: want both sides counted", r.HandshakeBytes)
				}
				for dir, est := range []uint64{r.A2B.WireBytes, r.B2A.WireBytes} {
					if float64(r.Air[dir]) < 0.95*float64(est) {
						t.Errorf("dir %d: %d air bytes, under the gateway's estimate %d", dir, r.Air[dir], est)
					}
				}
				if r.IdleAir[0]+r.IdleAir[1] == 0 {
					t.Errorf("idle phase: no bytes at all (not even the keepalive)")
				}
				if r.OutageOffered == 0 || r.OutageDrained == 0 {
					t.Errorf("outage phase: %d stanzas offered, drained after %v", r.OutageOffered, r.OutageDrained)
				}
				if tr == "tcp" && (r.OutageHandshake == 0 || r.OutageConn == 0) {
					t.Errorf("tcp: the outage reset the connection, yet %d handshake bytes, %d connections after it", r.OutageHandshake, r.OutageConn)
				}
			})
		})
	}
}

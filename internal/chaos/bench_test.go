package chaos

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/isthmus-xmpp/isthmus/gateway"
	"github.com/isthmus-xmpp/isthmus/gateway/s2s"
	"github.com/isthmus-xmpp/isthmus/link/emu"
)

// BenchmarkEndToEndLAN measures stanzas per second from a simulated local
// server through both gateways (S2S in, link over the emulator's lan
// profile, S2S out) to the simulated server on the other side.
func BenchmarkEndToEndLAN(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	lnA, _ := net.Listen("tcp", "127.0.0.1:0")
	lnB, _ := net.Listen("tcp", "127.0.0.1:0")
	r := &run{t: &testing.T{}}
	sa := r.newSim(ctx, "a.test", lnA.Addr().String(), &wg)
	sb := r.newSim(ctx, "b.test", lnB.Addr().String(), &wg)
	pc, err := gateway.NewPairConfig(map[string]string{"a.test": sa.ln.Addr().String()}, map[string]string{"b.test": sb.ln.Addr().String()}, "bench-secret-0123456789")
	if err != nil {
		b.Fatal(err)
	}
	pc.A.S2S.DialbackSecret, pc.B.S2S.DialbackSecret = "gateway-a-secret-0123456789", "gateway-b-secret-0123456789"
	pc.A.S2S.QueueLimit, pc.B.S2S.QueueLimit = 1_000_000, 1_000_000
	pc.A.Presence.Enable, pc.B.Presence.Enable = false, false
	pc.A.S2S.StanzaRate, pc.B.S2S.StanzaRate = 0, 0 // one local server sends everything: no per-stream throttle
	prof, _ := emu.Lookup("lan")
	el := emu.NewLink(prof, 1)
	defer el.Close()
	quiet := slog.New(slog.DiscardHandler)
	ga, err := gateway.New(pc.A, gateway.Options{Logger: quiet, PrivateKey: pc.KeyA, LinkDial: el.Dial, S2SListener: lnA})
	if err != nil {
		b.Fatal(err)
	}
	gb, err := gateway.New(pc.B, gateway.Options{Logger: quiet, PrivateKey: pc.KeyB, LinkListener: el.Listen(), S2SListener: lnB})
	if err != nil {
		b.Fatal(err)
	}
	wg.Add(2)
	go func() { defer wg.Done(); ga.Run(ctx) }()
	go func() { defer wg.Done(); gb.Run(ctx) }()

	send := func(i int) {
		pair := i % pairs
		st := s2s.Stanza{Name: "message", From: fmt.Sprintf("u%d@a.test/r", pair), To: fmt.Sprintf("v%d@b.test", pair), ID: fmt.Sprintf("p%d#%d", pair, i/pairs)}
		st.Raw = fmt.Appendf(nil, "<message from='%s' to='%s' id='%s' type='chat'><body>benchmark message number %d</body></message>", st.From, st.To, st.ID, i)
		sa.pool.Send(st)
	}
	wait := func(n int) {
		deadline := time.Now().Add(5 * time.Minute)
		for {
			if c, _, _, _ := sb.rx.snapshot(); c >= n || time.Now().After(deadline) {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	// Warm up: streams, dialback, link.
	for i := range 100 {
		send(i)
	}
	wait(100)
	b.ResetTimer()
	start := time.Now()
	// At most window stanzas in flight: the simulated server's S2S queue
	// bounces beyond 100,000, and a large b.N sent at once overflowed it.
	const window = 50_000
	for i := range b.N {
		if i%1000 == 0 {
			for {
				if c, _, _, _ := sb.rx.snapshot(); 100+i-c < window {
					break
				}
				time.Sleep(100 * time.Microsecond)
			}
		}
		send(100 + i)
	}
	wait(100 + b.N)
	el2 := time.Since(start)
	b.StopTimer()
	if c, _, _, _ := sb.rx.snapshot(); c < 100+b.N {
		b.Fatalf("received %d of %d", c, 100+b.N)
	}
	b.ReportMetric(float64(b.N)/el2.Seconds(), "stanzas/s")
}

package emu

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func profile(t *testing.T, spec string) Profile {
	t.Helper()
	p, err := ParseProfile(spec)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestStreamTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLink(profile(t, "vhf-9600,loss=0"), 1)
		defer l.Close()
		a, b := l.Pipe()
		start := time.Now()
		msg := make([]byte, 1200)
		for i := range msg {
			msg[i] = byte(i)
		}
		if _, err := a.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 1200)
		if _, err := io.ReadFull(b, got); err != nil {
			t.Fatal(err)
		}
		// 1200 bytes = 9600 bits = 1 s at 9600 bit/s, plus 50 ms.
		if el := time.Since(start); el != time.Second+50*time.Millisecond {
			t.Errorf("arrived after %v, want 1.05s", el)
		}
		if string(got) != string(msg) {
			t.Error("data corrupted")
		}
		// A second, larger write serializes in MTU segments; the first
		// segment arrives after 1460*8/9600 s + delay.
		start = time.Now()
		if _, err := a.Write(make([]byte, 3000)); err != nil {
			t.Fatal(err)
		}
		if q := l.Stats().AB.QueuedBytes; q < 2999 || q > 3000 {
			t.Errorf("queued %d bytes, want 3000", q)
		}
		n, err := b.Read(make([]byte, 4000))
		if err != nil || n != 1460 {
			t.Fatalf("read %d, %v; want one 1460-byte segment", n, err)
		}
		if el, want := time.Since(start), 1460*8*time.Second/9600+50*time.Millisecond; el != want {
			t.Errorf("first segment after %v, want %v", el, want)
		}
		if _, err := io.ReadFull(b, make([]byte, 1540)); err != nil {
			t.Fatal(err)
		}
		if el, want := time.Since(start), 3000*8*time.Second/9600+50*time.Millisecond; (el - want).Abs() > time.Microsecond {
			t.Errorf("all after %v, want %v", el, want)
		}
		st := l.Stats()
		if st.AB.OfferedBytes != 4200 || st.AB.DeliveredBytes != 4200 || st.AB.OfferedUnits != 4 {
			t.Errorf("stats %+v", st.AB)
		}
		if st.BA.OfferedBytes != 0 {
			t.Errorf("B→A offered %d", st.BA.OfferedBytes)
		}
	})
}

// TestStreamOrderWithLoss writes numbered chunks over a lossy link in both
// directions and checks everything arrives in order, with retransmissions.
func TestStreamOrderWithLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLink(profile(t, "bgan-64k,loss=0.1,mtu=100"), 7)
		defer l.Close()
		a, b := l.Pipe()
		const total = 200_000
		src := make([]byte, total)
		for i := range src {
			src[i] = byte(i * 7)
		}
		errc := make(chan error, 2)
		go func() {
			_, err := a.Write(src)
			if err == nil {
				err = a.Close()
			}
			errc <- err
		}()
		go func() {
			_, err := b.Write([]byte("reply"))
			errc <- err
		}()
		got, err := io.ReadAll(b)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(src) {
			t.Fatalf("got %d bytes, out of order or corrupted", len(got))
		}
		reply := make([]byte, 5)
		if _, err := io.ReadFull(a, reply); err == nil {
			t.Error("read on closed a-end succeeded")
		}
		for range 2 {
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		}
		st := l.Stats().AB
		if st.RetransmittedUnits < 100 || st.RetransmittedUnits > 350 {
			t.Errorf("retransmitted %d of %d segments, want about 10%%", st.RetransmittedUnits, st.OfferedUnits)
		}
		if st.DeliveredBytes != total {
			t.Errorf("delivered %d", st.DeliveredBytes)
		}
	})
}

func TestBackpressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLink(profile(t, "vhf-9600,loss=0"), 1)
		defer l.Close()
		a, b := l.Pipe()
		a.SetWriteDeadline(time.Now().Add(time.Minute))
		n, err := a.Write(make([]byte, 2*StreamWindow))
		if n != StreamWindow || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Write = %d, %v; want %d and deadline exceeded", n, err, StreamWindow)
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("error %v is not a net.Error timeout", err)
		}
		// After reading some, writing can go on.
		if _, err := io.ReadFull(b, make([]byte, 10000)); err != nil {
			t.Fatal(err)
		}
		a.SetWriteDeadline(time.Time{})
		if n, err := a.Write(make([]byte, 10000)); n != 10000 || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	})
}

func TestReadDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLink(profile(t, "iridium-2400"), 1)
		defer l.Close()
		a, b := l.Pipe()
		b.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		start := time.Now()
		a.Write([]byte("x"))
		_, err := b.Read(make([]byte, 1))
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read err %v, want deadline exceeded", err)
		}
		if el := time.Since(start); el != 500*time.Millisecond {
			t.Errorf("timed out after %v", el)
		}
		// Clearing the deadline lets the byte arrive (750 ms + 1/300 s).
		b.SetReadDeadline(time.Time{})
		if _, err := b.Read(make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		// A deadline in the past fails at once.
		b.SetDeadline(time.Now().Add(-time.Second))
		if _, err := b.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("past deadline: %v", err)
		}
	})
}

func TestCloseEOFAfterData(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLink(profile(t, "uhf-dama-2400,loss=0"), 1)
		defer l.Close()
		a, b := l.Pipe()
		a.Write([]byte("hello"))
		a.Close()
		got, err := io.ReadAll(b)
		if err != nil || string(got) != "hello" {
			t.Fatalf("ReadAll = %q, %v", got, err)
		}
		if _, err := b.Write([]byte("late")); err == nil {
			t.Error("write to closed peer succeeded")
		}
		if _, err := a.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
			t.Errorf("read after close: %v", err)
		}
	})
}

func TestOutageReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLink(profile(t, "vhf-9600,loss=0"), 1)
		defer l.Close()
		ln := l.Listen()
		ctx := context.Background()
		accepted := make(chan net.Conn, 1)
		go func() {
			c, err := ln.Accept()
			if err == nil {
				accepted <- c
			}
		}()
		start := time.Now()
		a, err := l.Dial(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el != 100*time.Millisecond {
			t.Errorf("dial took %v, want one round trip", el)
		}
		b := <-accepted
		a.Write([]byte("ping"))
		readErr := make(chan error, 1)
		go func() {
			_, err := io.ReadAll(b)
			readErr <- err
		}()
		time.Sleep(time.Second)
		l.Down(10 * time.Second)
		if err := <-readErr; !errors.Is(err, ErrLinkDown) {
			t.Errorf("read during outage: %v, want ErrLinkDown", err)
		}
		if _, err := a.Write([]byte("x")); !errors.Is(err, ErrLinkDown) {
			t.Errorf("write during outage: %v", err)
		}
		if _, err := l.Dial(ctx); !errors.Is(err, ErrLinkDown) {
			t.Errorf("dial during outage: %v", err)
		}
		if st := l.Stats(); !st.Down || st.Outages != 1 {
			t.Errorf("stats %+v", st)
		}
		time.Sleep(10 * time.Second)
		go func() {
			c, err := ln.Accept()
			if err == nil {
				accepted <- c
			}
		}()
		a2, err := l.Dial(ctx)
		if err != nil {
			t.Fatalf("dial after outage: %v", err)
		}
		b2 := <-accepted
		a2.Write([]byte("again"))
		buf := make([]byte, 5)
		if _, err := io.ReadFull(b2, buf); err != nil || string(buf) != "again" {
			t.Errorf("after outage: %q %v", buf, err)
		}
		ln.Close()
	})
}

func TestOutageStall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLink(profile(t, "vhf-9600,loss=0"), 1)
		defer l.Close()
		l.SetOutageMode(Stall)
		a, b := l.Pipe()
		l.Down(30 * time.Second)
		start := time.Now()
		a.Write(make([]byte, 120)) // 100 ms at 9600 bit/s
		if _, err := io.ReadFull(b, make([]byte, 120)); err != nil {
			t.Fatal(err)
		}
		if el, want := time.Since(start), 30*time.Second+150*time.Millisecond; el != want {
			t.Errorf("delivered after %v, want %v", el, want)
		}
		// Data in flight when an outage starts arrives when it ends (Up).
		a.Write(make([]byte, 120))
		time.Sleep(120 * time.Millisecond)
		l.Down(time.Hour)
		go func() {
			time.Sleep(5 * time.Second)
			l.Up()
		}()
		start = time.Now()
		if _, err := io.ReadFull(b, make([]byte, 120)); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el != 5*time.Second {
			t.Errorf("held data arrived after %v, want 5s", el)
		}
	})
}

func TestDialStall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLink(profile(t, "uhf-dama-2400"), 1)
		defer l.Close()
		l.SetOutageMode(Stall)
		ln := l.Listen()
		defer ln.Close()
		l.Down(20 * time.Second)
		start := time.Now()
		c, err := l.Dial(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Waits out the outage, then one round trip of 2×1 s.
		if el := time.Since(start); el != 22*time.Second {
			t.Errorf("dial took %v, want 22s", el)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		l.Down(time.Minute)
		if _, err := l.Dial(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("dial with short context: %v", err)
		}
	})
}

func TestRandomOutages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLink(profile(t, "lan,outage=1m-2m/10s-20s"), 3)
		defer l.Close()
		downs := 0
		was := false
		for range 60 * 10 {
			time.Sleep(time.Second)
			if d := l.IsDown(); d && !was {
				downs++
				was = d
			} else {
				was = d
			}
		}
		// 10 minutes with a cycle of 70-140 s: 4 to 9 outages.
		if downs < 4 || downs > 9 {
			t.Errorf("%d outages in 10 min", downs)
		}
		if st := l.Stats(); st.Outages != downs {
			t.Errorf("Stats.Outages %d, saw %d", st.Outages, downs)
		}
	})
}

func TestPacketLoss(t *testing.T) {
	for _, tc := range []struct {
		spec     string
		wantRuns bool
	}{
		{"lan,loss=0.05", false},
		{"lan,loss=0.05,burst=4", true},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := NewLink(profile(t, tc.spec), 42)
				defer l.Close()
				a, b := l.PacketPipe()
				const n = 10000
				got := make([]bool, n)
				done := make(chan int)
				go func() {
					buf := make([]byte, 64)
					recv := 0
					for {
						m, _, err := b.ReadFrom(buf)
						if err != nil {
							done <- recv
							return
						}
						got[int(buf[0])|int(buf[1])<<8] = true
						_ = m
						recv++
					}
				}()
				for i := range n {
					a.WriteTo([]byte{byte(i), byte(i >> 8)}, nil)
					time.Sleep(time.Millisecond)
				}
				synctest.Wait()
				b.Close()
				recv := <-done
				lossRate := 1 - float64(recv)/n
				if lossRate < 0.04 || lossRate > 0.06 {
					t.Errorf("loss %.4f, want about 0.05", lossRate)
				}
				runs, lostTotal := 0, 0
				for i := range n {
					if !got[i] {
						lostTotal++
						if i == 0 || got[i-1] {
							runs++
						}
					}
				}
				mean := float64(lostTotal) / float64(runs)
				if tc.wantRuns && (mean < 3 || mean > 5) {
					t.Errorf("mean burst %.2f, want about 4", mean)
				}
				if !tc.wantRuns && mean > 1.2 {
					t.Errorf("mean burst %.2f, want about 1", mean)
				}
				if st := l.Stats().AB; st.LostUnits != int64(n-recv) || st.DeliveredUnits != int64(recv) {
					t.Errorf("stats %+v, received %d", st, recv)
				}
			})
		})
	}
}

func TestPacketTimingAndOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLink(profile(t, "vhf-9600,loss=0"), 1)
		defer l.Close()
		a, b := l.PacketPipe()
		start := time.Now()
		a.WriteTo(make([]byte, 1200), nil)
		a.WriteTo(make([]byte, 1200), nil)
		buf := make([]byte, 2000)
		for i := 1; i <= 2; i++ {
			n, from, err := b.ReadFrom(buf)
			if err != nil || n != 1200 || from.String() != a.LocalAddr().String() {
				t.Fatalf("ReadFrom = %d, %v, %v", n, from, err)
			}
			if el, want := time.Since(start), time.Duration(i)*time.Second+50*time.Millisecond; el != want {
				t.Errorf("packet %d after %v, want %v", i, el, want)
			}
		}
		// Oversize is dropped; a full queue drops.
		a.WriteTo(make([]byte, 1500), nil)
		for range 10 {
			a.WriteTo(make([]byte, 1000), nil)
		}
		st := l.Stats().AB
		if st.DroppedUnits != 1+10-5 {
			t.Errorf("dropped %d, want 6 (1 oversize, 5 over the 4-MTU queue)", st.DroppedUnits)
		}
		synctest.Wait()
		time.Sleep(10 * time.Second)
		// Packets sent or arriving during an outage are lost.
		a.WriteTo(make([]byte, 100), nil)
		l.Down(time.Second)
		a.WriteTo(make([]byte, 100), nil)
		b.SetReadDeadline(time.Now().Add(5 * time.Second))
		n := 0
		for {
			_, _, err := b.ReadFrom(buf)
			if err != nil {
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatal(err)
				}
				break
			}
			n++
		}
		if n != 5 {
			t.Errorf("read %d packets, want the 5 queued before", n)
		}
		if st := l.Stats().AB; st.LostUnits != 2 {
			t.Errorf("lost %d, want 2", st.LostUnits)
		}
	})
}

func TestWrapPacketConn(t *testing.T) {
	// Real loopback sockets, so no synctest: a short delay only.
	p := profile(t, "lan,delay=30ms")
	l := NewLink(p, 1)
	defer l.Close()
	pc1, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc2, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w1, w2 := l.WrapPacketConn(pc1), l.WrapPacketConn(pc2)
	defer w1.Close()
	defer w2.Close()
	start := time.Now()
	if _, err := w1.WriteTo([]byte("ping"), pc2.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	w2.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := w2.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("ReadFrom = %q, %v", buf[:n], err)
	}
	if el := time.Since(start); el < 30*time.Millisecond {
		t.Errorf("arrived after %v, want ≥ 30ms", el)
	}
	w2.WriteTo([]byte("pong"), from)
	w1.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, _, err := w1.ReadFrom(buf); err != nil || string(buf[:n]) != "pong" {
		t.Fatalf("ReadFrom = %q, %v", buf[:n], err)
	}
	st := l.Stats()
	if st.AB.DeliveredUnits != 1 || st.BA.DeliveredUnits != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestCloseStopsEverything(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLink(profile(t, "hf-2400"), 1)
		a, b := l.Pipe()
		pa, _ := l.PacketPipe()
		ln := l.Listen()
		errs := make(chan error, 4)
		go func() { _, err := b.Read(make([]byte, 1)); errs <- err }()
		go func() { _, err := a.Write(make([]byte, 1<<20)); errs <- err }()
		go func() { _, _, err := pa.ReadFrom(make([]byte, 1)); errs <- err }()
		go func() { _, err := ln.Accept(); errs <- err }()
		time.Sleep(time.Second)
		l.Close()
		for range 4 {
			if err := <-errs; err == nil {
				t.Error("blocked call returned nil error after Close")
			}
		}
		if _, err := l.Dial(context.Background()); err == nil {
			t.Error("Dial after Close succeeded")
		}
		// synctest fails the test if any goroutine is left.
	})
}

func TestParseProfile(t *testing.T) {
	p, err := ParseProfile("vhf-9600,rate=4800,delay=200ms,loss=0.02,outage=20s-40s/5s-15s,mtu=576")
	if err != nil {
		t.Fatal(err)
	}
	want := Profile{Name: "vhf-9600", RateBPS: 4800, Delay: 200 * time.Millisecond, Loss: 0.02,
		OutageEvery: [2]time.Duration{20 * time.Second, 40 * time.Second},
		OutageLen:   [2]time.Duration{5 * time.Second, 15 * time.Second}, MTU: 576}
	want.Source = p.Source
	if p != want {
		t.Errorf("got %+v\nwant %+v", p, want)
	}
	for _, name := range Names() {
		b, _ := Lookup(name)
		if b.Source == "" {
			t.Errorf("%s has no source", name)
		}
		// String round-trips.
		q, err := ParseProfile(b.String())
		if err != nil {
			t.Errorf("%s: %v", b.String(), err)
			continue
		}
		if q.MTU == DefaultMTU && b.MTU == 0 {
			q.MTU = 0
		}
		if q != b {
			t.Errorf("round trip of %s: %+v", b.String(), q)
		}
	}
	if r, _ := ParseProfile("lan,rate=64k,loss=2%"); r.RateBPS != 64000 || r.Loss != 0.02 {
		t.Errorf("suffixes: %+v", r)
	}
	for spec, tok := range map[string]string{
		"nosuch":                     `"nosuch"`,
		"vhf-9600,rate=fast":         `"rate=fast"`,
		"vhf-9600,delay=-1s":         `"delay=-1s"`,
		"vhf-9600,loss=1.5":          `"loss=1.5"`,
		"vhf-9600,outage=20s":        `"outage=20s"`,
		"vhf-9600,outage=40s-20s/5s": `"outage=40s-20s/5s"`,
		"vhf-9600,mtu=0":             `"mtu=0"`,
		"vhf-9600,colour=red":        `"colour=red"`,
		"vhf-9600,rate":              `"rate"`,
		"vhf-9600,burst=0":           `"burst=0"`,
	} {
		_, err := ParseProfile(spec)
		if err == nil {
			t.Errorf("%s: no error", spec)
			continue
		}
		if !strings.Contains(err.Error(), tok) || !strings.HasPrefix(err.Error(), "emu: ") {
			t.Errorf("%s: error %q does not name %s", spec, err, tok)
		}
	}
}

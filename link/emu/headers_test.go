package emu

import (
	"context"
	"io"
	"testing"
	"testing/synctest"
	"time"
)

// TestHeaders: with SetHeaders, each segment and datagram costs its IP
// header on the serializer (so it takes longer to cross), the receiver
// returns a pure ACK per two segments, and a Dial costs SYN, SYN/ACK, ACK.
func TestHeaders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLink(profile(t, "vhf-9600,loss=0,delay=0,mtu=100"), 1)
		defer l.Close()
		l.SetHeaders(true)
		ln := l.Listen()
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.Copy(io.Discard, c)
		}()
		c, err := l.Dial(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(make([]byte, 400)); err != nil { // 4 segments
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		st := l.Stats()
		if want := int64(SYNBytes + TCPHeaderBytes + 400 + 4*TCPHeaderBytes); st.AB.AirBytes != want {
			t.Errorf("a→b air bytes %d, want %d (SYN, ACK, 4 segments with headers)", st.AB.AirBytes, want)
		}
		if want := int64(SYNBytes + 2*TCPHeaderBytes); st.BA.AirBytes != want {
			t.Errorf("b→a air bytes %d, want %d (SYN/ACK, 2 delayed ACKs)", st.BA.AirBytes, want)
		}
		pa, pb := l.PacketPipe()
		pa.WriteTo(make([]byte, 72), pb.LocalAddr())
		buf := make([]byte, 200)
		t0 := time.Now()
		if _, _, err := pb.ReadFrom(buf); err != nil {
			t.Fatal(err)
		}
		// 72 B + 28 B header at 9600 bit/s: 83 ms, not 60 ms (plus what
		// the stream left on the serializer: nothing by now).
		if got, want := time.Since(t0), l.serTime(72+UDPHeaderBytes); got != want {
			t.Errorf("datagram took %v to cross, want %v (header included)", got, want)
		}
	})
}

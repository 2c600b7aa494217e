package emu

import (
	"context"
	"io"
	"testing"
	"testing/synctest"
	"time"
)

func TestNetAddressesAndRefusal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _ := Lookup("vhf-9600")
		l := NewLink(p, 1)
		defer l.Close()
		n := NewNet(l)
		ctx := context.Background()
		if _, err := n.Dial(ctx, "tcp", "10.0.0.1:5269"); err == nil {
			t.Fatal("dial with nothing listening succeeded")
		}
		ln, err := n.Listen("10.0.0.1:5269")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.Listen("10.0.0.1:5269"); err == nil {
			t.Fatal("second listener on the same address")
		}
		start := time.Now()
		c, err := n.DialFrom(ctx, "127.0.0.2", "10.0.0.1:5269")
		if err != nil {
			t.Fatal(err)
		}
		if rtt := time.Since(start); rtt != 2*p.Delay {
			t.Errorf("dial took %v, want one round trip %v", rtt, 2*p.Delay)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if got := s.RemoteAddr().String(); got != c.LocalAddr().String() || got[:10] != "127.0.0.2:" {
			t.Errorf("accepted end's remote %s, dialling end's local %s", got, c.LocalAddr())
		}
		if got := c.RemoteAddr().String(); got != "10.0.0.1:5269" || s.LocalAddr().String() != got {
			t.Errorf("dialling end's remote %s, accepted end's local %s", got, s.LocalAddr())
		}
		go func() { c.Write([]byte("hello")); c.Close() }()
		b, err := io.ReadAll(s)
		if err != nil || string(b) != "hello" {
			t.Errorf("read %q, %v", b, err)
		}
		s.Close()
		ln.Close()
		if _, err := n.Dial(ctx, "tcp", "10.0.0.1:5269"); err == nil {
			t.Fatal("dial to a closed listener succeeded")
		}
	})
}

package main

import (
	"net"
	"strings"
	"testing"

	"github.com/isthmus-xmpp/isthmus/gateway"
	"github.com/isthmus-xmpp/isthmus/gateway/config"
)

// Inherited sockets go to the listener they are named for, or, unnamed, to
// the one whose configured address they have; any other is refused.
func TestUseInherited(t *testing.T) {
	listen := func() net.Listener {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	s2s, lnk, admin, other := listen(), listen(), listen(), listen()
	cfg := config.Default()
	cfg.S2S.Listen = s2s.Addr().String()
	cfg.Link.Listen = lnk.Addr().String()
	cfg.AdminListen = admin.Addr().String()

	var opts gateway.Options
	used, err := useInherited([]inherited{{"s2s", s2s}, {"", lnk}, {"admin", admin}}, &cfg, &opts)
	if err != nil {
		t.Fatal(err)
	}
	if opts.S2SListener != s2s || opts.AdminListener != admin || opts.LinkListener == nil || opts.LinkListener.Addr() != lnk.Addr() || len(used) != 3 {
		t.Fatalf("options %+v, used %q", opts, used)
	}
	for name, c := range map[string]struct {
		ls   []inherited
		edit func(*config.Config)
		want string
	}{
		"unknown address": {[]inherited{{"", other}}, nil, "matches none"},
		"unknown name":    {[]inherited{{"xmpp", s2s}}, nil, "matches none"},
		"dialling side":   {[]inherited{{"link", lnk}}, func(c *config.Config) { c.Link.Listen = "" }, "link.listen is not set"},
		"quic link":       {[]inherited{{"link", lnk}}, func(c *config.Config) { c.Link.Transport = "quic" }, "QUIC"},
	} {
		c2 := cfg
		if c.edit != nil {
			c.edit(&c2)
		}
		if _, err := useInherited(c.ls, &c2, &gateway.Options{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", name, err, c.want)
		}
	}
}

func TestSameAddr(t *testing.T) {
	a := &net.TCPAddr{IP: net.IPv4(10, 1, 0, 2), Port: 5269}
	any4 := &net.TCPAddr{IP: net.IPv4zero, Port: 17000}
	any6 := &net.TCPAddr{IP: net.IPv6unspecified, Port: 17000}
	for _, c := range []struct {
		a    net.Addr
		s    string
		want bool
	}{
		{a, "10.1.0.2:5269", true}, {a, "10.1.0.3:5269", false}, {a, "10.1.0.2:5270", false},
		{any4, "0.0.0.0:17000", true}, {any6, "0.0.0.0:17000", true}, {any6, ":17000", true},
		{a, "", false}, {any4, "127.0.0.1:17000", false},
	} {
		if got := sameAddr(c.a, c.s); got != c.want {
			t.Errorf("sameAddr(%v, %q) = %v", c.a, c.s, got)
		}
	}
}

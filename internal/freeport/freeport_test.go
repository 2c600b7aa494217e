package freeport

import (
	"net"
	"strconv"
	"testing"
)

// Ports asked for together, and across calls, are distinct and bindable.
func TestPortsDistinct(t *testing.T) {
	for _, network := range []string{"tcp", "udp"} {
		seen := map[int]bool{}
		for range 20 {
			ps, err := Ports(network, 3)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range ps {
				if seen[p] {
					t.Fatalf("%s port %d returned twice", network, p)
				}
				seen[p] = true
			}
		}
		p := port(t, network)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		var err error
		if network == "tcp" {
			var l net.Listener
			if l, err = net.Listen(network, addr); err == nil {
				l.Close()
			}
		} else {
			var c net.PacketConn
			if c, err = net.ListenPacket(network, addr); err == nil {
				c.Close()
			}
		}
		if err != nil {
			t.Errorf("%s port %d from Ports cannot be bound: %v", network, p, err)
		}
	}
	if _, err := Ports("sctp", 1); err == nil {
		t.Error(`Ports("sctp") did not fail`)
	}
}

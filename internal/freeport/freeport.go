// Package freeport hands tests loopback ports for the servers they start
// (Prosody, ejabberd, child gateways), which must be told a port before
// they bind it.
//
// Asking the kernel for port 0 and closing the socket again is racy in two
// ways: the kernel may hand the same port to the next request (two of one
// server's listeners then collide: ejabberd refuses to start with
// "Overlapping listeners"), and another process may take it before the
// server binds. This package removes the first: a port is returned at most
// once per process, and ports asked for together are distinct. The second
// stays, so callers that start a server still retry on "address in use".
package freeport

import (
	"fmt"
	"net"
	"sync"
	"testing"
)

var (
	mu    sync.Mutex
	given = map[string]bool{} // "tcp/43167": returned before, by this process
)

// Ports returns n distinct ports on 127.0.0.1 for network ("tcp" or "udp")
// that were free a moment ago and that no earlier call returned.
func Ports(network string, n int) ([]int, error) {
	if network != "tcp" && network != "udp" {
		return nil, fmt.Errorf("freeport: network %q is not tcp or udp", network)
	}
	mu.Lock()
	defer mu.Unlock()
	// Every socket stays open until all n are chosen, so the kernel cannot
	// hand out one of them twice.
	var held []func() error
	defer func() {
		for _, c := range held {
			_ = c()
		}
	}()
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries > 100*n {
			return nil, fmt.Errorf("freeport: no %s port after %d tries", network, tries)
		}
		p, closer, err := listen(network)
		if err != nil {
			return nil, fmt.Errorf("freeport: %w", err)
		}
		held = append(held, closer)
		key := fmt.Sprintf("%s/%d", network, p)
		if given[key] {
			continue
		}
		given[key] = true
		ports = append(ports, p)
	}
	return ports, nil
}

func listen(network string) (int, func() error, error) {
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, nil, err
		}
		return c.LocalAddr().(*net.UDPAddr).Port, c.Close, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, nil, err
	}
	return l.Addr().(*net.TCPAddr).Port, l.Close, nil
}

// TCP returns one TCP port as Ports does, failing t if there is none.
func TCP(t testing.TB) int {
	t.Helper()
	return port(t, "tcp")
}

// UDP returns one UDP port as Ports does, failing t if there is none.
func UDP(t testing.TB) int {
	t.Helper()
	return port(t, "udp")
}

func port(t testing.TB, network string) int {
	t.Helper()
	p, err := Ports(network, 1)
	if err != nil {
		t.Fatal(err)
	}
	return p[0]
}

package emu

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Relay tests use real loopback sockets, so they run in real time with a
// short delay.

func echoTCP(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func TestRelayTCP(t *testing.T) {
	target := echoTCP(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var logs []string
	r := &Relay{Profile: profile(t, "lan,delay=20ms,rate=1M"), Seed: 1, Logf: func(f string, args ...any) {
		mu.Lock()
		logs = append(logs, f)
		mu.Unlock()
	}}
	done := make(chan error, 1)
	go func() { done <- r.ServeTCP(ctx, ln, target) }()

	for range 2 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		c.Write([]byte("hello"))
		buf := make([]byte, 5)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
			t.Fatalf("echo %q, %v", buf, err)
		}
		if el := time.Since(start); el < 40*time.Millisecond {
			t.Errorf("round trip %v, want ≥ 40ms", el)
		}
		// Half-close: the echo server sees EOF and closes; we read EOF.
		c.(*net.TCPConn).CloseWrite()
		if _, err := c.Read(buf); err != io.EOF {
			t.Errorf("after CloseWrite: %v, want EOF", err)
		}
		c.Close()
	}
	st := r.Stats()
	if st.AB.DeliveredBytes != 10 || st.BA.DeliveredBytes != 10 {
		t.Errorf("stats %+v", st)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ServeTCP returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeTCP did not stop")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(logs) != 4 {
		t.Errorf("log lines %q, want 2 per connection", logs)
	}
}

func TestRelayTCPOutageRefuses(t *testing.T) {
	target := echoTCP(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &Relay{Profile: profile(t, "lan"), Seed: 1}
	go r.ServeTCP(ctx, ln, target)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("x"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	l := r.link
	r.mu.Unlock()
	l.Down(time.Hour)
	// The outage resets the relayed connection: the client sees it closed.
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("read after outage succeeded")
	}
}

func TestRelayUDP(t *testing.T) {
	echo, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		buf := make([]byte, 2000)
		for {
			n, from, err := echo.ReadFrom(buf)
			if err != nil {
				return
			}
			echo.WriteTo(buf[:n], from)
		}
	}()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RelayUDP(ctx, profile(t, "lan,delay=20ms"), 1, pc, echo.LocalAddr().String()) }()

	for range 2 { // two client addresses, two sessions
		c, err := net.Dial("udp", pc.LocalAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		c.Write([]byte("ping"))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 100)
		n, err := c.Read(buf)
		if err != nil || string(buf[:n]) != "ping" {
			t.Fatalf("echo %q, %v", buf[:n], err)
		}
		if el := time.Since(start); el < 40*time.Millisecond {
			t.Errorf("round trip %v, want ≥ 40ms", el)
		}
		// Oversize datagrams are dropped by the link.
		c.Write(make([]byte, 1500))
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := c.Read(buf); err == nil {
			t.Errorf("oversize datagram came back")
		}
		c.Close()
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("RelayUDP returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RelayUDP did not stop")
	}
}

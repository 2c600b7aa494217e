package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/isthmus-xmpp/isthmus/link/emu"
)

func TestLinkemuList(t *testing.T) {
	var out, errb bytes.Buffer
	if err := linkemu(context.Background(), &out, &errb, []string{"-list"}); err != nil {
		t.Fatal(err)
	}
	for _, name := range emu.Names() {
		if !strings.Contains(out.String(), "\n"+name+" ") {
			t.Errorf("-list lacks %s:\n%s", name, out.String())
		}
	}
	if !strings.Contains(out.String(), "STANAG 5066") || !strings.Contains(out.String(), "2400 bit/s") {
		t.Errorf("-list lacks sources or rates:\n%s", out.String())
	}
}

func TestLinkemuUsage(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-profile", "vhf-9600", "-listen", "127.0.0.1:0"},
		{"-profile", "vhf-9600,rate=x", "-listen", "127.0.0.1:0", "-target", "127.0.0.1:1"},
		{"-profile", "vhf-9600", "-listen", "127.0.0.1:0", "-target", "127.0.0.1:1", "-outage", "maybe"},
		{"-list", "extra"},
		{"-profile", "vhf-9600", "-listen", "127.0.0.1:0", "-target", "127.0.0.1:1", "-stats-interval", "-1s"},
	} {
		var out, errb bytes.Buffer
		err := linkemu(context.Background(), &out, &errb, args)
		if !errors.Is(err, errUsage) {
			t.Errorf("%q: err %v, want errUsage", args, err)
		}
		if !strings.Contains(errb.String(), "usage:") {
			t.Errorf("%q: no usage printed", args)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the relay's logger and the test.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLinkemuRelayTCP(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	// Pick a free port for the relay.
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := probe.Addr().String()
	probe.Close()

	ctx, cancel := context.WithCancel(context.Background())
	var errb syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- linkemu(ctx, io.Discard, &errb, []string{"-profile", "lan,delay=10ms", "-listen", addr, "-target", echo.Addr().String()})
	}()
	var c net.Conn
	for range 100 {
		if c, err = net.Dial("tcp", addr); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("hi"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hi" {
		t.Fatalf("echo %q, %v", buf, err)
	}
	c.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	logs := errb.String()
	for _, want := range []string{"conn 1: ", "stats after", "client->target offered 2 B/1"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}

// The counters are logged every -stats-interval and on demand (SIGUSR1),
// not only at exit.
func TestLinkemuStatsWhileRunning(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := probe.Addr().String()
	probe.Close()

	for _, c := range []struct {
		name  string
		every string
	}{{"periodic", "20ms"}, {"on demand", "0s"}} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var errb syncBuffer
			dump := make(chan struct{})
			done := make(chan error, 1)
			go func() {
				done <- linkemuDump(ctx, io.Discard, &errb, []string{"-profile", "lan", "-listen", addr, "-target", echo.Addr().String(), "-stats-interval", c.every}, dump)
			}()
			var conn net.Conn
			for range 100 {
				if conn, err = net.Dial("tcp", addr); err == nil {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.Write([]byte("hi"))
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 2)
			if _, err := io.ReadFull(conn, buf); err != nil {
				t.Fatal(err)
			}
			if c.every == "0s" {
				dump <- struct{}{}
			}
			deadline := time.Now().Add(5 * time.Second)
			for !strings.Contains(errb.String(), "client->target offered 2 B/1") {
				if time.Now().After(deadline) {
					t.Fatalf("no stats line while running:\n%s", errb.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

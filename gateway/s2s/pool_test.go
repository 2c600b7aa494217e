package s2s

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// spyConn counts single-space writes (keepalives).
type spyConn struct {
	net.Conn
	spaces *atomic.Int32
}

func (c spyConn) Write(b []byte) (int, error) {
	if string(b) == " " {
		c.spaces.Add(1)
	}
	return c.Conn.Write(b)
}

// poolRig is a Pool for a.test whose streams reach the rig's b.test
// Server through net.Pipe.
type poolRig struct {
	*rig
	pool   *Pool
	psink  *sink
	dials  atomic.Int32
	spaces atomic.Int32
}

func newPoolRig(t *testing.T, lim Limits) *poolRig {
	pr := &poolRig{rig: newRig(t, lim), psink: newSink()}
	pr.pool = NewPool(PoolConfig{
		Resolve: func(d string) (string, error) {
			if d != "b.test" {
				return "", errors.New("unknown domain")
			}
			return "b.test:5269", nil
		},
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			pr.dials.Add(1)
			c1, c2 := net.Pipe()
			pr.wg.Go(func() { _ = pr.b.ServeConn(pr.ctx, c2) })
			return spyConn{c1, &pr.spaces}, nil
		},
		Secret: testSecret,
		Limits: lim,
		Bounce: pr.psink.bounce,
		Events: pr.psink.event,
	})
	return pr
}

func (pr *poolRig) stop() {
	pr.pool.Close()
	pr.rig.stop()
}

func TestPoolIdleCloseAndReopen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pr := newPoolRig(t, Limits{Keepalive: time.Minute, IdleTimeout: 5 * time.Minute})
		defer pr.stop()
		for _, id := range []string{"1", "2", "3"} {
			pr.pool.Send(msg("alice@a.test", "bob@b.test", id, "x"))
		}
		synctest.Wait()
		if got := len(pr.sink.got); got != 3 {
			t.Fatalf("delivered %d, want 3", got)
		}
		for i, st := range pr.sink.got {
			if st.ID != []string{"1", "2", "3"}[i] {
				t.Errorf("order: %d is %s", i, st.ID)
			}
		}
		time.Sleep(4*time.Minute + 30*time.Second)
		synctest.Wait()
		if n := pr.spaces.Load(); n != 4 {
			t.Errorf("%d keepalives after 4.5 minutes, want 4", n)
		}
		pr.psink.mu.Lock()
		closed := pr.psink.hasEvent("out-close", "", "")
		pr.psink.mu.Unlock()
		if closed {
			t.Fatal("stream closed before the idle timeout")
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		pr.psink.mu.Lock()
		closed = pr.psink.hasEvent("out-close", "a.test", "b.test")
		pr.psink.mu.Unlock()
		if !closed {
			t.Fatal("stream not closed after the idle timeout")
		}
		pr.sink.mu.Lock()
		inClosed := pr.sink.hasEvent("in-close", "", "")
		pr.sink.mu.Unlock()
		if !inClosed {
			t.Error("server side did not close")
		}
		pr.pool.Send(msg("alice@a.test", "bob@b.test", "4", "x"))
		synctest.Wait()
		if len(pr.sink.got) != 4 || pr.dials.Load() != 2 {
			t.Errorf("after reopening: %d delivered, %d dials", len(pr.sink.got), pr.dials.Load())
		}
		if len(pr.psink.bounced) != 0 {
			t.Errorf("bounced %v", pr.psink.bounced)
		}
	})
}

func TestPoolServerGoesAway(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pr := newPoolRig(t, Limits{})
		defer pr.stop()
		pr.pool.Send(msg("alice@a.test", "bob@b.test", "1", "x"))
		synctest.Wait()
		// The server shuts down: it closes the stream cleanly, the pool
		// answers, and the next stanza fails to connect.
		pr.cancel()
		synctest.Wait()
		pr.psink.mu.Lock()
		closed := pr.psink.hasEvent("out-close", "a.test", "b.test")
		pr.psink.mu.Unlock()
		if !closed {
			t.Fatal("no out-close")
		}
		pr.pool.Send(msg("alice@a.test", "bob@b.test", "2", "x"))
		synctest.Wait()
		if len(pr.sink.got) != 1 {
			t.Errorf("delivered %d", len(pr.sink.got))
		}
		pr.psink.mu.Lock()
		defer pr.psink.mu.Unlock()
		if len(pr.psink.bounced) != 1 || pr.psink.bounced[0] != "remote-server-not-found 2" {
			t.Errorf("bounced %v", pr.psink.bounced)
		}
	})
}

func TestPoolCloseFlushes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pr := newPoolRig(t, Limits{})
		pr.pool.Send(msg("alice@a.test", "bob@b.test", "1", "x"))
		synctest.Wait()
		for _, id := range []string{"2", "3"} {
			pr.pool.Send(msg("alice@a.test", "bob@b.test", id, "x"))
		}
		pr.pool.Close()
		synctest.Wait()
		if len(pr.sink.got) != 3 {
			t.Errorf("delivered %d, want 3", len(pr.sink.got))
		}
		pr.pool.Send(msg("alice@a.test", "bob@b.test", "4", "x"))
		if len(pr.psink.bounced) != 1 || pr.psink.bounced[0] != "service-unavailable 4" {
			t.Errorf("bounced %v", pr.psink.bounced)
		}
		pr.rig.stop()
	})
}

func TestPoolConnectTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := newSink()
		var wg sync.WaitGroup
		var mu sync.Mutex
		var peers []net.Conn
		p := NewPool(PoolConfig{
			Resolve: func(string) (string, error) { return "b.test:5269", nil },
			// A peer that accepts the connection and never answers.
			Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c1, c2 := net.Pipe()
				mu.Lock()
				peers = append(peers, c2)
				mu.Unlock()
				wg.Go(func() {
					buf := make([]byte, 1024)
					for {
						if _, err := c2.Read(buf); err != nil {
							return
						}
					}
				})
				return c1, nil
			},
			Limits: Limits{ConnectTimeout: 10 * time.Second},
			Bounce: k.bounce,
		})
		start := time.Now()
		p.Send(msg("alice@a.test", "bob@b.test", "1", "x"))
		synctest.Wait()
		time.Sleep(10*time.Second + time.Millisecond)
		synctest.Wait()
		if len(k.bounced) != 1 || k.bounced[0] != "remote-server-timeout 1" {
			t.Errorf("after %v bounced %v", time.Since(start), k.bounced)
		}
		p.Close()
		mu.Lock()
		for _, c := range peers {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

// TestPoolReplyWaitsForRoom: replies (bounces the gateway made) are never
// bounced for a full queue; Reply waits until the stream drains, and
// replies never take the room of stanzas queued by Send.
func TestPoolReplyWaitsForRoom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const limit = 4
		pr := newPoolRig(t, Limits{QueueLimit: limit})
		defer pr.stop()
		gate := make(chan struct{})
		var delivered atomic.Int32
		pr.pool.cfg.Delivered = func(Stanza) {
			<-gate // the writer stalls: nothing more is written
			delivered.Add(1)
		}
		pr.pool.Send(msg("alice@a.test", "bob@b.test", "s0", "x"))
		synctest.Wait() // s0 written; the writer waits in Delivered
		for i := range limit {
			pr.pool.Reply(msg("alice@a.test", "bob@b.test", fmt.Sprintf("r%d", i), "x"))
		}
		var replied atomic.Bool
		go func() {
			pr.pool.Reply(msg("alice@a.test", "bob@b.test", "r4", "x"))
			replied.Store(true)
		}()
		synctest.Wait()
		if replied.Load() {
			t.Fatal("Reply over the limit returned while the stream was stalled")
		}
		for i := range limit + 1 {
			pr.pool.Send(msg("alice@a.test", "bob@b.test", fmt.Sprintf("s%d", i+1), "x"))
		}
		if s := pr.pool.Stats(); s.Queued != limit || s.Replies != limit || s.ReplyWaits != 1 {
			t.Errorf("pool stats %+v; want %d queued, %d replies, 1 wait", s, limit, limit)
		}
		synctest.Wait()
		pr.psink.mu.Lock()
		bounced := slices.Clone(pr.psink.bounced)
		pr.psink.mu.Unlock()
		if want := []string{CondResourceConstraint + " s5"}; !slices.Equal(bounced, want) {
			t.Errorf("bounced %v, want %v (only the Send over its own share)", bounced, want)
		}
		close(gate)
		synctest.Wait()
		if !replied.Load() {
			t.Fatal("Reply still waiting after the stream drained")
		}
		var ids []string
		for _, st := range pr.sink.got {
			ids = append(ids, st.ID)
		}
		want := []string{"s0", "r0", "r1", "r2", "r3", "s1", "s2", "s3", "s4", "r4"}
		if !slices.Equal(ids, want) {
			t.Errorf("delivered %v, want %v", ids, want)
		}
		if n := delivered.Load(); n != int32(len(want)) {
			t.Errorf("Delivered called %d times, want %d", n, len(want))
		}
	})
}

package link

import (
	"fmt"
	"testing"
	"time"
)

// echoMsg is a chat message from a.test with a 32-character random-looking
// id; echoReceipt is b.test's receipt for message i, whose id names it.
func echoID(i int) string {
	return fmt.Sprintf("%08x%08x%08x%08x", i*2654435761, i*40503+7, i*69069+1, i*1103515245+12345)
}

func echoMsg(i int) []byte {
	return fmt.Appendf(nil, "<message to='u@b.test/r' from='v@a.test/r' id='%s' type='chat'><body>hello %d</body><request xmlns='urn:xmpp:receipts'/></message>", echoID(i), i)
}

func echoReceipt(i int, id string) []byte {
	return fmt.Appendf(nil, "<message to='v@a.test/r' from='u@b.test/r' id='r%s'><received xmlns='urn:xmpp:receipts' id='%s'/></message>", echoID(i+1000), id)
}

// echoStart connects a and b and delivers four of a's messages (echoMsg
// 0..3) to b, whose receipts may then echo their ids; it returns the time
// reached.
func echoStart(t *testing.T, a, b *Session) time.Time {
	t.Helper()
	a.Connected(t0)
	b.Connected(t0)
	exchange(t, t0, a, b)
	now := t0.Add(time.Second)
	for i := range 4 {
		a.Enqueue(now, uint64(i)+1, Item{Data: echoMsg(i)})
	}
	var got []string
	for k := 0; k < 10 && len(got) < 4; k++ {
		now = now.Add(time.Second)
		g, _ := exchange(t, now, a, b)
		got = append(got, g...)
	}
	if len(got) != 4 {
		t.Fatalf("b got %d of a's 4 messages", len(got))
	}
	return now
}

// enqueueBacklog queues n messages on a with ids nothing echoes (a MUC
// backlog, say).
func enqueueBacklog(a *Session, now time.Time, n int) {
	for i := range n {
		a.Enqueue(now, uint64(10+i), Item{Data: fmt.Appendf(nil, "<message to='u@b.test/r' from='w@a.test/r' id='%s' type='chat'><body>m</body></message>", echoID(10000+i))})
	}
}

// connection is one connection of a and b after a reconnection: both
// poll until neither sends or one refuses what it reads.
type connection struct {
	toA, toB   int   // stanzas delivered
	errA, errB error // the first Receive error of each
	end        time.Time
}

func runConnection(now time.Time, a, b *Session) connection {
	a.Connected(now)
	b.Connected(now)
	var c connection
	for i := 0; i < 2000; i++ {
		fa, fb := a.Poll(now), b.Poll(now)
		if fa == nil && fb == nil {
			break
		}
		g, err := feed(now, b, fa)
		c.toB += len(g)
		if err != nil && c.errB == nil {
			c.errB = err
		}
		g, err = feed(now, a, fb)
		c.toA += len(g)
		if err != nil && c.errA == nil {
			c.errA = err
		}
		if c.errA != nil || c.errB != nil {
			break
		}
		now = now.Add(10 * time.Millisecond)
	}
	c.end = now
	return c
}

// TestSessionEcho: receipts naming the ids of messages the other direction
// carried cross as references (compress "Echoed ids"), and come back
// exactly.
func TestSessionEcho(t *testing.T) {
	cost := func(echoed bool) uint64 {
		a, b := newPair(t)
		a.Connected(t0)
		b.Connected(t0)
		exchange(t, t0, a, b)
		now := t0
		const n = 20
		for i := range n {
			a.Enqueue(now, uint64(i)+1, Item{Data: echoMsg(i)})
		}
		now = now.Add(time.Second)
		if got, _ := exchange(t, now, a, b); len(got) != n {
			t.Fatalf("b got %d messages, want %d", len(got), n)
		}
		before := b.Out.LinkBytes
		var want []string
		for i := range n {
			id := echoID(i)
			if !echoed {
				id = echoID(i + 5000) // an id of the same form a never sent
			}
			st := echoReceipt(i, id)
			want = append(want, string(st))
			b.Enqueue(now, uint64(i)+1, Item{Data: st})
			now = now.Add(time.Second) // one frame each
			_, got := exchange(t, now, a, b)
			if len(got) != 1 || got[0] != want[i] {
				t.Fatalf("receipt %d: got %q, want %q", i, got, want[i])
			}
		}
		return b.Out.LinkBytes - before
	}
	with, without := cost(true), cost(false)
	t.Logf("20 receipts: %d link bytes echoing the message ids, %d naming ids never sent", with, without)
	if with+20*10 > without {
		t.Fatalf("echoing saved %d B on 20 receipts, want at least 10 B each", int(without)-int(with))
	}
}

// TestSessionEchoPeerRestart: b's receipts echo a's message ids and are
// lost with the connection; a restarts with no state, so its log of sent
// ids is gone. b must start a new epoch naming no id of a's old epoch: the
// receipts, encoded again, reach the new a exactly.
func TestSessionEchoPeerRestart(t *testing.T) {
	a, b := newPair(t)
	now := echoStart(t, a, b)
	for i := range 4 {
		b.Enqueue(now, uint64(i)+1, Item{Data: echoReceipt(i, echoID(i))})
	}
	if f := b.Poll(now.Add(time.Second)); f == nil {
		t.Fatal("b sent nothing") // sent, and lost with the connection
	}
	b.Disconnected()
	a2, err := NewSession(SessionConfig{}, counterIDs(400)) // a new epoch number
	if err != nil {
		t.Fatal(err)
	}
	old := b.Epoch()
	a2.Connected(now)
	b.Connected(now)
	_, got := exchange(t, now.Add(2*time.Second), a2, b)
	if b.Epoch() == old {
		t.Fatal("b kept its epoch after a lost its decoder")
	}
	if len(got) != 4 {
		t.Fatalf("a got %d receipts, want 4: %q", len(got), got)
	}
	for i, g := range got {
		if want := string(echoReceipt(i, echoID(i))); g != want {
			t.Fatalf("receipt %d: got %q, want %q", i, g, want)
		}
	}
	if a2.ProtocolErrors != 0 || b.ProtocolErrors != 0 {
		t.Fatalf("protocol errors %d, %d", a2.ProtocolErrors, b.ProtocolErrors)
	}
}

// TestSessionEchoPreviousGeneration: b's receipts echo ids of a's epoch
// and are lost with the connection; then a starts a new epoch (b's decoder
// failed), while b resumes its own epoch and sends the same blocks again,
// byte for byte. a still resolves them from the previous generation of
// its log of sent ids.
func TestSessionEchoPreviousGeneration(t *testing.T) {
	a, b := newPair(t)
	now := echoStart(t, a, b)
	for i := range 4 {
		b.Enqueue(now, uint64(i)+1, Item{Data: echoReceipt(i, echoID(i))})
	}
	if f := b.Poll(now.Add(time.Second)); f == nil {
		t.Fatal("b sent nothing")
	}
	b.Disconnected()
	a.Disconnected()
	b.decLost = true // as after a block of a's it could not decode
	oldA, oldB := a.Epoch(), b.Epoch()
	a.Connected(now)
	b.Connected(now)
	_, got := exchange(t, now.Add(2*time.Second), a, b)
	if a.Epoch() == oldA || b.Epoch() != oldB || b.Resumes != 1 {
		t.Fatalf("epochs a %d→%d, b %d→%d, b resumes %d: want a new epoch of a and b resumed", oldA, a.Epoch(), oldB, b.Epoch(), b.Resumes)
	}
	if len(got) != 4 {
		t.Fatalf("a got %d receipts, want 4: %q", len(got), got)
	}
	for i, g := range got {
		if want := string(echoReceipt(i, echoID(i))); g != want {
			t.Fatalf("receipt %d: got %q, want %q", i, g, want)
		}
	}
}

// TestResendKeepsAckOwed: frames resent byte for byte carry the HELLO's
// ack; what b received from a meanwhile is still acknowledged once they
// are out, not left until the next keepalive.
func TestResendKeepsAckOwed(t *testing.T) {
	a, b := newPair(t)
	now := echoStart(t, a, b)
	// b sends two frames that are lost with the connection.
	for i := range 2 {
		b.Enqueue(now, uint64(i)+1, Item{Data: echoReceipt(i, echoID(i))})
		now = now.Add(time.Second)
		if b.Poll(now) == nil {
			t.Fatal("b sent nothing")
		}
	}
	a.Disconnected()
	b.Disconnected()
	a.Connected(now)
	b.Connected(now)
	// HELLOs, then a's new message reaches b before b resends.
	deliver(t, now, b, a.Poll(now))
	deliver(t, now, a, b.Poll(now))
	a.Enqueue(now, 9, Item{Data: echoMsg(9)})
	now = now.Add(time.Second)
	if got := deliver(t, now, b, a.Poll(now)); len(got) != 1 {
		t.Fatalf("b got %d", len(got))
	}
	for range 4 {
		deliver(t, now, a, b.Poll(now)) // the two resent frames
	}
	now = now.Add(2 * time.Second) // past AckDelay
	deliver(t, now, a, b.Poll(now))
	if _, unacked := a.Queued(); unacked != 0 {
		t.Fatalf("a still has %d stanzas unacknowledged after b's resend", unacked)
	}
}

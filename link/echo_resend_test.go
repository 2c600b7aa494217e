package link

import (
	"fmt"
	"testing"
	"time"
)

// TestResendAckMovesWithoutEchoes: b resends 20 frames none of which
// echoes anything; a's message sent after the HELLOs reaches b at once,
// and the resent frames must acknowledge it (resendAck): the HELLO's ack is
// kept only while a frame still to be resent echoes. Frozen for the whole
// resend, a kept it unacknowledged (held against its spool bound) for
// minutes to hours on a slow link.
func TestResendAckMovesWithoutEchoes(t *testing.T) {
	a, b := newPair(t)
	now := echoStart(t, a, b)
	const n = 20
	for i := range n {
		now = now.Add(time.Second)
		st := fmt.Appendf(nil, "<iq type='get' id='%s'><ping xmlns='urn:xmpp:ping'/></iq>", echoID(20000+i))
		b.Enqueue(now, uint64(i)+1, Item{Data: st})
		if b.Poll(now.Add(time.Second)) == nil { // lost with the connection
			t.Fatal("b sent nothing")
		}
	}
	for i, f := range b.unacked {
		if f.echoes {
			t.Fatalf("frame %d echoes: min %d epoch %d; echoed total %d", i, f.echoMin, f.echoEpoch, b.enc.Echoed())
		}
	}
	a.Disconnected()
	b.Disconnected()
	now = now.Add(time.Minute)
	a.Connected(now)
	b.Connected(now)
	deliver(t, now, b, a.Poll(now)) // a's HELLO
	deliver(t, now, a, b.Poll(now)) // b's HELLO and its first resent frame
	a.Enqueue(now, 9, Item{Data: echoMsg(9)})
	now = now.Add(time.Second)
	if got := deliver(t, now, b, a.Poll(now)); len(got) != 1 {
		t.Fatalf("b got %d", len(got))
	}
	deliver(t, now, a, b.Poll(now)) // b's second resent frame, sent after b read a's message
	if _, unacked := a.Queued(); unacked != 0 {
		resent := 2
		for ; resent < n; resent++ {
			deliver(t, now, a, b.Poll(now))
			if _, u := a.Queued(); u == 0 {
				break
			}
		}
		t.Fatalf("a's message, read by b, stays unacknowledged while b resends %d frames that echo nothing (still unacked after %d of them)", n, resent)
	}
}

package link

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/isthmus-xmpp/isthmus/compress"
)

func learnCorpus(t *testing.T, name string) [][]byte {
	t.Helper()
	st, err := compress.ReadCapture(filepath.Join("..", "testdata", "corpus", name))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// trained builds a dictionary from stanzas as a learner would.
func trained(t *testing.T, st [][]byte) compress.Dict {
	t.Helper()
	d, err := compress.TrainDict(compress.LearnStreams(st))
	if err != nil {
		t.Fatal(err)
	}
	return compress.Dict{Hash: compress.HashDict(d), Data: d}
}

// pump runs both sessions until quiet, feeding acked and delivered
// stanzas to the learners (nil: none); it returns what b delivered.
func pump(t *testing.T, now time.Time, a, b *Session, la, lb *compress.Learner) (got [][]byte) {
	t.Helper()
	recv := func(s *Session, buf []byte) [][]byte {
		var out [][]byte
		br := bufio.NewReader(bytes.NewReader(buf))
		for {
			f, err := ReadFrame(br)
			if err != nil {
				return out
			}
			batch, err := s.Receive(now, f)
			if err != nil {
				t.Fatalf("receive: %v", err)
			}
			out = append(out, batch...)
		}
	}
	for range 10000 {
		fa, fb := a.Poll(now), b.Poll(now)
		if fa == nil && fb == nil {
			return got
		}
		in := recv(b, fa)
		got = append(got, in...)
		recv(a, fb)
		if la != nil {
			la.Sent(a.TakeAcked())
		}
		if lb != nil {
			lb.Received(in)
		}
	}
	t.Fatal("sessions never went quiet")
	return nil
}

func connect(t *testing.T, a, b *Session) {
	t.Helper()
	a.Connected(t0)
	b.Connected(t0)
	pump(t, t0, a, b, nil, nil)
}

// send queues stanzas on a, one batch each, and returns what b received.
func send(t *testing.T, now time.Time, a, b *Session, st [][]byte, la, lb *compress.Learner) [][]byte {
	t.Helper()
	var got [][]byte
	for i, s := range st {
		if err := a.Enqueue(now, uint64(i+1), Item{Data: s, Class: ClassMessage}); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Second)
		got = append(got, pump(t, now, a, b, la, lb)...)
	}
	return got
}

// Both ends have the same learned dictionary: the epoch starts with it on
// both (the sender starts a new epoch once the peer's HELLO names it),
// the receiver decodes, and the cold start costs less than with the
// built-in dictionary on traffic the built-in one never saw.
func TestLearnedDictAgreed(t *testing.T) {
	st := learnCorpus(t, "ejabberd-slixmpp-ej2pr-1.xml.gz")
	d := trained(t, st[:2000])
	test := st[2000:2032]
	cost := func(learned bool) uint64 {
		a, b := newPair(t)
		if learned {
			a.SetDicts([]compress.Dict{d}, nil)
			b.SetDicts(nil, []compress.Dict{d})
		}
		connect(t, a, b)
		enc, _ := a.Dicts()
		_, dec := b.Dicts()
		want := compress.DictHash{}
		if learned {
			want = d.Hash
		}
		if enc != want || dec != want {
			t.Fatalf("learned=%v: epochs primed with %v (sender) and %v (receiver), want %v", learned, enc, dec, want)
		}
		before := a.Out.LinkBytes
		got := send(t, t0, a, b, test, nil, nil)
		if len(got) != len(test) {
			t.Fatalf("received %d of %d stanzas", len(got), len(test))
		}
		for i := range got {
			if !bytes.Equal(got[i], test[i]) {
				t.Fatalf("stanza %d: got %q, want %q", i, got[i], test[i])
			}
		}
		return a.Out.LinkBytes - before
	}
	builtin, learned := cost(false), cost(true)
	t.Logf("first 32 stanzas of an epoch: %d link bytes with the built-in dictionary, %d with the learned one", builtin, learned)
	if learned >= builtin {
		t.Fatalf("learned dictionary: %d link bytes, not fewer than the built-in one's %d", learned, builtin)
	}
}

// The two ends learned different dictionaries: the built-in one primes
// the epoch and traffic flows.
func TestLearnedDictDisagree(t *testing.T) {
	st := learnCorpus(t, "ejabberd-slixmpp-ej2pr-1.xml.gz")
	d1, d2 := trained(t, st[:1000]), trained(t, st[1000:2000])
	a, b := newPair(t)
	a.SetDicts([]compress.Dict{d1}, []compress.Dict{d2})
	b.SetDicts([]compress.Dict{d1}, []compress.Dict{d2})
	connect(t, a, b)
	if enc, dec := a.Dicts(); !enc.IsZero() || !dec.IsZero() {
		t.Fatalf("epochs primed with %v and %v, want the built-in dictionary", enc, dec)
	}
	if got := send(t, t0, a, b, st[2000:2040], nil, nil); len(got) != 40 {
		t.Fatalf("received %d of 40", len(got))
	}
	if got := send(t, t0, b, a, st[2040:2080], nil, nil); len(got) != 40 {
		t.Fatalf("received %d of 40", len(got))
	}
	if a.DictErrors+b.DictErrors != 0 {
		t.Fatal("dictionary errors counted")
	}
}

// The peer starts an epoch with a dictionary the receiver no longer has
// (lost after its HELLO named it): counted, DATA refused, and the next
// connection's HELLO reports the decoder lost, so the sender starts
// another epoch with the built-in dictionary; every stanza arrives once,
// in order.
func TestLearnedDictMissing(t *testing.T) {
	st := learnCorpus(t, "ejabberd-slixmpp-ej2pr-1.xml.gz")
	d := trained(t, st[:1000])
	a, b := newPair(t)
	a.SetDicts([]compress.Dict{d}, nil)
	b.SetDicts(nil, []compress.Dict{d})
	a.Connected(t0)
	b.Connected(t0)
	ha, hb := a.Poll(t0), b.Poll(t0)
	b.SetDicts(nil, nil)
	b.advertised = nil // the dictionary is gone
	deliver(t, t0, b, ha)
	deliver(t, t0, a, hb) // a starts a new epoch with d
	for i, s := range st[1000:1010] {
		a.Enqueue(t0, uint64(i+1), Item{Data: s, Class: ClassMessage})
	}
	now := t0.Add(time.Second)
	br := bufio.NewReader(bytes.NewReader(a.Poll(now)))
	var err error
	for err == nil {
		var f Frame
		if f, err = ReadFrame(br); err == nil {
			_, err = b.Receive(now, f)
		}
	}
	if b.DictErrors != 1 || b.ProtocolErrors != 1 {
		t.Fatalf("DictErrors %d, ProtocolErrors %d (last error %v); want 1, 1", b.DictErrors, b.ProtocolErrors, err)
	}
	a.Disconnected()
	b.Disconnected()
	a.Connected(now)
	b.Connected(now)
	got := pump(t, now, a, b, nil, nil)
	if len(got) != 10 {
		t.Fatalf("after reconnecting: received %d of 10", len(got))
	}
	for i := range got {
		if !bytes.Equal(got[i], st[1000+i]) {
			t.Fatalf("stanza %d out of order", i)
		}
	}
	if enc, _ := a.Dicts(); !enc.IsZero() {
		t.Fatalf("new epoch primed with %v, want the built-in dictionary", enc)
	}
}

// Learners on both ends learn the traffic that crosses, agree on its
// dictionaries, and after both gateways restart (new sessions and
// learners from the state directories) the first epoch starts with the
// newest one.
func TestLearnedDictAfterRestart(t *testing.T) {
	st := learnCorpus(t, "ejabberd-slixmpp-ej2pr-1.xml.gz")
	dirA, dirB := t.TempDir(), t.TempDir()
	open := func(dir string) *compress.Learner {
		l, err := compress.OpenLearner(compress.LearnConfig{Dir: dir, SampleBytes: compress.MinLearnBytes})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	la, lb := open(dirA), open(dirB)
	a, b := newPair(t)
	a.CollectAcked()
	connect(t, a, b)
	var got [][]byte
	now := t0
	for i := 0; i < 1500; i += 10 {
		for j, s := range st[i : i+10] {
			a.Enqueue(now, uint64(i+j+1), Item{Data: s, Class: ClassMessage})
		}
		now = now.Add(time.Second)
		got = append(got, pump(t, now, a, b, la, lb)...)
	}
	if len(got) != 1500 {
		t.Fatalf("received %d of 1500", len(got))
	}
	la.Flush()
	lb.Flush()
	sendD, _ := la.Dicts()
	_, recv := lb.Dicts()
	if len(sendD) == 0 || !slices.EqualFunc(sendD, recv, func(x, y compress.Dict) bool { return x.Hash == y.Hash }) {
		t.Fatalf("learned %d dictionaries on the sender, %d on the receiver, or different ones", len(sendD), len(recv))
	}
	newest := sendD[0].Hash
	if err := la.Close(); err != nil {
		t.Fatal(err)
	}
	if err := lb.Close(); err != nil {
		t.Fatal(err)
	}
	// Restart both.
	la, lb = open(dirA), open(dirB)
	defer la.Close()
	defer lb.Close()
	a, b = newPair(t)
	a.SetDicts(la.Dicts())
	b.SetDicts(lb.Dicts())
	connect(t, a, b)
	if enc, _ := a.Dicts(); enc != newest {
		t.Fatalf("after restart the epoch is primed with %v, want the newest learned %v", enc, newest)
	}
	if _, dec := b.Dicts(); dec != newest {
		t.Fatalf("after restart the peer decodes with %v, want %v", dec, newest)
	}
	if got := send(t, now, a, b, st[1500:1532], nil, nil); len(got) != 32 || !bytes.Equal(got[31], st[1531]) {
		t.Fatalf("after restart: received %d of 32", len(got))
	}
}

// Two Links with learners over TCP: each learns both directions, the two
// ends agree, and after both restart (new Links, learners reopened from
// their directories) the first epochs start with the newest learned
// dictionaries, each way.
func TestLinkLearnsAndRestarts(t *testing.T) {
	st := learnCorpus(t, "ejabberd-slixmpp-ej2pr-1.xml.gz")
	back := learnCorpus(t, "prosody-slixmpp-pr2ej-1.xml.gz")
	const n = 1500
	ka, kb := keys(t)
	dirA, dirB := t.TempDir(), t.TempDir()
	open := func(dir string) *compress.Learner {
		l, err := compress.OpenLearner(compress.LearnConfig{Dir: dir, SampleBytes: compress.MinLearnBytes})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	var atA, atB sink
	run := func(learnA, learnB *compress.Learner, body func(a, b *Link)) {
		ca, cb := tlsPair(t, ka, kb)
		lnB, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ca.Dial = func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", lnB.Addr().String())
		}
		ca.Deliver, cb.Deliver, cb.Listener = atA.deliver, atB.deliver, lnB
		ca.Learner, cb.Learner = learnA, learnB
		for _, c := range []*Config{&ca, &cb} {
			c.Session.BatchWindow, c.Session.AckDelay = 5*time.Millisecond, 10*time.Millisecond
		}
		a, err := New(ca)
		if err != nil {
			t.Fatal(err)
		}
		b, err := New(cb)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); a.Run(ctx) }()
		go func() { defer wg.Done(); b.Run(ctx) }()
		defer func() { cancel(); wg.Wait() }()
		body(a, b)
	}
	wait := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	la, lb := open(dirA), open(dirB)
	run(la, lb, func(a, b *Link) {
		for i := range n {
			if err := a.Send(Item{Data: st[i], Class: ClassMessage}); err != nil {
				t.Fatal(err)
			}
			if err := b.Send(Item{Data: back[i], Class: ClassMessage}); err != nil {
				t.Fatal(err)
			}
		}
		wait("delivery and acks", func() bool {
			sa, sb := a.Stats(), b.Stats()
			return atA.len() == n && atB.len() == n && sa.Unacked+sa.Waiting+sb.Unacked+sb.Waiting == 0
		})
	})
	la.Close()
	lb.Close()
	aOut, aIn := la.Dicts()
	bOut, bIn := lb.Dicts()
	same := func(x, y []compress.Dict) bool {
		return len(x) > 0 && slices.EqualFunc(x, y, func(p, q compress.Dict) bool { return p.Hash == q.Hash })
	}
	if !same(aOut, bIn) || !same(bOut, aIn) {
		t.Fatalf("learned a→b %d and %d dictionaries, b→a %d and %d, or different ones", len(aOut), len(bIn), len(bOut), len(aIn))
	}
	la, lb = open(dirA), open(dirB)
	defer la.Close()
	defer lb.Close()
	atA, atB = sink{}, sink{}
	run(la, lb, func(a, b *Link) {
		wait("the link", func() bool { return a.Stats().Up && b.Stats().Up })
		for i := range 32 {
			a.Send(Item{Data: st[n+i], Class: ClassMessage})
			b.Send(Item{Data: back[n+i], Class: ClassMessage})
		}
		wait("delivery", func() bool { return atA.len() == 32 && atB.len() == 32 })
		sa, sb := a.Stats(), b.Stats()
		if sa.Dict != aOut[0].Hash || sb.PeerDict != aOut[0].Hash || sb.Dict != bOut[0].Hash || sa.PeerDict != bOut[0].Hash {
			t.Fatalf("after restart: a encodes with %v (b decodes %v), b with %v (a decodes %v); want %v and %v",
				sa.Dict, sb.PeerDict, sb.Dict, sa.PeerDict, aOut[0].Hash, bOut[0].Hash)
		}
	})
}

// HELLO and EPOCH carry dictionary names and refuse malformed ones.
func TestHelloEpochDicts(t *testing.T) {
	d1, d2 := compress.DictHash{1, 2, 3, 4, 5, 6, 7, 8}, compress.DictHash{9, 9, 9, 9, 9, 9, 9, 9}
	h := hello(HelloDecoderLost, 5, 6, 7, 300000)
	h.Dict, h.Dicts = d1, []compress.DictHash{d2, d1}
	p := h.append(nil)
	got, err := ParseHello(p)
	if err != nil || got.Dict != d1 || !slices.Equal(got.Dicts, h.Dicts) || got.Flags != HelloDecoderLost|HelloDict || got.Epoch != 5 {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	plain := hello(0, 5, 0, 0, 300000).append(nil)
	if got, err := ParseHello(plain); err != nil || !got.Dict.IsZero() || len(got.Dicts) != 0 {
		t.Fatalf("without dictionaries: %+v, %v", got, err)
	}
	five := hello(0, 5, 0, 0, 300000)
	five.Dicts = make([]compress.DictHash, MaxHelloDicts+1)
	withFlag := func(b []byte) []byte {
		b = slices.Clone(b)
		b[1] |= HelloDict
		return b
	}
	body := plain[:len(plain)-1] // without the list's count
	for name, bad := range map[string][]byte{
		"cut short":      p[:len(p)-1],
		"trailing":       append(slices.Clone(p), 0),
		"no list":        body,
		"too many":       five.append(nil),
		"flag, no dict":  withFlag(plain),
		"zero dict name": withFlag(append(append(slices.Clone(body), make([]byte, 8)...), 0)),
	} {
		if _, err := ParseHello(bad); !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: %v, want a protocol error", name, err)
		}
	}
	for _, d := range []compress.DictHash{{}, d2} {
		e, dict, err := parseEpoch(appendEpoch(nil, 77, d))
		if err != nil || e != 77 || dict != d {
			t.Fatalf("EPOCH %v: %d %v %v", d, e, dict, err)
		}
	}
	for _, bad := range [][]byte{appendEpoch(nil, 77, d2)[:5], append(appendEpoch(nil, 77, compress.DictHash{}), make([]byte, 8)...), {0}} {
		if _, _, err := parseEpoch(bad); !errors.Is(err, ErrProtocol) {
			t.Errorf("EPOCH %x: %v, want a protocol error", bad, err)
		}
	}
}

// The peer's HELLO names an epoch primed with a dictionary we lack
// (decNoDict); its EPOCH then starts another epoch with the same name:
// the DATA is refused as a DictError (before, primeDecoder cleared decNoDict
// and kept the old decoder, decoding with the wrong dictionary), and after
// a reconnect the sender's new epoch delivers everything (before, a failed
// decode was resumed, the same bytes into the same failure each time).
func TestLearnedDictMissingNamedTwice(t *testing.T) {
	st := learnCorpus(t, "ejabberd-slixmpp-ej2pr-1.xml.gz")
	x := trained(t, st[:1000])
	a, b := newPair(t)
	a.Connected(t0)
	b.Connected(t0)
	a.primeEncoder(x) // a's epoch named with X, which b never had
	ha, hb := a.Poll(t0), b.Poll(t0)
	deliver(t, t0, b, ha)
	if !b.decNoDict {
		t.Fatal("setup: b should lack X")
	}
	deliver(t, t0, a, hb) // a reprimes: new epoch with the built-in dict
	a.primeEncoder(x)     // a buggy/hostile peer: its new epoch uses X anyway
	for i, s := range st[1000:1010] {
		a.Enqueue(t0, uint64(i+1), Item{Data: s, Class: ClassMessage})
	}
	now := t0.Add(time.Second)
	br := bufio.NewReader(bytes.NewReader(a.Poll(now)))
	var err error
	var got [][]byte
	for err == nil {
		var f Frame
		if f, err = ReadFrame(br); err == nil {
			var batch [][]byte
			batch, err = b.Receive(now, f)
			got = append(got, batch...)
		}
	}
	// Reconnect: does the link recover, or resend the same block forever?
	for round := 0; round < 3; round++ {
		a.Disconnected()
		b.Disconnected()
		now = now.Add(time.Minute)
		a.Connected(now)
		b.Connected(now)
		var rerr error
		for i := 0; i < 100 && rerr == nil; i++ {
			fa, fb := a.Poll(now), b.Poll(now)
			if fa == nil && fb == nil {
				break
			}
			for _, x := range []struct {
				s   *Session
				buf []byte
			}{{b, fa}, {a, fb}} {
				r := bufio.NewReader(bytes.NewReader(x.buf))
				for rerr == nil {
					f, e := ReadFrame(r)
					if e != nil {
						break
					}
					var batch [][]byte
					batch, rerr = x.s.Receive(now, f)
					if x.s == b {
						got = append(got, batch...)
					}
				}
			}
		}
		t.Logf("reconnect %d: error %v; %d stanzas so far", round, rerr, len(got))
	}
	if len(got) != 10 {
		t.Errorf("%d of 10 stanzas delivered after the reconnects", len(got))
	}
	if b.DictErrors != 1 {
		t.Errorf("DictErrors = %d, want 1; got %d stanzas, last error %v", b.DictErrors, len(got), err)
	}
	for i := range got {
		if !bytes.Equal(got[i], st[1000+i]) {
			t.Errorf("stanza %d delivered corrupt: %.60q", i, got[i])
		}
	}
}
